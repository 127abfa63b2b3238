"""The background server's log: where it lives, how the detached server writes it, how it is read.

    log_path()          user_log_dir/ccproxy.log
    BOOT                the `-c` code of the detached child; it calls `serve_detached`
    serve_detached      points stdout and stderr at a `RotatingLog`, then runs `ccproxy serve`
    RotatingLog         rotates by size (5 MB, 3 old files) inside the server process itself, so
                        a daemon that runs for weeks stays bounded without a restart
    tail(path, n)       the last lines, read backwards (shown when a start fails)
    show(path, f, n)    the last lines, then what is appended, across rotations (`logs -f`)

`BOOT` names this module and `serve_detached` as text, run by `sys.executable -c` with the
package root put first on `sys.path` (see `daemon`): renaming either breaks every start,
including from the zipapp, which the integration tests exercise. The writer (the server)
renames files and the reader (`logs -f`) notices by inode or size; neither locks the other.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from ccproxy_core import __version__, dirs

LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3
BOOT = (
    "import sys; sys.path[0] = sys.argv.pop(1); "
    "from ccproxy_core.cli.daemon_log import serve_detached; sys.exit(serve_detached(sys.argv[1:]))"
)


def log_path() -> Path:
    return dirs.log_dir() / "ccproxy.log"


class RotatingLog(io.TextIOBase):
    """A text stream appending to `path` that rotates it by size: path -> path.1 -> ... -> path.N.

    The detached server's `sys.stdout` and `sys.stderr`, so its log handler, warnings and
    tracebacks all land here. With `redirect_fds`, descriptors 1 and 2 follow the current file
    too, for whatever writes below Python (faulthandler, C extensions).
    """

    def __init__(self, path: Path, max_bytes: int, backups: int, *, redirect_fds: bool = False) -> None:
        super().__init__()
        self._path, self._max, self._backups, self._redirect = path, max_bytes, backups, redirect_fds
        self._lock = threading.Lock()
        self._file, self._size = self._open()
        if self._size >= max_bytes:
            self._rotate()

    def _open(self) -> tuple[BinaryIO, int]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        f: BinaryIO = open(self._path, "ab", buffering=0)  # noqa: SIM115 (kept open: it is the stream)
        if self._redirect and os.name == "posix":
            for fd in (1, 2):
                os.dup2(f.fileno(), fd)
        return f, f.tell()

    def _rotate(self) -> None:
        self._file.close()
        try:
            for i in range(self._backups - 1, 0, -1):
                older = self._path.with_name(f"{self._path.name}.{i}")
                if older.exists():
                    os.replace(older, self._path.with_name(f"{self._path.name}.{i + 1}"))
            if self._backups > 0:
                os.replace(self._path, self._path.with_name(f"{self._path.name}.1"))
            else:
                self._path.unlink()
        except OSError:
            pass  # Windows refuses to rename a file someone reads (`ccproxy logs -f`): keep appending
        self._file, self._size = self._open()

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "backslashreplace")
        with self._lock:
            if self._size and self._size + len(data) > self._max:
                self._rotate()
            self._file.write(data)
            self._size += len(data)
        return len(text)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        with self._lock:
            self._file.close()
        super().close()


def serve_detached(argv: list[str]) -> int:
    """The detached child's entry (see `BOOT`): `LOG serve FLAGS...` with output to the rotating log."""
    stream = RotatingLog(Path(argv[0]), LOG_MAX_BYTES, LOG_BACKUPS, redirect_fds=True)
    sys.stdout = sys.stderr = stream
    stream.write(
        f"--- {datetime.now().astimezone():%Y-%m-%d %H:%M:%S%z} ccproxy {__version__} "
        f"starting in the background (pid {os.getpid()}) ---\n"
    )
    from ccproxy_core.cli.main import main

    return main(argv[1:])


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a file ("" when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return _tail_of(f, lines)
    except OSError:
        return ""


def _tail_of(f: BinaryIO, lines: int) -> str:
    """The last `lines` lines of an open file, read backwards from its end (the log may be
    megabytes); the file is left positioned at that end."""
    end = f.seek(0, os.SEEK_END)
    pos, data = end, b""
    while lines > 0 and pos > 0 and data.count(b"\n") <= lines:
        step = min(65536, pos)
        pos -= step
        f.seek(pos)
        data = f.read(step) + data
    f.seek(end)
    if lines <= 0:
        return ""
    return b"\n".join(data.split(b"\n")[-lines - 1 :]).decode("utf-8", "replace").lstrip("\n")


def show(path: Path, f: BinaryIO, lines: int, *, follow: bool, poll: float = 0.25) -> None:
    """Print the last lines of `f`, then (follow) whatever is appended from exactly there on,
    moving to the new file when the server rotates the log. Closes the file it ends on."""
    try:
        sys.stdout.write(_tail_of(f, lines))
        sys.stdout.flush()
        while follow:
            data = f.read(65536)
            if data:
                sys.stdout.write(data.decode("utf-8", "replace"))
                sys.stdout.flush()
                continue
            try:
                now = os.stat(path)
                rotated = now.st_ino != os.fstat(f.fileno()).st_ino or now.st_size < f.tell()
            except FileNotFoundError:
                rotated = False  # between the rename and the new file
            if rotated:
                f.close()
                f = open(path, "rb")  # noqa: SIM115
                continue
            time.sleep(poll)
    finally:
        f.close()
