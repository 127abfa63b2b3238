"""`GET /health`: is the proxy up, and can each provider serve? Never shows a secret."""

from __future__ import annotations

import os
import time
from typing import Any

from aiohttp import web

from ccproxy_core import __version__
from ccproxy_core.server.handlers.common import json_response
from ccproxy_core.server.state import STATE
from ccproxy_core.server.workers import WORKER


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    now = time.monotonic()
    providers = [state.provider_health(p, now) for p in state.runtime.providers.values()]
    reasons = [f"provider {p['name']} cannot serve now" for p in providers if p["enabled"] and not p["usable"]]
    reasons += state.shared.problems()  # a shared-state backend that cannot be reached
    body: dict[str, Any] = {
        "status": "degraded" if reasons else "ok",
        "reasons": reasons,
        "state_backend": state.shared.backend,
        "version": __version__,
        "pid": os.getpid(),
        "uptime": round(time.time() - state.started_at, 3),
        "providers": providers,
    }
    worker = request.app.get(WORKER)
    if worker is not None:  # one of `serve --workers N`: which one answered, and its supervisor
        body["worker"] = worker.health()
    return json_response(body)
