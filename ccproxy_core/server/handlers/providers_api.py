"""The live provider API: list, read, add, replace, delete and toggle providers without a restart.

Each write builds the whole new configuration, validates it exactly as a config file would be
validated (a bad write is a 400 naming the field), persists it atomically to the file the
providers came from, and only then swaps it into the running server. Requests in flight keep
the snapshot they started with. Keys are masked in every answer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from ccproxy_core.config.compat import strip_json_comments
from ccproxy_core.config.model import ConfigError, ProviderConfig, structure, unstructure
from ccproxy_core.core.errors import InvalidRequest, NotFound
from ccproxy_core.core.redaction import mask_setting
from ccproxy_core.core.wire import JSON
from ccproxy_core.files import atomic_write
from ccproxy_core.server.handlers.common import json_response, read_json
from ccproxy_core.server.state import STATE, State

# Camel-case spellings the Go ccproxy's provider API accepts.
_ALIASES = {"apiBaseUrl": "api_base_url", "apiKey": "api_key", "apiKeys": "api_keys", "baseURL": "api_base_url"}


def public(provider: ProviderConfig) -> JSON:
    data: JSON = unstructure_provider(provider)
    data["api_key"] = mask_setting(provider.api_key)
    data["api_keys"] = [mask_setting(k) for k in provider.api_keys]
    return data


def unstructure_provider(provider: ProviderConfig) -> JSON:
    from ccproxy_core.config.model import converter

    out: JSON = converter.unstructure(provider)
    return out


def _normalize(body: JSON, name: str | None = None) -> JSON:
    data = {_ALIASES.get(k, k): v for k, v in body.items()}
    if name is not None:
        if data.get("name", name) != name:
            raise InvalidRequest(f"name: the body says {data['name']!r} but the path says {name!r}")
        data["name"] = name
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise InvalidRequest("name: expected the provider's name as a non-empty string")
    return data


def _find(state: State, name: str) -> ProviderConfig:
    provider = state.config.provider(name)
    if provider is None:
        names = ", ".join(p.name for p in state.config.providers)
        raise NotFound(f"no provider named {name!r}; configured: {names}")
    return provider


def _target_file(state: State) -> Path | None:
    return Path(state.config_files[-1]) if state.config_files else None


async def _commit(request: web.Request, providers: list[JSON]) -> None:
    """Validate, persist, then swap: the running config changes only if all three succeed."""
    state = request.app[STATE]
    native = unstructure(state.config)
    native["providers"] = providers
    path = _target_file(state)
    try:
        config = structure(native, str(path or "request"))
    except ConfigError as exc:
        raise InvalidRequest("; ".join(p.split(": ", 1)[1] for p in exc.problems)) from None
    if path is not None:
        _persist(path, providers)
    await state.reconfigure(config)


def _persist(path: Path, providers: list[JSON]) -> None:
    if path.suffix == ".toml":
        raise InvalidRequest(
            f"providers come from {path}, a TOML file that ccproxy does not rewrite; "
            "edit it by hand or move the providers to a JSON config"
        )
    text = path.read_text(encoding="utf-8") if path.exists() else "{}"
    raw: Any = orjson.loads(strip_json_comments(text) or "{}")
    raw["providers"] = providers
    atomic_write(path, orjson.dumps(raw, option=orjson.OPT_INDENT_2) + b"\n")


def _current(state: State) -> list[JSON]:
    return [unstructure_provider(p) for p in state.config.providers]


async def list_providers(request: web.Request) -> web.Response:
    return json_response({"providers": [public(p) for p in request.app[STATE].config.providers]})


async def get_provider(request: web.Request) -> web.Response:
    return json_response(public(_find(request.app[STATE], request.match_info["name"])))


async def create_provider(request: web.Request) -> web.Response:
    _, body = await read_json(request)
    data = _normalize(body)
    async with _lock(request):
        state = request.app[STATE]
        if state.config.provider(data["name"]) is not None:
            raise InvalidRequest(f"name: a provider named {data['name']!r} exists; use PUT to replace it")
        await _commit(request, [*_current(state), data])
        return json_response(public(_find(state, data["name"])), status=201)


async def replace_provider(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    _, body = await read_json(request)
    data = _normalize(body, name)
    async with _lock(request):
        state = request.app[STATE]
        _find(state, name)
        await _commit(request, [data if p["name"] == name else p for p in _current(state)])
        return json_response(public(_find(state, name)))


async def delete_provider(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    async with _lock(request):
        state = request.app[STATE]
        _find(state, name)
        await _commit(request, [p for p in _current(state) if p["name"] != name])
    return json_response({"deleted": name})


async def toggle_provider(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    async with _lock(request):
        state = request.app[STATE]
        current = _find(state, name)
        await _commit(
            request, [{**p, "enabled": not current.enabled} if p["name"] == name else p for p in _current(state)]
        )
        return json_response(public(_find(state, name)))


def _lock(request: web.Request) -> asyncio.Lock:
    """One config write at a time; reads and proxied requests never wait for it."""
    return request.app[STATE].write_lock


ROUTES = [
    web.get("/providers", list_providers),
    web.post("/providers", create_provider),
    web.get("/providers/{name}", get_provider),
    web.put("/providers/{name}", replace_provider),
    web.delete("/providers/{name}", delete_provider),
    web.patch("/providers/{name}/toggle", toggle_provider),
]
