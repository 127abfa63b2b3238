"""Routing across providers: fallback before the first byte, breakers, rate limits, explicit picks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import anthropic
import orjson
import pytest
from multidict import CIMultiDict

from tests.conftest import ProxyFactory, anthropic_provider
from tests.fakes import Drop, FakeUpstream, Hang, Reply, Stream, json_reply, recorded, sse_events

REQUEST = {"model": "claude-opus-4-8", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
MakeFake = Callable[[], Awaitable[FakeUpstream]]


def two_providers(a: FakeUpstream | str, b: FakeUpstream, **extra: Any) -> dict[str, Any]:
    a_url = a if isinstance(a, str) else a.url
    return {
        "providers": [
            {"name": "a", "kind": "anthropic", "api_base_url": a_url, "api_key": "ka"},
            {"name": "b", "kind": "anthropic", "api_base_url": b.url, "api_key": "kb"},
        ],
        "routes": {"default": {"provider": "a", "model": "model-a"}},
        "router": {"fallback": {"default": ["b"]}},
        "limits": {"request_timeout": "1s", "stream_idle_timeout": "1s"},
        **extra,
    }


async def post(url: str, body: dict[str, Any], **kw: Any) -> tuple[int, CIMultiDict[str], bytes]:
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/messages", json=body, **kw) as r:
        return r.status, r.headers.copy(), await r.read()


FAILURES = {
    "500": Reply(status=500, body=b'{"type":"error","error":{"type":"api_error","message":"boom"}}'),
    "529": json_reply("anthropic/error_529_overloaded.json", 529),
    "429": json_reply("anthropic/error_429_rate_limit.json", 429, "anthropic/error_429_rate_limit.headers.json"),
    "timeout": Hang(),
    "no answer": Drop(),
    "drop after headers": Stream(sse_events("anthropic/stream_text.sse"), drop_after=0),
    "stream opens with an error": Stream(
        [b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n']
    ),
}


@pytest.mark.parametrize(
    ("failure", "stream"),
    [
        (failure, stream)
        for failure in FAILURES
        for stream in (False, True)
        if stream or not failure.startswith("stream")
    ],
)  # only a stream can open with an error event
async def test_a_failing_provider_is_stepped_around_before_the_client_notices(
    make_proxy: ProxyFactory, make_fake: MakeFake, failure: str, stream: bool
) -> None:
    a, b = await make_fake(), await make_fake()
    a.default = FAILURES[failure]
    b.default = (
        Stream(sse_events("anthropic/stream_text.sse")) if stream else json_reply("anthropic/message_tool_use.json")
    )
    url = await make_proxy(two_providers(a, b))
    client = anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0)
    if stream:
        async with client.messages.stream(**REQUEST) as s:
            text = await s.get_final_text()
        assert text
    else:
        message = await client.messages.create(**REQUEST)
        assert message.content[0].type == "tool_use"
    assert len(a.requests) == 1 and len(b.requests) == 1
    assert b.requests[0].json()["model"] == "model-a", "b has no route of its own: the primary's model"


async def test_connection_refused_falls_over(
    make_proxy: ProxyFactory, make_fake: MakeFake, unused_tcp_port: int
) -> None:
    b = await make_fake()
    url = await make_proxy(two_providers(f"http://127.0.0.1:{unused_tcp_port}", b))
    status, headers, _ = await post(url, REQUEST)
    assert status == 200
    assert headers["x-ccproxy-route"].startswith("b,")


async def test_an_error_answer_cut_off_midway_falls_over(make_proxy: ProxyFactory, make_fake: MakeFake) -> None:
    """A 500 whose body breaks off is as unreachable as a refused connection: the next provider serves."""
    a, b = await make_fake(), await make_fake()
    a.default = Stream([b'{"type":"error",', b'"error":{}}'], status=500, drop_after=1, content_type="application/json")
    url = await make_proxy(two_providers(a, b))
    status, headers, _ = await post(url, REQUEST)
    assert status == 200 and headers["x-ccproxy-route"].startswith("b,")
    assert len(a.requests) == 1 and len(b.requests) == 1


async def test_after_the_first_byte_an_error_is_reported_in_stream_never_retried(
    make_proxy: ProxyFactory, make_fake: MakeFake
) -> None:
    a, b = await make_fake(), await make_fake()
    a.default = Stream(sse_events("anthropic/stream_text.sse"), drop_after=3)
    url = await make_proxy(two_providers(a, b))
    status, _, body = await post(url, {**REQUEST, "stream": True})
    assert status == 200
    assert b"message_start" in body and body.count(b"event: error") == 1
    assert b.requests == []


async def test_the_last_providers_own_error_reaches_the_client(make_proxy: ProxyFactory, make_fake: MakeFake) -> None:
    a, b = await make_fake(), await make_fake()
    a.default = FAILURES["500"]
    b.default = FAILURES["529"]
    url = await make_proxy(two_providers(a, b))
    status, _, body = await post(url, REQUEST)
    assert (status, body) == (529, recorded("anthropic/error_529_overloaded.json"))


async def test_a_client_error_is_not_retried_elsewhere(make_proxy: ProxyFactory, make_fake: MakeFake) -> None:
    a, b = await make_fake(), await make_fake()
    a.default = json_reply("anthropic/error_400_invalid_request.json", 400)
    url = await make_proxy(two_providers(a, b))
    status, _, _ = await post(url, REQUEST)
    assert status == 400
    assert b.requests == []


async def test_an_open_circuit_skips_the_provider_and_health_shows_it(
    make_proxy: ProxyFactory, make_fake: MakeFake
) -> None:
    a, b = await make_fake(), await make_fake()
    a.default = FAILURES["500"]
    url = await make_proxy(two_providers(a, b, breaker={"consecutive_failures": 3, "open_seconds": 60}))
    for _ in range(3):
        assert (await post(url, REQUEST))[0] == 200
    assert len(a.requests) == 3
    status, headers, _ = await post(url, REQUEST)
    assert status == 200 and len(a.requests) == 3, "the open circuit kept the request away from a"
    assert "unavailable" in headers["x-ccproxy-route"]
    async with aiohttp.ClientSession() as s, s.get(f"{url}/health") as r:
        health = await r.json()
    circuits = {p["name"]: p["circuit"] for p in health["providers"]}
    assert circuits == {"a": "open", "b": "closed"}


async def test_explicit_provider_model_and_unknown_provider(make_proxy: ProxyFactory, make_fake: MakeFake) -> None:
    a, b = await make_fake(), await make_fake()
    url = await make_proxy(two_providers(a, b))
    for body, headers in (
        ({**REQUEST, "model": "b,special"}, {}),
        ({**REQUEST, "model": "special@b"}, {}),
        ({**REQUEST, "model": "special"}, {"x-provider": "b"}),
    ):
        status, _, _ = await post(url, body, headers=headers)
        assert status == 200
        assert b.requests[-1].json()["model"] == "special"
    assert a.requests == []
    status, _, raw = await post(url, {**REQUEST, "model": "nope,x"})
    err = orjson.loads(raw)
    assert status == 404 and err["error"]["type"] == "not_found_error"
    assert "a" in err["error"]["message"] and "b" in err["error"]["message"]


async def test_over_the_client_rate_limit_is_a_429_with_retry_after(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    url = await make_proxy({"providers": [anthropic_provider(fake)], "limits": {"requests_per_minute": 60, "burst": 2}})
    statuses = [(await post(url, REQUEST))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    status, headers, body = await post(url, REQUEST)
    assert status == 429, headers
    assert int(headers["retry-after"]) >= 1, headers
    assert orjson.loads(body)["error"]["type"] == "rate_limit_error"
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/chat/completions", json=REQUEST) as r:
        assert r.status == 429
        assert (await r.json())["error"]["code"] == "rate_limit_exceeded"


async def test_a_provider_over_its_own_rate_falls_over(make_proxy: ProxyFactory, make_fake: MakeFake) -> None:
    a, b = await make_fake(), await make_fake()
    config = two_providers(a, b)
    config["providers"][0].update(requests_per_minute=60, burst=1)
    url = await make_proxy(config)
    assert [(await post(url, REQUEST))[1]["x-ccproxy-route"][:2] for _ in range(2)] == ["a,", "b,"]
