"""Changes in a few directories, from Linux inotify, read by the event loop: no thread, no watchdog.

The config watcher (config_watch.py) needs to hear of an edit to a handful of files from the
first moment the server runs. watchdog does that everywhere, but on Linux it costs every start
its 13 modules, three threads (reader, emitter, dispatcher) and about 0.5 MB of idle memory, for
what one file descriptor in the event loop does: `inotify_init1` and `inotify_add_watch` (called
through ctypes, which ccproxy loads anyway for files.py), then `loop.add_reader` reads the
events as they come. Where inotify cannot be had (macOS, Windows, a libc without it) `watch`
falls back to watchdog's threads, whose events are handed to the loop, so a caller gets
`on_change(path)` in the event loop either way and stops either with `await watching.stop()`.

Reading is the only I/O here; `parse` (bytes -> events) takes bytes alone. A read returns
whole events (the kernel never splits one), so nothing is carried from one read to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import struct
import sys
from collections.abc import Callable, Iterable
from typing import Any

# <sys/inotify.h>: what a watched directory reports about the names in it.
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_Q_OVERFLOW = 0x4000  # the kernel's queue was full: events were lost
# watchdog's modified (IN_MODIFY, IN_ATTRIB), closed, created, deleted and moved (either end).
MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
IN_NONBLOCK = os.O_NONBLOCK  # inotify_init1's flags are the open(2) flags' values on Linux
IN_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

_HEAD = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then len bytes of name
READ_SIZE = 64 * 1024


def parse(buf: bytes) -> list[tuple[int, int, bytes]]:
    """The (watch descriptor, mask, name) of each event in one read; name is b"" for none."""
    events = []
    at = 0
    while at + _HEAD.size <= len(buf):
        wd, mask, _cookie, size = _HEAD.unpack_from(buf, at)
        at += _HEAD.size
        events.append((wd, mask, buf[at : at + size].split(b"\0", 1)[0]))
        at += size
    return events


OnChange = Callable[[str | None], None]


class DirWatch:
    """One inotify descriptor watching `dirs`; `on_change(path)` for each name an event is about,
    `on_change(None)` when events were lost (anything may have changed)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, on_change: OnChange) -> None:
        self._loop = loop
        self._fd = fd
        self._on_change = on_change
        self._dirs: dict[int, bytes] = {}

    def add(self, add_watch: Callable[[int, bytes, int], int], directory: str) -> None:
        path = os.fsencode(directory)
        wd = add_watch(self._fd, path, MASK)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_add_watch: {os.strerror(err)}", directory)
        self._dirs[wd] = path

    def start(self) -> None:
        self._loop.add_reader(self._fd, self._read)

    def _read(self) -> None:
        while True:
            try:
                buf = os.read(self._fd, READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            if not buf:
                return
            for wd, mask, name in parse(buf):
                if mask & IN_Q_OVERFLOW:
                    self._on_change(None)
                elif name and wd in self._dirs:
                    self._on_change(os.fsdecode(os.path.join(self._dirs[wd], name)))

    def close(self) -> None:
        if self._fd < 0:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1

    async def stop(self) -> None:
        self.close()


class WatchdogWatch:
    """watchdog's observer, where inotify in the loop cannot be had; stopped with `stop`."""

    def __init__(self, observer: Any) -> None:
        self.observer = observer

    async def stop(self) -> None:
        self.observer.stop()
        await asyncio.to_thread(self.observer.join, 5)


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    return libc if hasattr(libc, "inotify_init1") and hasattr(libc, "inotify_add_watch") else None


def open_watch(dirs: Iterable[str], on_change: OnChange) -> DirWatch | None:
    """Watch `dirs` from the running loop; None where inotify cannot be had (the caller falls back).

    Raises OSError when inotify exists but refuses (out of watches or descriptors), as watchdog does."""
    libc = _libc()
    if libc is None:
        return None
    fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"inotify_init1: {os.strerror(err)}")
    watch = DirWatch(asyncio.get_running_loop(), fd, on_change)
    try:
        for d in dirs:
            watch.add(libc.inotify_add_watch, d)
        watch.start()
    except BaseException:
        os.close(fd)
        raise
    return watch


def watch(dirs: Iterable[str], on_change: OnChange) -> DirWatch | WatchdogWatch:
    """Watch `dirs`, calling `on_change(path)` in the running loop: inotify where it can be had,
    watchdog's threads elsewhere. Raises OSError when the system refuses (out of watches)."""
    dirs = list(dirs)
    return open_watch(dirs, on_change) or _watchdog(dirs, on_change)


# watchdog's events that can mean a file's content changed (not opened, not closed unwritten).
WATCHDOG_KINDS = frozenset({"modified", "created", "moved", "deleted", "closed"})


def _watchdog(dirs: list[str], on_change: OnChange) -> WatchdogWatch:
    # Imported here: where inotify serves, watchdog (13 modules, three threads) is never loaded.
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer

    loop = asyncio.get_running_loop()

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:  # on watchdog's thread
            if event.event_type not in WATCHDOG_KINDS:
                return
            for path in (event.src_path, getattr(event, "dest_path", "")):
                if path:
                    with contextlib.suppress(RuntimeError):  # the loop closed: shutting down
                        loop.call_soon_threadsafe(on_change, os.fsdecode(path))

    observer = Observer()
    handler = Handler()
    for d in dirs:
        observer.schedule(handler, d, recursive=False)
    observer.daemon = True
    observer.start()
    return WatchdogWatch(observer)
