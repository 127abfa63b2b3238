"""The `ccproxy` command: argparse in front of plain functions; no logic of its own.

Each subcommand parses its flags and calls one function in the module that owns the job
(server, daemon, launch, init_config, auth_cmds, config). Modules are imported inside the
command that needs them, so `ccproxy version` or `ccproxy status` start fast.
"""

from __future__ import annotations

import argparse
import functools
import platform
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ccproxy_core import __version__

EXAMPLES = {
    "serve": "example: ccproxy serve --port 3456 --config ~/.ccproxy/config.json   (also: ccproxy server)",
    "help": "example: ccproxy help serve",
    "start": "example: ccproxy start --port 3456",
    "stop": "example: ccproxy stop --timeout 30",
    "restart": "example: ccproxy restart",
    "status": "example: ccproxy status --json",
    "logs": "example: ccproxy logs -f",
    "code": "example: ccproxy code --model sonnet   (arguments after `code` go to claude)",
    "env": 'example: eval "$(ccproxy env)"',
    "init": "example: ccproxy init --scope project",
    "auth": "example: ccproxy auth import --name work",
    "config": "example: ccproxy config show",
    "version": "example: ccproxy version",
    "usage": "example: ccproxy usage --since 7d --by credential   (--json prints the /usage document)",
    "service": "example: ccproxy service install   (then: ccproxy service status, ccproxy logs)",
    "completion": "example: source <(ccproxy completion bash)   or   ccproxy completion fish | source",
    "keys": "example: ccproxy keys create alice --budget-usd day=5 --rpm 60 --models 'claude-*'",
    "import": "example: ccproxy import ~/.claude-code-router/config.json -o ~/.config/ccproxy/config.json",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        """One clear line and the way to get help, instead of the whole usage block."""
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _server_flags(p: argparse.ArgumentParser, *, log_level: bool = True) -> None:
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, help="port to listen on (default 3456)")
    p.add_argument("--config", metavar="FILE", help="config file (.json or .toml); also CCPROXY_CONFIG")
    if log_level:
        p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="log verbosity")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"a port is between 1 and 65535, got {value}")
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of worker processes, got {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"the number of workers is between 1 and 256, got {value}")
    return value


def _workers_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="run N server processes on the port (SO_REUSEPORT), one per core; more than 1 needs "
        "state.backend redis (or CCPROXY_REDIS_URL) so they share cooldowns and limits (default 1)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the number of seconds cannot be negative")
    return value


def build_parser(*, serve_only: bool = False) -> argparse.ArgumentParser:
    """The `ccproxy` parser; with `serve_only`, only as far as `serve` (what `ccproxy serve ...` is
    parsed with: its help, errors and flags are the same, and the other commands' parsers, 10 ms
    of every server start, are not built)."""
    parser = _Parser(
        prog="ccproxy",
        description="A proxy between Claude Code / OpenAI clients and LLM providers.",
        epilog="Run `ccproxy COMMAND --help` for a command's flags and an example.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"ccproxy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(
        name: str, help_text: str, func: Callable[[argparse.Namespace], int], aliases: Sequence[str] = ()
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            aliases=list(aliases),
            help=help_text,
            description=help_text,
            epilog=EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=func)
        return p

    serve = command("serve", "run the proxy in the foreground", _serve, aliases=("server",))
    _server_flags(serve)
    serve.add_argument(
        "--reload", action="store_true", help="development: restart the server when ccproxy's code or config changes"
    )
    _workers_flag(serve)
    serve.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by the supervisor (cli/workers.py)
    if serve_only:
        return parser
    start = command("start", "start the proxy in the background and wait until it answers", _start)
    _server_flags(start)
    _workers_flag(start)
    command("stop", "stop the background proxy, letting streams in flight finish", _stop).add_argument(
        "--timeout", type=_seconds, default=10.0, help="seconds to wait before killing it (default 10)"
    )
    restart = command("restart", "stop, then start the background proxy", _restart)
    _server_flags(restart)
    _workers_flag(restart)
    command("status", "show whether the background proxy runs, and its health", _status).add_argument(
        "--json", action="store_true", help="print the status as JSON"
    )
    logs = command("logs", "show the background proxy's log", _logs)
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("-n", "--lines", type=int, default=50, help="how many lines to show first (default 50)")
    code = command("code", "start the proxy if needed and run Claude Code through it", _code)
    _server_flags(code, log_level=False)
    code.add_argument("--key", help="a client key (from `ccproxy keys create`) for Claude Code to send")
    code.add_argument(
        "args", nargs="*", metavar="CLAUDE_ARGS", help="arguments passed to `claude` as they are, flags included"
    )
    env = command("env", "print the environment variables that point a client at the proxy", _env)
    env.add_argument("--shell", choices=["sh", "fish", "powershell"], default="sh", help="syntax to print (default sh)")
    env.add_argument("--config", metavar="FILE", help="read the proxy key from this config file")
    env.add_argument("--key", help="a client key (from `ccproxy keys create`) to print instead of the proxy key")
    init = command("init", "write a commented starter config", _init)
    init.add_argument(
        "--scope",
        choices=["user", "project"],
        default="user",
        help="user config dir, or ./.ccproxy in this directory (default user)",
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing config")

    auth = command("auth", "manage Claude and ChatGPT subscription accounts", _auth_help)
    auth_sub = auth.add_subparsers(dest="auth_command", metavar="ACTION", parser_class=_Parser)
    imp = auth_sub.add_parser(
        "import",
        help="add the Claude Code login (~/.claude/.credentials.json)",
        epilog="example: ccproxy auth import --name work",
    )
    imp.add_argument("--from", dest="from_path", metavar="FILE", help="credentials file to import")
    imp.add_argument(
        "--codex",
        nargs="?",
        const="",
        metavar="PATH",
        help="import the Codex CLI's ChatGPT login instead (default ~/.codex/auth.json) into a codex provider's file",
    )
    imp.add_argument("--name", help="account name (a-z, 0-9, _ and -)")
    imp.add_argument("--provider", help="the OAuth provider whose accounts file to use")
    imp.add_argument(
        "--accounts", metavar="FILE", help="accounts.json path (default: the OAuth provider's accounts_path)"
    )
    imp.set_defaults(func=_auth_import)
    login = auth_sub.add_parser(
        "login",
        help="log in with a Claude account (paste the code shown)",
        epilog="example: ccproxy auth login --name personal",
    )
    login.add_argument("--name", help="account name (a-z, 0-9, _ and -)")
    login.add_argument("--provider", help="the OAuth provider whose accounts file to use")
    login.add_argument("--accounts", metavar="FILE", help="accounts.json path")
    login.set_defaults(func=_auth_login)
    login_openai = auth_sub.add_parser(
        "login-openai",
        help="log in with a ChatGPT account for a codex provider (paste the address the browser ends on)",
        epilog="example: ccproxy auth login-openai --provider chatgpt work",
    )
    login_openai.add_argument("name", nargs="?", help="account name (a-z, 0-9, _ and -; default: default)")
    login_openai.add_argument("--provider", help="the codex provider whose accounts file to use")
    login_openai.add_argument("--accounts", metavar="FILE", help="accounts file path")
    login_openai.set_defaults(func=_auth_login_openai, codex=None)
    st = auth_sub.add_parser(
        "status", help="list accounts with their state and expiry (never tokens)", epilog="example: ccproxy auth status"
    )
    st.add_argument("--provider", help="the OAuth provider whose accounts file to use")
    st.add_argument("--accounts", metavar="FILE", help="accounts.json path")
    st.add_argument("--codex", action="store_const", const="", help="the ChatGPT accounts of a codex provider")
    st.set_defaults(func=_auth_status)

    cfg = command("config", "inspect the configuration", _config_help)
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    show = cfg_sub.add_parser(
        "show",
        help="print the effective config and where each value came from",
        epilog="example: ccproxy config show --config ./my.json",
    )
    _server_flags(show)
    show.set_defaults(func=_config_show)

    from ccproxy_core.cli import ops_commands

    ops_commands.add_commands(command)  # service, completion, import
    from ccproxy_core.cli import keys_args

    keys_args.add_commands(command)  # keys create|list|show|update|revoke
    command("version", "print the version, Python and platform", _version)
    usage = command("usage", "requests, tokens and cost from the usage ledger", _usage)
    usage.add_argument("--since", default="24h", help="a span back from now (90m, 24h, 7d) or an ISO date; default 24h")
    usage.add_argument(
        "--by",
        default="model",
        choices=["model", "provider", "credential", "client", "day", "hour"],
        help="group rows by",
    )
    usage.add_argument("--json", action="store_true", help="print the /usage JSON document")
    usage.add_argument("--config", metavar="FILE", help="config file naming usage.path (when no server runs)")
    command("help", "show the commands, or one command's flags", _help).add_argument(
        "topic", nargs="*", metavar="COMMAND", help="the command to explain"
    )
    return parser


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    flags: dict[str, Any] = {"host": getattr(args, "host", None), "port": getattr(args, "port", None)}
    if getattr(args, "log_level", None):
        flags["log"] = {"level": args.log_level}
    return flags


def _help(args: argparse.Namespace) -> int:
    try:
        build_parser().parse_args([*args.topic, "--help"])
    except SystemExit as exc:  # argparse printed the help (0) or named an unknown command (2)
        return int(exc.code or 0)
    return 0


def _load(args: argparse.Namespace) -> Any:
    from ccproxy_core.config.load import load

    return load(flags=_flags(args), config_file=getattr(args, "config", None))


def _serve(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import codegen_cache

    codegen_cache.install()  # attrs' and cattrs' generated code from the cache, not compiled at each start
    try:
        return _serve_cached(args)
    finally:
        codegen_cache.uninstall()  # (done before the server runs; here too for the paths that return early)


def _serve_cached(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import codegen_cache, ops_commands
    from ccproxy_core.config.model import unstructure
    from ccproxy_core.server import app as server

    loaded = _load(args)
    ops_commands.guard_serve(loaded.config)  # the container's CCPROXY_REQUIRE_APIKEY
    if args.worker_index is not None or (args.workers or 1) > 1:
        return _serve_workers(args, loaded)
    if args.reload:
        from ccproxy_core.cli import reload

        return reload.run(_serve_argv(args), loaded.origin.candidates() if loaded.origin else [])
    # The modules and the config are loaded (and the unstructure functions the app builds from the
    # config made, by unstructuring it once): keep their code for the next start, and free the cache
    # (a module first loaded by a request compiles its classes as it would without it).
    unstructure(loaded.config)
    codegen_cache.uninstall()
    try:
        server.run(loaded.config, config_files=tuple(str(f) for f in loaded.files), loaded=loaded)
    except OSError as exc:
        from ccproxy_core.cli import ports  # only to name what holds the port

        if not ports.is_address_in_use(exc):
            raise
        host, port = loaded.config.host, loaded.config.port
        raise CommandError(ports.in_use_message(host, port, ports.holder(port))) from None
    return 0


def _serve_workers(args: argparse.Namespace, loaded: Any) -> int:
    """`serve --workers N`: the supervisor (cli/workers.py), or one of its workers (`--worker-index`)."""
    from ccproxy_core.cli import workers

    if args.reload and args.worker_index is None:
        raise CommandError("--reload runs one server process; drop --workers to use it")
    return workers.serve(
        loaded, args.workers or 1, args.worker_index, config_file=args.config, log_level=args.log_level
    )


def _serve_argv(args: argparse.Namespace) -> list[str]:
    """`serve`'s own flags again, for the child that `--reload` runs."""
    argv = ["serve"]
    for flag in ("host", "port", "config", "log_level"):
        if getattr(args, flag, None) is not None:
            argv += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    return argv


def _daemon_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "host": args.host,
        "port": args.port,
        "config": args.config,
        "log_level": getattr(args, "log_level", None),
        "workers": args.workers,
    }


def _start(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import daemon

    return daemon.start(**_daemon_kwargs(args))


def _stop(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import daemon

    return daemon.stop(timeout=args.timeout)


def _restart(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import daemon

    return daemon.restart(**_daemon_kwargs(args))


def _status(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import daemon

    return daemon.status(as_json=args.json)


def _logs(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import daemon

    return daemon.logs(follow=args.follow, lines=args.lines)


def _code(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import launch

    return launch.code(args.args, host=args.host, port=args.port, config=args.config, key=args.key)


def _env(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import launch

    return launch.env(shell=args.shell, config=args.config, key=args.key)


def _init(args: argparse.Namespace) -> int:
    from ccproxy_core.config import starter as init_config

    return init_config.init(scope=args.scope, force=args.force)


def _auth_help(args: argparse.Namespace) -> int:
    print("usage: ccproxy auth {import,login,login-openai,status} [--help]", file=sys.stderr)
    return 2


class CommandError(Exception):
    """A command could not do its job for a reason the user can act on; shown as one line."""


def _auth_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The auth commands' expected failures (a bad name, a broken file, a refused login) as one line."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        from ccproxy_core.accounts.oauth import OAuthError
        from ccproxy_core.accounts.store import AccountsError

        try:
            return func(args)
        except (AccountsError, OAuthError) as exc:
            raise CommandError(str(exc)) from exc

    return wrapper


def _accounts_path(args: argparse.Namespace) -> Any:
    """--accounts, else the accounts_path of the configured OAuth provider, else ~/.claude/accounts.json."""
    from ccproxy_core.cli import auth as auth_cmds

    chatgpt = getattr(args, "codex", None) is not None or args.func is _auth_login_openai
    path, note = auth_cmds.accounts_path(args.accounts, args.provider, chatgpt=chatgpt)
    if note:
        print(f"ccproxy: {note}", file=sys.stderr)
    return path


@_auth_errors
def _auth_import(args: argparse.Namespace) -> int:
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
def _auth_login(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import auth as auth_cmds
    from ccproxy_core.config.load import load

    return auth_cmds.auth_login(_accounts_path(args), args.name, load().config.oauth, input, print)


@_auth_errors
def _auth_login_openai(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import auth as auth_cmds
    from ccproxy_core.config.load import load

    path = _accounts_path(args)
    return auth_cmds.auth_login_openai(path, args.name, load().config.openai_oauth, input, print)


@_auth_errors
def _auth_status(args: argparse.Namespace) -> int:
    import time

    from ccproxy_core.cli import auth as auth_cmds

    print(auth_cmds.auth_status(_accounts_path(args), time.time()))
    return 0


def _config_help(args: argparse.Namespace) -> int:
    print("usage: ccproxy config show [--config FILE]", file=sys.stderr)
    return 2


def _config_show(args: argparse.Namespace) -> int:
    from ccproxy_core.config.show import render

    print(render(_load(args)))
    return 0


def _usage(args: argparse.Namespace) -> int:
    from ccproxy_core.cli import usage

    return usage.run(since=args.since, group_by=args.by, as_json=args.json, config_file=args.config)


def _version(args: argparse.Namespace) -> int:
    print(f"ccproxy {__version__} (Python {platform.python_version()}, {platform.system()} {platform.machine()})")
    return 0


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
