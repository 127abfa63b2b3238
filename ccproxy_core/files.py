"""Writing files so that a crash leaves either the old file or the new one, never a torn one."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


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


def _sweep_temps(path: Path, age: float = 300.0) -> None:
    """Remove temp files that a killed writer left behind; a live writer's is seconds old."""
    cutoff = time.time() - age
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
