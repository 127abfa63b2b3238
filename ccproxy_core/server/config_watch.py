"""Hot reload of the config files the server was started from.

A user edits `config.json` and expects the running proxy to follow (accounts.json already does),
without `ccproxy restart`. `ConfigWatcher` watches every file the configuration was looked for
(so a project file created after the start counts too), and a change to one, after a short
trailing debounce (editors write in several steps), rebuilds the whole configuration exactly as
a start would (`Sources.load`):

- valid and different: `State.reconfigure` swaps it in; requests in flight finish on the old
  snapshot. Host and port cannot move under a bound socket: a change to them is logged as
  needing a restart.
- invalid: each problem is logged as its `file: key: problem` line and the last good
  configuration stays in use.

The file is read off the event loop; the swap holds the State's write lock, so a reload never
interleaves with a write from the live provider API. The files are looked at twice a second from
the event loop (config/file_watch.py), so an edit applies within about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from ccproxy_core.config import file_watch
from ccproxy_core.config.load import LoadedConfig, Sources
from ccproxy_core.config.model import Config, ConfigError
from ccproxy_core.server.state import STATE, State

log = logging.getLogger("ccproxy.config")

DEBOUNCE = 0.25
SOURCES = web.AppKey("config_sources", Sources)


class ConfigWatcher:
    """Reload `sources` into `state` within about a second of a change to one of its files."""

    def __init__(
        self,
        state: State,
        sources: Sources,
        *,
        debounce: float = DEBOUNCE,
        on_reload: Callable[[LoadedConfig | None], None] | None = None,
    ) -> None:
        self.state = state
        self.sources = sources
        self._debounce = debounce
        self.on_reload = on_reload  # tests and the CLI's --reload learn of each outcome
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observer: file_watch.FileWatch | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        paths = [str(p) for p in self.sources.candidates()]
        if not paths:
            return
        self._observer = file_watch.watch(paths, self._changed)
        log.debug("watching the config files %s", ", ".join(paths))

    async def stop(self) -> None:
        observer, self._observer = self._observer, None
        if self._timer is not None:
            self._timer.cancel()
        if observer is not None:
            await observer.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _changed(self, path: str) -> None:
        """One of the files changed (in the loop)."""
        self._poke()

    def _poke(self) -> None:
        if self._observer is None or self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(self._debounce, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._task is not None and not self._task.done():
            self._again = True  # a reload is running: run one more after it, on the newest text
            return
        self._task = asyncio.get_running_loop().create_task(self._reload_all(), name="config-reload")

    async def _reload_all(self) -> None:
        while True:
            self._again = False
            await self.reload()
            if not self._again:
                return

    async def reload(self) -> LoadedConfig | None:
        """Load again and apply; the new configuration, or None when it was refused."""
        try:
            loaded = await asyncio.to_thread(self.sources.load)
        except ConfigError as exc:
            log.error(
                "config change not applied; the last good configuration stays in use:\n  %s", "\n  ".join(exc.problems)
            )
            self._report(None)
            return None
        async with self.state.write_lock:
            await apply(self.state, loaded.config)
        self._report(loaded)
        return loaded

    def _report(self, loaded: LoadedConfig | None) -> None:
        if self.on_reload is not None:
            self.on_reload(loaded)


async def apply(state: State, config: Config) -> bool:
    """Swap `config` in when it differs from the running one; whether it did."""
    old = state.config
    if config == old:
        return False
    if (config.host, config.port) != (old.host, old.port):
        log.warning(
            "host/port changed in the config (%s:%d -> %s:%d); that takes a restart: `ccproxy restart`",
            old.host,
            old.port,
            config.host,
            config.port,
        )
    if config.log.level != old.log.level:
        logging.getLogger("ccproxy").setLevel(config.log.level.upper())
    await state.reconfigure(config)
    log.info(
        "configuration reloaded (%d provider(s): %s)",
        len(config.providers),
        ", ".join(p.name for p in config.providers),
    )
    return True


WATCHER = web.AppKey("config_watcher", ConfigWatcher)


def install(app: web.Application, sources: Sources) -> ConfigWatcher:
    """Watch `sources` while `app` runs; call after `create_app`, before the app starts."""
    watcher = ConfigWatcher(app[STATE], sources)
    app[SOURCES] = sources
    app[WATCHER] = watcher

    async def watch(_: web.Application) -> AsyncIterator[None]:
        watcher.start()
        try:
            yield
        finally:
            await watcher.stop()

    app.cleanup_ctx.append(watch)
    return watcher


def attach(app: web.Application, loaded: LoadedConfig) -> None:
    """At start: name the ignored settings in one warning, and watch the files the config came from."""
    if loaded.warnings:
        log.warning(
            "%d setting(s) mean nothing to ccproxy and were ignored: %s",
            len(loaded.warnings),
            "; ".join(loaded.warnings),
        )
    if loaded.origin is not None:
        install(app, loaded.origin)
