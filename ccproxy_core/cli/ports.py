"""A port already in use: which process holds it (when this machine can say) and what to do.

`[Errno 98] address already in use` tells a user nothing they can act on. On Linux the
listening socket's inode is in /proc/net/tcp(6), and the process that holds it has that inode
among its /proc/PID/fd links (readable for the user's own processes); elsewhere, or for another
user's process, `ss -ltnp` / `lsof` may know. Each lookup is best effort and bounded: no
answer just leaves the holder out of the message.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import subprocess
from pathlib import Path

from attrs import frozen

_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


@frozen
class Holder:
    pid: int
    command: str


def is_address_in_use(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1))


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes: set[str] = set()
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (proc / "net" / name).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def _command(pid: int, proc: Path) -> str:
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    text = " ".join(p.decode(errors="replace") for p in raw.split(b"\0") if p)
    return " ".join(text.split())[:160] or "?"


def from_proc(port: int, proc: Path = Path("/proc")) -> Holder | None:
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        return Holder(int(entry.name), _command(int(entry.name), proc))
    return None


def from_ss(port: int) -> Holder | None:
    """`ss -ltnp` names the holder for processes we may see (iproute2)."""
    ss = shutil.which("ss")
    if ss is None:
        return None
    try:
        out = subprocess.run(
            [ss, "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, timeout=3, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'users:\(\("([^"]+)",pid=(\d+)', out)
    return Holder(int(m.group(2)), m.group(1)) if m else None


def holder(port: int) -> Holder | None:
    return from_proc(port) or from_ss(port)


def in_use_message(host: str, port: int, found: Holder | None) -> str:
    """What to tell a user whose port is taken (no traceback, a way out)."""
    who = ""
    if found is not None:
        is_us = "ccproxy" in found.command
        who = f" by pid {found.pid} ({found.command})" + (
            "; if it is a ccproxy you started, `ccproxy stop` ends it" if is_us else ""
        )
    return (
        f"cannot listen on {host}:{port}: the port is already in use{who}. "
        f"Pick another port with `--port N` (or `port` in the config, or CCPROXY_PORT), "
        f"or stop the process that holds it"
    )
