"""The live provider API: list, read, add, replace, delete and toggle providers without a restart.

A write is planned on the config file the providers come from (`config.persist`: the
highest-precedence file that sets them), validated by loading the whole configuration with the
edited text in place of that file, exactly as the next start would (a bad write is a 400 naming
the field, and nothing touches the disk), then written with the file's comments and `$VAR`
references kept and the previous text saved as `NAME.bak`, and only then swapped into the
running server. Requests in flight keep the snapshot they started with. Keys are masked in
every answer; a masked key sent back (a GET edited and PUT) keeps the key it stands for.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from ccproxy_core.config import persist
from ccproxy_core.config.load import LoadedConfig, Sources
from ccproxy_core.config.model import ConfigError, ProviderConfig, structure, unstructure
from ccproxy_core.core.errors import InvalidRequest, NotFound
from ccproxy_core.core.redaction import mask_setting
from ccproxy_core.core.wire import JSON
from ccproxy_core.server.config_watch import SOURCES, apply
from ccproxy_core.server.handlers.common import json_response, read_json
from ccproxy_core.server.state import STATE, State

log = logging.getLogger("ccproxy.config")

# Camel-case spellings the Go ccproxy's provider API accepts.
_ALIASES = {"apiBaseUrl": "api_base_url", "apiKey": "api_key", "apiKeys": "api_keys", "baseURL": "api_base_url"}
Change = Callable[[list[JSON]], list[JSON]]


def public(provider: ProviderConfig) -> JSON:
    data: JSON = unstructure_provider(provider)
    data["api_key"] = mask_setting(provider.api_key)
    data["api_keys"] = [mask_setting(k) for k in provider.api_keys]
    data["headers"] = {k: mask_setting(v) for k, v in provider.headers.items()}  # custom providers' credentials
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


def _sources(request: web.Request) -> Sources:
    """How the running configuration was read; an app built from a list of files reads just those."""
    sources = request.app.get(SOURCES)
    if sources is not None:
        return sources
    files = tuple(Path(f) for f in request.app[STATE].config_files)
    return Sources(env=dict(os.environ), only_files=files)


def _problems(exc: ConfigError) -> str:
    return "; ".join(exc.problems)


async def _commit(request: web.Request, change: Change) -> None:
    """Plan on the file, validate as a start would, persist with a backup, then swap."""
    state = request.app[STATE]
    sources = _sources(request)
    try:
        current = await asyncio.to_thread(sources.load)
        target = persist.locate(current)
    except ConfigError as exc:
        raise InvalidRequest(
            f"the config files do not load as they are now; fix them first: {_problems(exc)}"
        ) from None
    except persist.NotWritable as exc:
        raise InvalidRequest(str(exc)) from None
    if target is None:
        await _commit_live(state, change)
        return
    base = list(target.providers) if target.has_list else [_raw(p) for p in state.config.providers]
    new_text = target.edited(change(base))
    try:
        loaded: LoadedConfig = await asyncio.to_thread(sources.load, {target.path: new_text})
    except ConfigError as exc:
        raise InvalidRequest(_problems(exc)) from None
    backup = await asyncio.to_thread(target.write, new_text)
    log.info("providers changed through the API: wrote %s (previous text in %s)", target.path, backup)
    await apply(state, loaded.config)


async def _commit_live(state: State, change: Change) -> None:
    native = unstructure(state.config)
    native["providers"] = change([_raw(p) for p in state.config.providers])
    try:
        config = structure(native, "request")
    except ConfigError as exc:
        raise InvalidRequest("; ".join(p.split(": ", 1)[1] for p in exc.problems)) from None
    log.warning(
        "providers changed through the API are live only: ccproxy started without a config file "
        "(`ccproxy init` writes one)"
    )
    await apply(state, config)


def _raw(provider: ProviderConfig) -> JSON:
    """A provider as a file entry: only the keys that differ from the defaults."""
    data = unstructure_provider(provider)
    defaults = unstructure_provider(ProviderConfig(name=provider.name))
    return {k: v for k, v in data.items() if k == "name" or v != defaults.get(k)}


def _keep_masked(data: JSON, entry: JSON, current: ProviderConfig) -> JSON:
    """A masked key sent back (from a GET) stands for the key it masks: keep the file's own value."""
    out = dict(data)
    if "api_key" in out and current.api_key and out["api_key"] == mask_setting(current.api_key):
        out["api_key"] = entry.get("api_key", current.api_key)
    keys = out.get("api_keys")
    if isinstance(keys, list):
        masked = {mask_setting(k): i for i, k in enumerate(current.api_keys)}
        listed = entry.get("api_keys")
        file_keys: list[Any] = listed if isinstance(listed, list) else list(current.api_keys)
        out["api_keys"] = [
            file_keys[masked[k]] if isinstance(k, str) and k in masked and masked[k] < len(file_keys) else k
            for k in keys
        ]
    headers = out.get("headers")
    if isinstance(headers, dict):
        listed_headers = entry.get("headers")
        file_headers: dict[str, Any] = listed_headers if isinstance(listed_headers, dict) else dict(current.headers)
        out["headers"] = {
            k: file_headers.get(k, current.headers[k])
            if k in current.headers and v == mask_setting(current.headers[k])
            else v
            for k, v in headers.items()
        }
    return out


def _named(entries: list[JSON], name: str) -> JSON:
    return next((e for e in entries if e.get("name") == name), {"name": name})


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
        await _commit(request, lambda entries: [*entries, data])
        return json_response(public(_find(state, data["name"])), status=201)


async def replace_provider(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    _, body = await read_json(request)
    data = _normalize(body, name)
    async with _lock(request):
        state = request.app[STATE]
        current = _find(state, name)

        def change(entries: list[JSON]) -> list[JSON]:
            new = _keep_masked(data, _named(entries, name), current)
            return [new if e.get("name") == name else e for e in entries]

        await _commit(request, change)
        return json_response(public(_find(state, name)))


async def delete_provider(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    async with _lock(request):
        state = request.app[STATE]
        _find(state, name)
        await _commit(request, lambda entries: [e for e in entries if e.get("name") != name])
    return json_response({"deleted": name})


async def toggle_provider(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    async with _lock(request):
        state = request.app[STATE]
        enabled = not _find(state, name).enabled
        await _commit(
            request, lambda entries: [{**e, "enabled": enabled} if e.get("name") == name else e for e in entries]
        )
        return json_response(public(_find(state, name)))


def _lock(request: web.Request) -> asyncio.Lock:
    """One config write at a time; reads and proxied requests never wait for it."""
    return request.app[STATE].write_lock
