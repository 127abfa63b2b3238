"""Changes to a few files, noticed by looking: each file's status, read twice a second in the event loop.

The server follows edits to its config files (server/config_watch.py) and to an accounts file
(accounts/watch.py): a handful of paths, each of which may not exist yet. Looking at them costs
a server a few `stat` calls per `INTERVAL` and nothing else, and sees every kind of change
wherever the file lives:

- an edit in place, a save by rename over it, a creation, a deletion;
- a file bind-mounted into a container from the host, whose edits inotify never hears (Docker
  Desktop on macOS and Windows), or on a network filesystem.

It needs no thread and no library: the inotify watcher it replaces loaded ctypes for its system
calls (0.3 MB of an idle server's memory) and fell back to watchdog's three threads off Linux.
An edit is seen within `INTERVAL`; the watchers then wait out their own debounce, since editors
write in several steps.

A file's `signature` is its inode, size and modification and change times (nanoseconds), or
None when it cannot be read: any change of signature is a change. `changed` (the comparison)
is pure; `FileWatch` is the loop's timer around it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping

INTERVAL = 0.5  # seconds between looks

Signature = tuple[int, int, int, int] | None


def signature(path: str) -> Signature:
    """What changes when the file does: (inode, size, mtime ns, ctime ns); None when missing or unreadable."""
    try:
        # Most watched paths are places a file may appear: `access` says "no" without the
        # exception a failed `stat` raises, twice a second per path.
        if not os.access(path, os.F_OK):
            return None
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def changed(before: Mapping[str, Signature], after: Mapping[str, Signature]) -> list[str]:
    """The paths whose signature differs, in `after`'s order."""
    return [path for path, sig in after.items() if before.get(path) != sig]


class FileWatch:
    """Looks at `paths` every `interval` seconds from the loop, calling `on_change(path)` for
    each that changed since the last look; stopped with `stop` (or `close`)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        paths: Iterable[str],
        on_change: Callable[[str], None],
        interval: float = INTERVAL,
    ) -> None:
        self._loop = loop
        self._on_change = on_change
        self._interval = interval
        self._seen = {path: signature(path) for path in dict.fromkeys(paths)}
        self._timer: asyncio.TimerHandle | None = loop.call_later(interval, self._look)

    @property
    def paths(self) -> list[str]:
        return list(self._seen)

    def _look(self) -> None:
        now = {path: signature(path) for path in self._seen}
        found, self._seen = changed(self._seen, now), now
        self._timer = self._loop.call_later(self._interval, self._look)
        for path in found:
            self._on_change(path)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def stop(self) -> None:
        self.close()


def watch(paths: Iterable[str], on_change: Callable[[str], None], interval: float = INTERVAL) -> FileWatch:
    """Watch `paths` (existing or not) from the running loop; their current state counts as seen."""
    return FileWatch(asyncio.get_running_loop(), paths, on_change, interval)
