"""The `ccproxy keys` command's flags, apart from the command itself (cli/keys.py).

`build_parser` loads this module on every `ccproxy` run, `serve` included; the keys store,
sqlite3 and urllib that the command uses are loaded only when a `keys` command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

Factory = Callable[..., argparse.ArgumentParser]


def _limit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--budget-usd",
        action="append",
        default=[],
        metavar="WINDOW=USD",
        help="spend limit per UTC day or month, e.g. day=5 or month=100 (repeatable; day=none removes it)",
    )
    p.add_argument("--rpm", help="requests per minute (burst = rpm); none removes it")
    p.add_argument("--tpm", help="tokens per minute; none removes it")
    p.add_argument("--concurrency", help="requests in flight at once; none removes it")
    p.add_argument("--models", help="model globs the key may use, e.g. 'claude-*,gpt-4.1' (empty: all)")
    p.add_argument("--providers", help="providers the key may be routed to, e.g. anthropic,openai (empty: all)")
    p.add_argument("--expires", help="30d, 12h, 2w from now, or a UTC date 2027-01-31; never removes it")


def add_commands(command: Factory) -> None:
    keys = command("keys", "manage client keys: each with its own budgets, limits and models", _help)
    sub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    create = sub.add_parser("create", help="make a key; it is printed once, on a line of its own")
    create.add_argument("name")
    _limit_flags(create)
    create.set_defaults(func=_command, action="create")
    listing = sub.add_parser("list", help="every key: name, masked prefix, state, limits")
    listing.set_defaults(func=_command, action="list")
    for action, text in (("show", "one key and its spend"), ("revoke", "revoke a key: 401 from its next request")):
        p = sub.add_parser(action, help=text)
        p.add_argument("name")
        p.set_defaults(func=_command, action=action)
    update = sub.add_parser("update", help="change a key's limits")
    update.add_argument("name")
    _limit_flags(update)
    update.set_defaults(func=_command, action="update")
    for p in (keys, create, update, *(sub.choices[a] for a in ("list", "show", "revoke"))):
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("--config", metavar="FILE", help="config file (its apikey is the admin key)")


def _help(args: argparse.Namespace) -> int:
    print("usage: ccproxy keys {create,list,show,update,revoke} [--help]", file=sys.stderr)
    return 2


def _command(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import keys

    return keys.command(args)
