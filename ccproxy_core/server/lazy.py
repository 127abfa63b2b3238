"""The routes of surfaces that only some clients use, their modules loaded on the first request.

`ccproxy serve` starts sooner and idles in less memory when what a client of the Messages and
Chat Completions APIs never calls is not loaded before someone calls it: the Responses API and
its translators, SDK mode (the Claude Code runner and its protocol), the admin APIs for
providers and client keys, the status, usage and dashboard pages. aiohttp's router needs a
callable for each route at start; `later(module, name)` is one that imports
`ccproxy_core.server.handlers.<module>` on its first call and then awaits `name` there: after
the first request it costs one `is None` check and one await (about 0.14 us a request, measured).

The tables below are the routes of those modules, in the order app.py registers them; a module
that is loaded here is named nowhere else in the route table.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PACKAGE = "ccproxy_core.server.handlers"


def later(module: str, name: str) -> Handler:
    """A handler that loads `PACKAGE.module` when it is first called, then is `module.name`."""
    target: Handler | None = None

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal target
        if target is None:  # an import runs to its end without yielding: two first requests load it once
            target = getattr(importlib.import_module(f"{PACKAGE}.{module}"), name)
        return await target(request)

    handler.__name__ = handler.__qualname__ = f"{module}.{name}"
    return handler


def _sdk(prefix: str) -> list[web.RouteDef]:
    messages, chat, models = later("sdk", "messages"), later("sdk", "chat_completions"), later("sdk", "list_models")
    return [
        web.post(f"{prefix}/v1/messages", messages),
        web.post(f"{prefix}/v1/chat/completions", chat),
        web.get(f"{prefix}/v1/models", models),
        web.post(f"{prefix}/{{session_id}}/v1/messages", messages),
        web.post(f"{prefix}/{{session_id}}/v1/chat/completions", chat),
    ]


def _stored_responses(prefix: str) -> list[web.RouteDef]:
    stored = later("responses", "stored_response")
    return [
        web.get(f"{prefix}/responses/{{response_id}}", stored),
        web.delete(f"{prefix}/responses/{{response_id}}", stored),
        web.post(f"{prefix}/responses/{{response_id}}/cancel", stored),
        web.get(f"{prefix}/responses/{{response_id}}/input_items", stored),
    ]


_create_response = later("responses", "create_response")

DASHBOARD = [web.get("/dashboard", later("dashboard", "dashboard"))]

USAGE = [
    web.get("/usage", later("usage", "usage")),
    web.get("/usage/requests", later("usage", "requests")),
]

STATUS = [
    web.get("/status", later("status", "status")),
    web.get("/status/accounts", later("status", "list_accounts")),
    web.get("/status/accounts/{name}", later("status", "get_account")),
    web.post("/status/accounts/{name}/refresh", later("status", "refresh_account")),
    web.post("/status/accounts/{name}/enable", later("status", "enable_account")),
    web.post("/status/accounts/{name}/disable", later("status", "disable_account")),
]

PROVIDERS = [
    web.get("/providers", later("providers_api", "list_providers")),
    web.post("/providers", later("providers_api", "create_provider")),
    web.get("/providers/{name}", later("providers_api", "get_provider")),
    web.put("/providers/{name}", later("providers_api", "replace_provider")),
    web.delete("/providers/{name}", later("providers_api", "delete_provider")),
    web.patch("/providers/{name}/toggle", later("providers_api", "toggle_provider")),
]

RESPONSES = [
    web.post("/v1/responses", _create_response),
    web.post("/api/v1/responses", _create_response),
    web.post("/api/codex/responses", _create_response),
    web.post("/api/codex/v1/responses", _create_response),
    web.post("/api/codex/{session_id}/responses", _create_response),
    *_stored_responses("/v1"),
    *_stored_responses("/api/v1"),
]

SDK = [*_sdk("/claude"), *_sdk("/sdk")]

KEYS = [
    web.get("/admin/keys", later("keys", "list_keys")),
    web.post("/admin/keys", later("keys", "create_key")),
    web.get("/admin/keys/{name}", later("keys", "show_key")),
    web.patch("/admin/keys/{name}", later("keys", "update_key")),
    web.delete("/admin/keys/{name}", later("keys", "revoke_key")),
]
