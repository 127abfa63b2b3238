"""`GET /v1/models`: route aliases and every provider's models, in the asking client's shape.

A request carrying `anthropic-version` gets Anthropic's list shape; any other gets OpenAI's.
"""

from __future__ import annotations

import time

from aiohttp import web

from ccproxy_core.core.headers import ANTHROPIC_VERSION
from ccproxy_core.core.wire import JSON
from ccproxy_core.server.handlers.common import json_response
from ccproxy_core.server.state import STATE

_SCENARIOS = frozenset({"default", "background", "think", "longContext", "webSearch", "image"})


def model_ids(config_routes: dict[str, str], provider_models: dict[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    """(model id, owner) pairs: aliases first, then each provider's models, no duplicates."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for alias, provider in config_routes.items():
        if alias not in _SCENARIOS and "*" not in alias and alias not in seen:
            seen.add(alias)
            out.append((alias, provider))
    for provider, models in provider_models.items():
        for model in models:
            if model not in seen:
                seen.add(model)
                out.append((model, provider))
    return out


async def list_models(request: web.Request) -> web.Response:
    config = request.app[STATE].config
    ids = model_ids(
        {k: r.provider for k, r in config.routes.items()}, {p.name: p.models for p in config.providers if p.enabled}
    )
    if ANTHROPIC_VERSION in request.headers:
        data: list[JSON] = [
            {"type": "model", "id": mid, "display_name": mid, "created_at": "2025-01-01T00:00:00Z"} for mid, _ in ids
        ]
        return json_response(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )
    created = int(time.time())
    return json_response(
        {
            "object": "list",
            "data": [{"id": mid, "object": "model", "created": created, "owned_by": owner} for mid, owner in ids],
        }
    )
