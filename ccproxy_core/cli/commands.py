"""What each `ccproxy` command but `serve` does: a few lines that call the module owning the job.

The parser (cli/parser.py) points each command here; this module is loaded only to build the
full parser, never for `ccproxy serve` (cli/serve_cmd.py). Each function imports its module
when it runs, so `ccproxy version` or `ccproxy status` start fast.
"""

from __future__ import annotations

import argparse
import functools
import platform
import sys
from collections.abc import Callable
from typing import Any

from ccproxy_core import __version__
from ccproxy_core.cli.errors import CommandError
from ccproxy_core.cli.serve_cmd import load


def help_topic(args: argparse.Namespace) -> int:
    from ccproxy_core.cli.parser import build_parser

    try:
        build_parser().parse_args([*args.topic, "--help"])
    except SystemExit as exc:  # argparse printed the help (0) or named an unknown command (2)
        return int(exc.code or 0)
    return 0


def _daemon_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "host": args.host,
        "port": args.port,
        "config": args.config,
        "log_level": getattr(args, "log_level", None),
        "workers": args.workers,
    }


def start(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import daemon

    return daemon.start(**_daemon_kwargs(args))


def stop(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import daemon

    return daemon.stop(timeout=args.timeout)


def restart(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import daemon

    return daemon.restart(**_daemon_kwargs(args))


def status(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import daemon

    return daemon.status(as_json=args.json)


def logs(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import daemon

    return daemon.logs(follow=args.follow, lines=args.lines)


def code(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import launch

    return launch.code(args.args, host=args.host, port=args.port, config=args.config, key=args.key)


def env(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import launch

    return launch.env(shell=args.shell, config=args.config, key=args.key)


def init(args: argparse.Namespace) -> int:
    from ccproxy_core.config import starter as init_config

    return init_config.init(scope=args.scope, force=args.force)


def auth_help(args: argparse.Namespace) -> int:
    print("usage: ccproxy auth {import,login,login-openai,status} [--help]", file=sys.stderr)
    return 2


def _auth_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The auth commands' expected failures (a bad name, a broken file, a refused login) as one line."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        from ccproxy_core.accounts.grant import OAuthError
        from ccproxy_core.accounts.store import AccountsError

        try:
            return func(args)
        except (AccountsError, OAuthError) as exc:
            raise CommandError(str(exc)) from exc

    return wrapper


def _accounts_path(args: argparse.Namespace) -> Any:
    """--accounts, else the accounts_path of the configured OAuth provider, else ~/.claude/accounts.json."""
    from ccproxy_core.cli import auth as auth_cmds

    chatgpt = getattr(args, "codex", None) is not None or args.func is auth_login_openai
    path, note = auth_cmds.accounts_path(args.accounts, args.provider, chatgpt=chatgpt)
    if note:
        print(f"ccproxy: {note}", file=sys.stderr)
    return path


@_auth_errors
def auth_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ccproxy_core.cli import auth as auth_cmds

    if args.codex is not None:
        import time

        from ccproxy_core.accounts.codex import default_codex_auth_path

        codex_source = Path(args.codex).expanduser() if args.codex else default_codex_auth_path()
        print(auth_cmds.auth_import_codex(_accounts_path(args), codex_source, args.name, time.time()))
        return 0
    source = Path(args.from_path).expanduser() if args.from_path else Path.home() / ".claude" / ".credentials.json"
    keychain = None if args.from_path else auth_cmds.keychain_login  # macOS keeps the login there
    print(auth_cmds.auth_import(_accounts_path(args), source, args.name, keychain))
    return 0


@_auth_errors
def auth_login(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import auth as auth_cmds
    from ccproxy_core.config.load import load as load_config

    return auth_cmds.auth_login(_accounts_path(args), args.name, load_config().config.oauth, input, print)


@_auth_errors
def auth_login_openai(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import auth as auth_cmds
    from ccproxy_core.config.load import load as load_config

    path = _accounts_path(args)
    return auth_cmds.auth_login_openai(path, args.name, load_config().config.openai_oauth, input, print)


@_auth_errors
def auth_status(args: argparse.Namespace) -> int:
    import time

    from ccproxy_core.cli import auth as auth_cmds

    print(auth_cmds.auth_status(_accounts_path(args), time.time()))
    return 0


def config_help(args: argparse.Namespace) -> int:
    print("usage: ccproxy config show [--config FILE]", file=sys.stderr)
    return 2


def config_show(args: argparse.Namespace) -> int:
    from ccproxy_core.config.show import render

    print(render(load(args)))
    return 0


def usage(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import usage as usage_cmd

    return usage_cmd.run(since=args.since, group_by=args.by, as_json=args.json, config_file=args.config)


def version(args: argparse.Namespace) -> int:
    where = f"Python {platform.python_version()}, {platform.system()} {platform.machine()}"
    print(f"ccproxy {__version__} ({where}, {build_kind()})")
    return 0


def build_kind() -> str:
    """How this ccproxy was built: "N modules compiled" where mypyc extensions for this interpreter
    sit beside the sources (CCPROXY_COMPILE=1, setup.py), which Python then imports; else "pure Python"."""
    from importlib.machinery import EXTENSION_SUFFIXES
    from pathlib import Path

    import ccproxy_core

    package = Path(ccproxy_core.__file__).parent
    compiled = sum(
        any(source.with_name(source.stem + suffix).exists() for suffix in EXTENSION_SUFFIXES)
        for source in package.rglob("*.py")
    )
    return f"{compiled} modules compiled" if compiled else "pure Python"
