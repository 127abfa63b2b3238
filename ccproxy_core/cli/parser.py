"""The `ccproxy` command line's parser: every command's flags, help text and example.

Each command's parser points (`func`) at the function that runs it: `serve`'s in cli/serve_cmd.py,
the others' in cli/commands.py, `service`/`completion`/`import` in cli/ops_commands.py and `keys`
in cli/keys_args.py. `build_parser(serve_only=True)` stops after `serve`, so a server start
neither builds nor loads the other commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from ccproxy_core import __version__
from ccproxy_core.cli import serve_cmd

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

    serve = command("serve", "run the proxy in the foreground", serve_cmd.serve, aliases=("server",))
    _server_flags(serve)
    serve.add_argument(
        "--reload", action="store_true", help="development: restart the server when ccproxy's code or config changes"
    )
    _workers_flag(serve)
    serve.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)  # set by the supervisor (cli/workers.py)
    if serve_only:
        return parser
    from ccproxy_core.cli import commands as run

    start = command("start", "start the proxy in the background and wait until it answers", run.start)
    _server_flags(start)
    _workers_flag(start)
    command("stop", "stop the background proxy, letting streams in flight finish", run.stop).add_argument(
        "--timeout", type=_seconds, default=10.0, help="seconds to wait before killing it (default 10)"
    )
    restart = command("restart", "stop, then start the background proxy", run.restart)
    _server_flags(restart)
    _workers_flag(restart)
    command("status", "show whether the background proxy runs, and its health", run.status).add_argument(
        "--json", action="store_true", help="print the status as JSON"
    )
    logs = command("logs", "show the background proxy's log", run.logs)
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("-n", "--lines", type=int, default=50, help="how many lines to show first (default 50)")
    code = command("code", "start the proxy if needed and run Claude Code through it", run.code)
    _server_flags(code, log_level=False)
    code.add_argument("--key", help="a client key (from `ccproxy keys create`) for Claude Code to send")
    code.add_argument(
        "args", nargs="*", metavar="CLAUDE_ARGS", help="arguments passed to `claude` as they are, flags included"
    )
    env = command("env", "print the environment variables that point a client at the proxy", run.env)
    env.add_argument("--shell", choices=["sh", "fish", "powershell"], default="sh", help="syntax to print (default sh)")
    env.add_argument("--config", metavar="FILE", help="read the proxy key from this config file")
    env.add_argument("--key", help="a client key (from `ccproxy keys create`) to print instead of the proxy key")
    init = command("init", "write a commented starter config", run.init)
    init.add_argument(
        "--scope",
        choices=["user", "project"],
        default="user",
        help="user config dir, or ./.ccproxy in this directory (default user)",
    )
    init.add_argument("--force", action="store_true", help="overwrite an existing config")

    auth = command("auth", "manage Claude and ChatGPT subscription accounts", run.auth_help)
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
    imp.set_defaults(func=run.auth_import)
    login = auth_sub.add_parser(
        "login",
        help="log in with a Claude account (paste the code shown)",
        epilog="example: ccproxy auth login --name personal",
    )
    login.add_argument("--name", help="account name (a-z, 0-9, _ and -)")
    login.add_argument("--provider", help="the OAuth provider whose accounts file to use")
    login.add_argument("--accounts", metavar="FILE", help="accounts.json path")
    login.set_defaults(func=run.auth_login)
    login_openai = auth_sub.add_parser(
        "login-openai",
        help="log in with a ChatGPT account for a codex provider (paste the address the browser ends on)",
        epilog="example: ccproxy auth login-openai --provider chatgpt work",
    )
    login_openai.add_argument("name", nargs="?", help="account name (a-z, 0-9, _ and -; default: default)")
    login_openai.add_argument("--provider", help="the codex provider whose accounts file to use")
    login_openai.add_argument("--accounts", metavar="FILE", help="accounts file path")
    login_openai.set_defaults(func=run.auth_login_openai, codex=None)
    st = auth_sub.add_parser(
        "status", help="list accounts with their state and expiry (never tokens)", epilog="example: ccproxy auth status"
    )
    st.add_argument("--provider", help="the OAuth provider whose accounts file to use")
    st.add_argument("--accounts", metavar="FILE", help="accounts.json path")
    st.add_argument("--codex", action="store_const", const="", help="the ChatGPT accounts of a codex provider")
    st.set_defaults(func=run.auth_status)

    cfg = command("config", "inspect the configuration", run.config_help)
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    show = cfg_sub.add_parser(
        "show",
        help="print the effective config and where each value came from",
        epilog="example: ccproxy config show --config ./my.json",
    )
    _server_flags(show)
    show.set_defaults(func=run.config_show)

    from ccproxy_core.cli import ops_commands

    ops_commands.add_commands(command)  # service, completion, import
    from ccproxy_core.cli import keys_args

    keys_args.add_commands(command)  # keys create|list|show|update|revoke
    command("version", "print the version, Python and platform", run.version)
    usage = command("usage", "requests, tokens and cost from the usage ledger", run.usage)
    usage.add_argument("--since", default="24h", help="a span back from now (90m, 24h, 7d) or an ISO date; default 24h")
    usage.add_argument(
        "--by",
        default="model",
        choices=["model", "provider", "credential", "client", "day", "hour"],
        help="group rows by",
    )
    usage.add_argument("--json", action="store_true", help="print the /usage JSON document")
    usage.add_argument("--config", metavar="FILE", help="config file naming usage.path (when no server runs)")
    command("help", "show the commands, or one command's flags", run.help_topic).add_argument(
        "topic", nargs="*", metavar="COMMAND", help="the command to explain"
    )
    return parser
