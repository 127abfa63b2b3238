"""The keys admin API: list, create, show, change and revoke client keys on the running server.

    GET    /admin/keys            every key (name, masked prefix, state, limits)
    POST   /admin/keys            {"name": ..., limits...} -> 201 with the clear key, shown once
    GET    /admin/keys/{name}     one key
    PATCH  /admin/keys/{name}     change limits (a field set to null is removed)
    DELETE /admin/keys/{name}     revoke: 401 from the next request on

Only the admin key (the config's `apikey`) may call it; a client key gets 403 (refused by
`keyguard.enforce` before this runs). A change is read back into the server at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from ccproxy_core.core.errors import InvalidRequest, NotFound, PermissionDenied, ProxyError
from ccproxy_core.keys.model import KeySettingError, Limits, apply_changes
from ccproxy_core.keys.store import KeyExists, KeyNotFound
from ccproxy_core.server.handlers.common import json_response, read_json
from ccproxy_core.server.keyguard import KEYS, is_admin, transparent_problem
from ccproxy_core.server.state import STATE


class Conflict(ProxyError):
    _status = 409
    _type = "invalid_request_error"


def _admin(request: web.Request) -> None:
    if not request.app[STATE].config.apikey:
        raise PermissionDenied(
            "the keys admin API needs the admin key: set `apikey` in the config (or CCPROXY_API_KEY); "
            "without a server, `ccproxy keys` writes the keys file itself"
        )
    if not is_admin(request):
        raise PermissionDenied("the keys admin API needs the admin key (the config's apikey), not a client key")


def _name(request: web.Request) -> str:
    return request.match_info["name"]


async def _store_call(request: web.Request, func: Any, *args: Any) -> Any:
    guard = request.app[KEYS]
    try:
        result = await asyncio.to_thread(func, *args)
    except KeyNotFound as exc:
        raise NotFound(str(exc)) from None
    except KeyExists as exc:
        raise Conflict(str(exc)) from None
    except KeySettingError as exc:
        raise InvalidRequest(str(exc)) from None
    await asyncio.to_thread(guard.reload)  # the change holds from the next request
    return result


async def list_keys(request: web.Request) -> web.Response:
    _admin(request)
    keys = await _store_call(request, request.app[KEYS].store.list)
    now = time.time()
    return json_response({"keys": [k.to_json(now) for k in keys]})


async def create_key(request: web.Request) -> web.Response:
    _admin(request)
    _, body = await read_json(request)
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("name: expected the new key's name, a non-empty string")
    problem = transparent_problem(request.app)
    if problem is not None:
        raise Conflict(problem.replace("are defined", "would be defined", 1))
    now = time.time()
    try:
        limits = apply_changes(Limits(), body, now)
    except KeySettingError as exc:
        raise InvalidRequest(str(exc)) from None
    key, clear = await _store_call(request, request.app[KEYS].store.create, name, limits, now)
    return json_response({"api_key": clear, **key.to_json(now)}, status=201)


async def show_key(request: web.Request) -> web.Response:
    _admin(request)
    key = await _store_call(request, request.app[KEYS].store.get, _name(request))
    now = time.time()
    local = request.app[KEYS].counters.get(key.name)
    # With a shared backend, the counters every instance charges (spend, requests in flight).
    counters = await request.app[STATE].shared.key_counters(key, local, now)
    doc = key.to_json(now)
    if counters is not None:
        doc["spent_usd"] = {"day": round(counters.spent_day, 6), "month": round(counters.spent_month, 6)}
        doc["in_flight"] = counters.in_flight
    return json_response(doc)


async def update_key(request: web.Request) -> web.Response:
    _admin(request)
    _, body = await read_json(request)
    store = request.app[KEYS].store
    key = await _store_call(request, store.get, _name(request))
    try:
        limits = apply_changes(key.limits, body, time.time())
    except KeySettingError as exc:
        raise InvalidRequest(str(exc)) from None
    updated = await _store_call(request, store.update, key.name, limits)
    return json_response(updated.to_json(time.time()))


async def revoke_key(request: web.Request) -> web.Response:
    _admin(request)
    key = await _store_call(request, request.app[KEYS].store.revoke, _name(request), time.time())
    return json_response(key.to_json(time.time()))
