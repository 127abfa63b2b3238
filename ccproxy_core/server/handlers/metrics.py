"""`GET /metrics`: the Prometheus text format, from the server's own registry (server/metrics.py)."""

from __future__ import annotations

from aiohttp import web

from ccproxy_core.core.errors import NotFound
from ccproxy_core.server.metrics import CONTENT_TYPE
from ccproxy_core.server.observability import OBS


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[OBS].metrics
    if registry is None:
        raise NotFound("metrics are off (metrics.enabled: false in the config)")
    response = web.Response(body=registry.render())
    response.headers["content-type"] = CONTENT_TYPE
    return response
