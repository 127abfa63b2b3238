"""`ccproxy code` and `ccproxy env`: point Claude Code (or any Anthropic client) at the proxy.

Both use the same variables, built by the pure `client_env`:

    ANTHROPIC_BASE_URL    http://HOST:PORT of the running daemon, else of the effective config
    ANTHROPIC_AUTH_TOKEN  the proxy's `apikey`, or "ccproxy" when none is set but the proxy holds
                          the provider credentials (Claude Code wants some token to skip its
                          login; the proxy then serves loopback clients). When no provider has
                          credentials of its own the proxy forwards the client's, so it is left
                          unset and Claude Code's own login (subscription or API key) is used.
    API_TIMEOUT_MS        600000: long thinking turns outlast Claude Code's default
    NO_PROXY              the existing list plus the proxy's host, so an HTTPS_PROXY in the
                          environment is not used to reach a server on this machine

and they remove ANTHROPIC_API_KEY when the proxy has an `apikey` (Claude Code would also send it
as `x-api-key`, which the proxy checks first and refuses), and CLAUDE_CODE_USE_BEDROCK /
CLAUDE_CODE_USE_VERTEX (either makes Claude Code ignore ANTHROPIC_BASE_URL).

`code` leaves the daemon running when claude exits: several sessions share one server, and
`ccproxy stop` ends it. On POSIX it replaces itself with claude (exec), so the terminal, Ctrl-C
and the exit status belong to claude alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from attrs import frozen

from ccproxy_core.cli import daemon, pidfile, processes

PLACEHOLDER_TOKEN = "ccproxy"
API_TIMEOUT_MS = "600000"
INSTALL_CLAUDE = "npm install -g @anthropic-ai/claude-code"
_CONFLICTING = ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")


@frozen
class ClientEnv:
    set: dict[str, str]
    unset: tuple[str, ...]

    def applied_to(self, env: Mapping[str, str]) -> dict[str, str]:
        out = {k: v for k, v in env.items() if k not in self.unset}
        out.update(self.set)
        return out


def holds_credentials(config: Any) -> bool:
    """Whether some enabled provider has credentials of its own (keys or OAuth accounts)."""
    return any(p.enabled and (p.keys or p.auth == "oauth") for p in config.providers)


def client_env(url: str, apikey: str, env: Mapping[str, str], *, proxy_credentials: bool = True) -> ClientEnv:
    """The variables that send an Anthropic client to the proxy at `url`.

    `proxy_credentials`: the proxy holds provider credentials, so a placeholder token keeps the
    client from logging in; without them, a transparent proxy must receive the client's own."""
    host = urlsplit(url).hostname or "127.0.0.1"
    no_proxy = [h for h in (env.get("NO_PROXY") or "").split(",") if h.strip()]
    if host not in (h.strip() for h in no_proxy):
        no_proxy.append(host)
    values = {"ANTHROPIC_BASE_URL": url}
    if apikey or proxy_credentials:
        values["ANTHROPIC_AUTH_TOKEN"] = apikey or PLACEHOLDER_TOKEN
    values.update(API_TIMEOUT_MS=API_TIMEOUT_MS, NO_PROXY=",".join(no_proxy))
    return ClientEnv(values, (("ANTHROPIC_API_KEY",) if apikey else ()) + _CONFLICTING)


# --- shell syntax ---------------------------------------------------------------------------------


def quote(value: str, shell: str) -> str:
    """`value` as one literal word of `shell`: nothing in it is expanded."""
    if shell == "fish":
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if shell == "powershell":
        for q in "'\u2018\u2019\u201a\u201b":  # PowerShell takes the typographic quotes as quotes too
            value = value.replace(q, q + q)
        return f"'{value}'"
    return "'" + value.replace("'", "'\\''") + "'"


_SYNTAX = {  # shell -> (set NAME to QUOTED, remove NAME)
    "sh": ("export {name}={value}", "unset {name}"),
    "fish": ("set -gx {name} {value}", "set -e {name}"),
    "powershell": ("$env:{name} = {value}", "Remove-Item Env:{name} -ErrorAction SilentlyContinue"),
}


def render(variables: ClientEnv, shell: str) -> str:
    assign, remove = _SYNTAX[shell]
    lines = [remove.format(name=name) for name in variables.unset]
    lines += [assign.format(name=name, value=quote(value, shell)) for name, value in variables.set.items()]
    return "\n".join(lines) + "\n"


# --- the commands ---------------------------------------------------------------------------------


def _config(host: str | None, port: int | None, config: str | None) -> Any:
    from ccproxy_core.config.load import load

    return load(flags={"host": host, "port": port}, config_file=config).config


def env(*, shell: str, config: str | None = None, key: str | None = None) -> int:
    """Print the variables for `eval "$(ccproxy env)"` (sh), `ccproxy env --shell fish | source`, ...

    The proxy key comes from `--config FILE` when given, else from the config the running server
    was started with (its --config, in its working directory), else from the default search."""
    info = daemon.running()
    if config is None and info is not None:
        settings = daemon.config_of(info)
    else:
        settings = _config(None, None, config)
    url = info.url if info is not None else pidfile.client_url(settings.host, settings.port)
    apikey = key or settings.apikey  # --key: a client key (`ccproxy keys create`) instead of the admin key
    variables = client_env(url, apikey, os.environ, proxy_credentials=holds_credentials(settings))
    sys.stdout.write(render(variables, shell))
    return 0


def code(args: list[str], *, host: str | None, port: int | None, config: str | None, key: str | None = None) -> int:
    """Start the daemon if needed, then run `claude ARGS...` through it; claude's exit status is returned."""
    claude = shutil.which("claude")
    if claude is None:
        print(
            "ccproxy: Claude Code (`claude`) is not on PATH; install it with\n"
            f"    {INSTALL_CLAUDE}\nthen run `ccproxy code` again",
            file=sys.stderr,
        )
        return 127
    settings = _config(host, port, config)  # a bad config is refused before anything starts
    try:
        endpoint = daemon.ensure_running(host, port, config)
    except processes.DaemonError as exc:
        print(f"ccproxy: {exc}", file=sys.stderr)
        return 1
    if not endpoint.started and config is None:
        info = daemon.running()  # an already running server: the key it checks is in its own config
        if info is not None:
            settings = daemon.config_of(info)
    if endpoint.started:
        print(
            f"ccproxy: started the proxy in the background on {endpoint.url} (pid {endpoint.pid}); "
            "`ccproxy stop` ends it",
            file=sys.stderr,
        )
    apikey = key or settings.apikey  # --key: a client key (`ccproxy keys create`) instead of the admin key
    variables = client_env(endpoint.url, apikey, os.environ, proxy_credentials=holds_credentials(settings))
    return _run([claude, *args], variables.applied_to(os.environ))


def _run(argv: list[str], environ: dict[str, str]) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execve(argv[0], argv, environ)
    # Windows has no exec that keeps the console: wait for claude, leaving Ctrl-C to it.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.call(argv, env=environ)
    finally:
        signal.signal(signal.SIGINT, previous)
