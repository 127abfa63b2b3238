"""Processes, portably: is a pid alive and still the same process, signal it, wait for it to go,
and a file lock that serialises `ccproxy start` / `stop` across processes.

A pid alone does not name a process: pids are reused. `probe` returns the process's start time
as an identity (from /proc on Linux, `ps` on macOS and the BSDs, GetProcessTimes on Windows), so
a caller can tell its own process from another program that got the same pid later.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


class DaemonError(Exception):
    """A daemon operation could not be done; the message says why and what to do."""


def probe(pid: int) -> tuple[bool, str]:
    """(alive, start-time identity) of a pid; a zombie counts as dead; identity "" when unknown."""
    if pid <= 0:
        return False, ""
    if sys.platform == "win32":
        return _probe_windows(pid)
    else:  # an else, not a fall-through: mypy then skips it on Windows instead of flagging it
        return _probe_posix(pid)


def _probe_posix(pid: int) -> tuple[bool, str]:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return False, ""  # Linux, and no such process
        return _probe_ps(pid)
    except OSError:
        return _probe_ps(pid)
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces and parentheses
    return fields[0] not in ("Z", "X"), f"linux:{fields[19]}"


def _probe_ps(pid: int) -> tuple[bool, str]:
    """macOS and the BSDs: signal 0 for existence, `ps` for the state and the start time."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, ""
    except PermissionError:
        pass  # alive, and another user's
    try:
        out = subprocess.run(
            ["ps", "-o", "stat=", "-o", "lstart=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return True, ""
    if not out:
        return False, ""
    return not out[0].startswith("Z"), "ps:" + " ".join(out[1:])


if sys.platform == "win32":

    def _probe_windows(pid: int) -> tuple[bool, str]:
        import ctypes
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() == 5, ""  # ERROR_ACCESS_DENIED: alive, another user's
        try:
            code = wintypes.DWORD()
            if kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) and code.value != 259:  # STILL_ACTIVE
                return False, ""
            times = [wintypes.FILETIME() for _ in range(4)]
            if not kernel32.GetProcessTimes(handle, *(ctypes.byref(t) for t in times)):
                return True, ""
            return True, f"win:{(times[0].dwHighDateTime << 32) | times[0].dwLowDateTime}"
        finally:
            kernel32.CloseHandle(handle)


def cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def reap(pid: int) -> None:
    """Collect our own exited child so it does not linger as a zombie (no-op for others)."""
    if sys.platform != "win32":
        with contextlib.suppress(OSError):
            os.waitpid(pid, os.WNOHANG)


def gone(pid: int, identity: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        reap(pid)
        alive, now = probe(pid)
        if not alive or (identity and now and now != identity):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def send_signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)  # on Windows any signal number is TerminateProcess
    except ProcessLookupError:
        pass
    except PermissionError:
        raise DaemonError(f"not allowed to signal pid {pid} (started by another user?)") from None


def terminate(pid: int, identity: str, timeout: float) -> str:
    """SIGTERM (the server drains requests in flight), then SIGKILL after `timeout` seconds."""
    send_signal(pid, signal.SIGTERM)
    if gone(pid, identity, timeout):
        return "stopped"
    send_signal(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    if gone(pid, identity, 5.0):
        return "killed"
    raise DaemonError(f"pid {pid} is still alive after SIGKILL")


@contextlib.contextmanager
def locked(path: Path, timeout: float) -> Iterator[None]:
    """One start/stop/restart at a time; the lock goes with the file descriptor (even on a crash)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise DaemonError(f"another `ccproxy start` or `stop` is still running (lock {path}); try again")
            time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True
