"""`GET /v1/models`: route aliases, the models routes send to, and every provider's models.

A request carrying `anthropic-version` gets Anthropic's list shape; any other gets OpenAI's.
Clients that pick a model from this list (Open WebUI, Continue) need it non-empty whenever
requests can be served: a config whose providers list no `models` still names models in its
routes (`"default": {"provider": "openai", "model": "gpt-4.1"}`), and those are listed too.
"""

from __future__ import annotations

import time

from aiohttp import web

from ccproxy_core.core.headers import ANTHROPIC_VERSION
from ccproxy_core.core.wire import JSON
from ccproxy_core.server.handlers.common import json_response
from ccproxy_core.server.state import STATE

_SCENARIOS = frozenset({"default", "background", "think", "longContext", "webSearch", "image"})


def model_ids(
    config_routes: dict[str, str],
    provider_models: dict[str, tuple[str, ...]],
    route_models: dict[str, tuple[str, str]] | None = None,
) -> list[tuple[str, str]]:
    """(model id, owner) pairs: aliases first, then the models routes name, then each provider's, no duplicates.

    `route_models`: route key -> (provider, model) for every route that names a model."""
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for alias, provider in config_routes.items():
        if alias not in _SCENARIOS and "*" not in alias and alias not in seen:
            seen.add(alias)
            out.append((alias, provider))
    for provider, model in (route_models or {}).values():
        if model and model not in seen:
            seen.add(model)
            out.append((model, provider))
    for provider, models in provider_models.items():
        for model in models:
            if model not in seen:
                seen.add(model)
                out.append((model, provider))
    return out


async def list_models(request: web.Request) -> web.Response:
    config = request.app[STATE].config
    enabled = {p.name for p in config.providers if p.enabled}
    ids = model_ids(
        {k: r.provider for k, r in config.routes.items()},
        {p.name: p.models for p in config.providers if p.enabled},
        {k: (r.provider, r.model) for k, r in config.routes.items() if r.provider in enabled},
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
