"""Reading a client's JSON request, the same way for every endpoint: bounded, inflated, not too deep."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ccproxy_core.core import inbound
from ccproxy_core.core.errors import InvalidRequest, RequestTooLarge
from ccproxy_core.core.wire import JSON
from ccproxy_core.server import keyguard, reqlog, sessions
from ccproxy_core.server.state import STATE


async def read_json(request: web.Request) -> tuple[bytes, JSON]:
    """The raw body and its parsed object; 413 past the size limit, 400 for anything not JSON.

    Client auth has run by now (a middleware), so nothing is read or inflated for a client
    without the key. `raw` is the body as sent, after its Content-Encoding is undone.
    """
    state = request.app[STATE]
    if state.client_buckets.enabled:
        # Per client key (or address, without one): one noisy client cannot starve the rest.
        await state.admit_client(
            request.headers.get("x-api-key") or request.headers.get("authorization") or request.remote or "-"
        )
    raw = await read_body(request, state.config.limits.max_request_body_size)
    if not raw:
        raise InvalidRequest("the request body is empty; expected a JSON object")
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest(f"the request body must be a JSON object, not {type(body).__name__}")
    inbound.check_json_depth(body, text=raw)
    return raw, body


def too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"the request body is larger than {limit} bytes (limits.max_request_body_size)")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, inflated if it is gzip or deflate; 413 as soon as it passes `limit` bytes either way."""
    coding = inbound.body_coding(request.headers.get("content-encoding"))
    length = request.content_length
    if length is not None and length > limit:
        raise too_large(limit)
    try:
        if coding is None:
            return await request.read()
        inflater, received, pieces = inbound.Inflater(coding, limit), 0, []
        async for chunk in request.content.iter_any():
            received += len(chunk)
            if received > limit:
                raise too_large(limit)
            pieces.append(inflater.feed(chunk))
        if received:
            inflater.finish()
        return b"".join(pieces)
    except web.HTTPRequestEntityTooLarge:
        raise too_large(limit) from None
    except HttpProcessingError as exc:  # the body's own framing broke: cut short, a bad chunk
        raise InvalidRequest(f"the request body is malformed: {' '.join(exc.message.split())[:200]}") from None
    except ConnectionResetError:  # the client went away mid-body; nobody reads this answer
        raise InvalidRequest("the client closed the connection before its whole body arrived") from None


async def read_model_request(request: web.Request) -> tuple[bytes, JSON, str, bool]:
    """A Messages or Chat Completions request: raw body, parsed body, model, and whether it streams."""
    raw, body = await read_json(request)
    model = require_str(body, "model")
    require_list(body, "messages")
    stream = body.get("stream") is True
    reqlog.requested(model, stream)
    keyguard.check_model(model)  # a client key's model list: 403 naming what it may use
    sessions.note(request, body)  # the conversation, for its sticky credential
    return raw, body, model, stream


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json", headers=headers)


def require_str(body: JSON, key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{key}: expected a non-empty string")
    return value


def require_list(body: JSON, key: str) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list):
        raise InvalidRequest(f"{key}: expected a list")
    return value
