"""One writer at a time per file, across threads and processes.

The server refreshes tokens on worker threads while `ccproxy auth import|login` may write the
same accounts.json from another process; a read-modify-write by each would lose the other's
change. `locked(path)` takes two locks, in this order: a `threading.Lock` per resolved path
(threads of this process) and an advisory `flock` on `NAME.lock` beside the file (other
processes). The kernel drops a `flock` when its holder dies, so a killed writer never leaves
the file locked; where `fcntl` is missing (Windows) only the in-process lock applies. The lock
file is never deleted: removing it while another process waits on it would let two in.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

TIMEOUT = 10.0  # seconds a writer waits for another one before giving up
_POLL = 0.005  # seconds between tries of the cross-process lock

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class LockTimeout(TimeoutError):
    """Another writer held the file for longer than the timeout; the message says which."""


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


if sys.platform == "win32":  # pragma: no cover - no flock there

    def _try_flock(fd: int) -> bool:
        return True

else:
    import fcntl

    def _try_flock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


@contextlib.contextmanager
def locked(path: Path, timeout: float = TIMEOUT) -> Iterator[None]:
    """Hold `path`'s writer lock; raises `LockTimeout` after `timeout` seconds of waiting."""
    with _locks_guard:
        lock = _locks.setdefault(str(path.resolve()), threading.Lock())
    if not lock.acquire(timeout=timeout):
        raise LockTimeout(f"{path}: another writer in this process held it for {timeout:g} s; try again")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while not _try_flock(fd):  # closing the descriptor releases it
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"{path}: another process (a ccproxy server or `ccproxy auth`) held "
                        f"{lock_path(path).name} for {timeout:g} s; try again"
                    )
                time.sleep(_POLL)
            yield
        finally:
            os.close(fd)
    finally:
        lock.release()
