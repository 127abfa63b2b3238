"""Writing files so that a crash leaves either the old file or the new one, never a torn one."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from attrs import frozen


def atomic_write(
    path: Path, data: bytes, *, mode: int = 0o600, before_replace: Callable[[], None] | None = None
) -> None:
    """Replace `path` with `data`: unique temp file in the same directory, fsync, chmod, rename.

    `before_replace` runs once the data is synced, just before the rename; if it raises, the
    write is abandoned (a writer checking that nobody changed the file meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if os.name != "nt":
        # The rename is durable only once the directory entry is on disk.
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        except OSError:
            pass  # some filesystems refuse fsync on directories; the data itself is synced
        finally:
            os.close(dir_fd)
    _sweep_temps(path)


@frozen
class Replaced:
    """What an exchange took out of place: the file's identity (inode, mtime, size) and bytes."""

    identity: tuple[int, int, int]
    data: bytes


def swap_in(path: Path, data: bytes, *, mode: int = 0o600) -> Replaced | None:
    """`atomic_write`, but where the OS exchanges two names atomically (Linux `renameat2` with
    RENAME_EXCHANGE) it returns what it replaced, so a writer that read the file earlier can tell
    whether somebody who takes no lock (an editor) saved in between, and merge that save instead
    of destroying it. The file is never missing, and a crash leaves the old file or the new one.
    None when there was no file, or where the OS cannot exchange (then it is a plain rename)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if not _exchange(tmp, path):
            os.replace(tmp, path)
            _sync_dir(path)
            return None
        st = os.stat(tmp)
        with open(tmp, "rb") as f:
            old = Replaced((st.st_ino, st.st_mtime_ns, st.st_size), f.read())
        os.unlink(tmp)
        _sync_dir(path)
        return old
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: str, b: Path) -> bool:
    """Swap two names atomically; False where the OS or filesystem cannot, or `b` is missing."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # here, not at import: a server start never needs it (0.3 MB)

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False  # a libc without renameat2 (glibc < 2.28)
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    if ctypes.get_errno() in (errno.ENOENT, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(b))


def _sync_dir(path: Path) -> None:
    if os.name != "nt":
        # The rename is durable only once the directory entry is on disk.
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        except OSError:
            pass  # some filesystems refuse fsync on directories; the data itself is synced
        finally:
            os.close(dir_fd)


def _sweep_temps(path: Path, age: float = 300.0) -> None:
    """Remove temp files that a killed writer left behind; a live writer's is seconds old."""
    cutoff = time.time() - age
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
