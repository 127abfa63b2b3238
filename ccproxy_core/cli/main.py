"""The `ccproxy` command: argparse in front of plain functions; no logic of its own.

`main` reads the command line and calls the one function the parser (cli/parser.py) names for
the command: `serve` in cli/serve_cmd.py, the others in cli/commands.py, each calling the module
that owns the job (server, daemon, launch, config, auth). Modules are imported inside the
command that needs them, so `ccproxy version` or `ccproxy status` start fast, and `ccproxy
serve` loads neither the other commands nor their parsers.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ccproxy_core.cli.errors import CommandError
from ccproxy_core.cli.parser import build_parser

__all__ = ["CommandError", "build_parser", "main", "split_code_args"]

_CODE_OWN = ("--host", "--port", "--config", "--key")


def split_code_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """`code`'s own flags from the front; everything after them (flags included) is claude's.

    argparse cannot tell `ccproxy code --model x` from an unknown flag of `code`, so the split
    is made before parsing: ccproxy's own flags (as `--flag V` or `--flag=V`) and `-h`, up to
    the first other word or a `--`.
    """
    own: list[str] = []
    rest = list(argv)
    while rest:
        word = rest[0]
        if word == "--":
            rest.pop(0)
            break
        if word in ("-h", "--help"):
            own.append(rest.pop(0))
        elif word in _CODE_OWN and len(rest) > 1:
            own += [rest.pop(0), rest.pop(0)]
        elif word.split("=", 1)[0] in _CODE_OWN and "=" in word:
            own.append(rest.pop(0))
        else:
            break
    return own, rest


def _global_debug(argv: list[str]) -> tuple[list[str], bool]:
    """The npm proxy's global `--debug`, before or after the command (for `code`, only before it:
    after `code` every word is claude's, and claude has a `--debug` of its own)."""
    command_at = next((i for i, w in enumerate(argv) if not w.startswith("-")), len(argv))
    end = command_at if argv[command_at : command_at + 1] == ["code"] else len(argv)
    if "--" in argv[:end]:
        end = argv.index("--")
    kept = [w for i, w in enumerate(argv) if i >= end or w != "--debug"]
    return kept, len(kept) != len(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv, debug = _global_debug(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(serve_only=argv[:1] in (["serve"], ["server"]))
    if not argv:
        from ccproxy_core.cli import home

        return home.show()
    claude_args: list[str] | None = None
    if argv[:1] == ["code"]:
        own, claude_args = split_code_args(argv[1:])
        argv = ["code", *own]
    args = parser.parse_args(argv)
    if claude_args is not None:
        args.args = claude_args
    if debug:
        args.log_level = "debug"
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return _failed(exc)
    return result


def _failed(exc: Exception) -> int:
    """A command's expected failure as one line and its exit code; anything else goes on up.

    The error classes are imported here, not before the command runs: `ccproxy version` and
    `ccproxy status` then never load the config model."""
    from ccproxy_core.config.model import ConfigError
    from ccproxy_core.core.errors import ProxyError

    if isinstance(exc, ConfigError):
        print("ccproxy: configuration error:\n  " + "\n  ".join(exc.problems), file=sys.stderr)
        return 2
    if isinstance(exc, ProxyError):
        print(f"ccproxy: {exc.message}", file=sys.stderr)
        return 1
    if isinstance(exc, (CommandError, OSError)):  # OSError: a file or port the user must fix (permissions, ...)
        print(f"ccproxy: {exc}", file=sys.stderr)
        return 1
    raise exc
