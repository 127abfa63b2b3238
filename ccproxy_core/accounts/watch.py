"""Reloading an accounts file when it changes, for the server's pools.

`AccountsWatcher` looks at the file twice a second from the event loop (config/file_watch.py;
an edit in place and a save by rename over it, as editors and our own writer do, both count),
waits out a trailing-edge debounce so the last write wins, reads and parses the file on the
debounce timer's thread, and hands the result to an async callback on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from attrs import frozen

from ccproxy_core.accounts.store import AccountsError, parse_accounts, read_raw
from ccproxy_core.config import file_watch
from ccproxy_core.core.credential import Credential

log = logging.getLogger("ccproxy.accounts")


@frozen
class Reload:
    """One reload: the new set, or the error that made the watcher keep the last good set."""

    credentials: tuple[Credential, ...] | None
    warnings: tuple[str, ...] = ()
    error: AccountsError | None = None


class AccountsWatcher:
    """Calls `callback(Reload)` on the event loop within ~`debounce` s of the last change.

    The file is read on the debounce timer's thread, not on the loop. A broken file (caught
    mid-edit) is reported as `Reload(None, error=...)`; `last_good` still holds the previous
    set. Identical content is not reported twice (our own saves after a refresh)."""

    def __init__(
        self, path: Path, callback: Callable[[Reload], Coroutine[Any, Any, None]], *, debounce: float = 0.3
    ) -> None:
        self.path = path
        self.last_good: tuple[Credential, ...] | None = None
        self._callback = callback
        self._debounce = debounce
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observer: file_watch.FileWatch | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._fire_lock = threading.Lock()
        self._digest: bytes | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start watching; call from the event loop. The current content counts as seen."""
        self._loop = asyncio.get_running_loop()
        with contextlib.suppress(AccountsError):
            raw = read_raw(self.path)
            creds, _ = parse_accounts(raw, self.path)
            self._digest, self.last_good = hashlib.sha256(raw).digest(), tuple(creds)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._observer = file_watch.watch([str(self.path)], self._changed)

    def _changed(self, path: str) -> None:
        """The file changed (in the loop)."""
        self._poke()

    async def stop(self) -> None:
        with self._lock:
            observer, self._observer = self._observer, None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if observer is not None:
            await observer.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _poke(self) -> None:
        """A change was seen: restart the debounce timer."""
        with self._lock:
            if self._observer is None:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self._debounce, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._fire_lock:  # two timers can overlap when a read is slow; keep them in order
            self._load_and_report()

    def _load_and_report(self) -> None:
        try:
            raw = read_raw(self.path)
            digest = hashlib.sha256(raw).digest()
            if digest == self._digest:
                return
            creds, warnings = parse_accounts(raw, self.path)
            self._digest, self.last_good = digest, tuple(creds)
            reload = Reload(tuple(creds), tuple(warnings))
        except AccountsError as e:
            self._digest = None  # the next good content must be reported even if unchanged
            reload = Reload(None, error=e)
        loop = self._loop
        if loop is None or self._observer is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under us: shutting down
            loop.call_soon_threadsafe(self._dispatch, reload)

    def _dispatch(self, reload: Reload) -> None:
        task = asyncio.get_running_loop().create_task(self._callback(reload))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("accounts reload callback failed", exc_info=task.exception())
