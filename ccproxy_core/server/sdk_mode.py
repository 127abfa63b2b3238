"""SDK mode's place in the app: its runner is made on the first `/claude` or `/sdk` turn.

The runner (ccproxy_core.sdk.runner: Claude Code processes, warm sessions, the TTL sweep) and
the handlers that use it (server/handlers/sdk.py) are loaded when a client first asks for SDK
mode, so a server whose clients never do neither loads them nor runs the sweep. What the app
holds from its start is `SdkMode`: the facts the runner is made from, read at start as before,
and the runner once there is one; closing the app closes it, killing every process it left.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ccproxy_core import dirs
from ccproxy_core.server.state import STATE

if TYPE_CHECKING:
    from ccproxy_core.sdk.runner import SdkRunner


class SdkMode:
    def __init__(self, *, proxy_host: str, proxy_port: int, state_dir: Path, ttl: Callable[[], float]) -> None:
        self._host, self._port, self._state_dir = proxy_host, proxy_port, state_dir
        self._ttl = ttl  # the current sdk.session_ttl (the config may be reloaded)
        self._runner: SdkRunner | None = None

    def runner(self) -> SdkRunner:
        """The app's runner, made and started on the first call (in the running loop)."""
        if self._runner is None:
            from ccproxy_core.sdk.runner import SdkRunner

            self._runner = SdkRunner(proxy_host=self._host, proxy_port=self._port, state_dir=self._state_dir)
            self._runner.start(self._ttl)
        return self._runner

    def live_pids(self) -> list[int]:
        """The Claude Code processes alive now (none before the first turn)."""
        return [] if self._runner is None else self._runner.live_pids()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.close()


SDK_MODE = web.AppKey("sdk_mode", SdkMode)


async def lifecycle(app: web.Application) -> AsyncIterator[None]:
    """The runner lives as long as the app; closing it kills every Claude Code process left."""
    state = app[STATE]
    mode = SdkMode(
        proxy_host=state.config.host,
        proxy_port=state.config.port,
        state_dir=dirs.state_dir(),
        ttl=lambda: float(state.config.sdk.session_ttl),
    )
    app[SDK_MODE] = mode
    yield
    await mode.close()
