"""Failover, pool and breaker behaviour of the request path, on the in-memory upstream: no sockets.

The handler runs as in the server (routing, dispatch, the credential loop, the pool, the
breaker); only the provider side is `tests/memory_upstream.py`. The integration tests drive the
same paths over real loopback sockets.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from unittest import mock

import orjson
import pytest
from aiohttp import streams, web
from aiohttp.test_utils import make_mocked_request

from ccproxy_core.config.model import structure
from ccproxy_core.core.errors import ProxyError, UpstreamUnreachable
from ccproxy_core.server.app import create_app
from ccproxy_core.server.handlers import messages
from ccproxy_core.server.state import STATE
from tests.memory_upstream import Canned, MemoryUpstreams, anthropic_message

OK = Canned(body=anthropic_message())
LIMITED = Canned(
    429, b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}', {"retry-after": "30"}
)
REJECTED = Canned(401, b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}')
BAD_REQUEST = Canned(400, b'{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}')
BODY = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


def app_with(upstreams: MemoryUpstreams, **extra: Any) -> web.Application:
    config = structure(
        {
            "providers": [
                {"name": "p1", "kind": "anthropic", "api_base_url": "http://p1.invalid", "api_keys": ["ka", "kb"]},
                {"name": "p2", "kind": "anthropic", "api_base_url": "http://p2.invalid", "api_key": "kc"},
            ],
            "routes": {"default": {"provider": "p1", "model": "claude-x"}},
            "router": {"fallback": {"default": ["p2"]}},
            **extra,
        }
    )
    return create_app(config, upstreams=upstreams)


async def call(app: web.Application, body: dict[str, Any] = BODY) -> web.StreamResponse:
    raw = orjson.dumps(body)
    protocol = mock.Mock(_reading_paused=False)
    payload = streams.StreamReader(protocol, 2**16, loop=asyncio.get_running_loop())
    payload.feed_data(raw)
    payload.feed_eof()
    request = make_mocked_request(
        "POST",
        "/v1/messages",
        headers={"content-type": "application/json", "content-length": str(len(raw))},
        app=app,
        payload=payload,
    )
    return await messages.create_message(request)


def credentials_sent(upstreams: MemoryUpstreams, name: str) -> list[str]:
    return [s.credential for s in upstreams[name].sent]


async def test_a_rate_limited_key_is_tried_once_per_cooldown() -> None:
    """A 429 with retry-after benches key A: its request moves to B, and the next requests never
    try A while its cooldown lasts (one wasted call in all, not one per request)."""
    upstreams = MemoryUpstreams()
    app = app_with(upstreams)
    upstreams("p1", "", app[STATE].config.limits).script = {"ka": [LIMITED], "kb": [OK]}
    for _ in range(10):
        assert (await call(app)).status == 200
    assert credentials_sent(upstreams, "p1").count("ka") == 1
    assert len(upstreams["p1"].sent) == 11


async def test_every_key_rejected_fails_over_then_names_the_keys() -> None:
    """401 on both keys: the fallback provider serves; without one the client gets a 403 naming them."""
    upstreams = MemoryUpstreams()
    app = app_with(upstreams)
    upstreams("p1", "", app[STATE].config.limits).script = {"ka": [REJECTED], "kb": [REJECTED]}
    upstreams("p2", "", app[STATE].config.limits).script = {"kc": [REJECTED]}
    with pytest.raises(ProxyError) as info:
        await call(app)
    assert info.value.http_status == 403
    assert "'p2'" in info.value.message and "key-1: invalid x-api-key" in info.value.message
    assert credentials_sent(upstreams, "p1") == ["ka", "kb"]
    with pytest.raises(ProxyError):
        await call(app)
    assert len(upstreams["p1"].sent) == 2 and len(upstreams["p2"].sent) == 1, "benched keys are not sent again"


async def test_no_answer_moves_to_the_fallback_and_counts_against_the_breaker() -> None:
    upstreams = MemoryUpstreams()
    app = app_with(upstreams, breaker={"consecutive_failures": 2})
    limits = app[STATE].config.limits
    upstreams("p1", "", limits).default = UpstreamUnreachable("provider 'p1' could not be reached")
    upstreams("p2", "", limits).default = OK
    for _ in range(3):
        response = await call(app)
        assert response.status == 200 and response.headers["x-ccproxy-route"].startswith("p2,")
    assert len(upstreams["p1"].sent) == 2, "the open circuit keeps the third request off p1"
    assert app[STATE].breakers.get("p1").state(time.monotonic()) == "open"


async def test_a_request_error_is_relayed_without_failover_or_bench() -> None:
    """A 400 is the request's own fault: relayed as it is, no other key or provider tried."""
    upstreams = MemoryUpstreams()
    app = app_with(upstreams)
    upstreams("p1", "", app[STATE].config.limits).default = BAD_REQUEST
    response = await call(app)
    assert isinstance(response, web.Response) and response.status == 400
    assert len(upstreams["p1"].sent) == 1 and not upstreams["p2"].sent
    pool = app[STATE].pools["p1"].pool
    assert pool is not None and not pool.state("key-1").rate_limited_until
