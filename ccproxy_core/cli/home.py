"""Bare `ccproxy`: where things stand, and the three ways to go on.

The seeds disagree on what a bare `ccproxy` does: the npm proxy starts the server and launches
Claude Code, ccproxy-api serves in the foreground. Either guess surprises the other half (a
terminal taken by a server, or a Claude Code session nobody asked for), so ccproxy does
neither: it says whether a proxy runs and where, and names the commands for each intent.
Exit 0: nothing went wrong.
"""

from __future__ import annotations

from ccproxy_core.cli import daemon, pidfile

NEXT = (
    ("ccproxy code", "start the proxy if needed, then run Claude Code through it"),
    ("ccproxy start", "run the proxy in the background (`ccproxy stop` ends it)"),
    ("ccproxy serve", "run the proxy in the foreground (Ctrl-C ends it)"),
)


def render(info: pidfile.PidInfo | None) -> str:
    if info is not None:
        head = f"ccproxy is running on {info.url} (pid {info.pid}); `ccproxy status` shows its health."
    else:
        head = "ccproxy is not running."
    rows = "\n".join(f"  {command:<15} {what}" for command, what in NEXT)
    return f"{head}\n\n{rows}\n\n`ccproxy help` lists every command; `ccproxy help COMMAND` shows its flags."


def show() -> int:
    print(render(daemon.running()))
    return 0
