"""The serving core: Anthropic clients through the proxy to an Anthropic provider, unchanged."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import anthropic
import orjson
import pytest

from tests.conftest import ProxyFactory, anthropic_provider
from tests.fakes import FIXTURES, FakeUpstream, Hang, Reply, Stream, json_reply, recorded, sse_events

REQUEST = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def sdk(base_url: str, **kw: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base_url, api_key=kw.pop("api_key", "sk-client"), max_retries=0, **kw)


async def test_messages_create_gives_the_same_message_as_the_provider_directly(proxy: str, fake: FakeUpstream) -> None:
    """The SDK's final Message through the proxy equals the one it gets from the provider."""
    fake.default = json_reply("anthropic/message_tool_use.json")
    via_proxy = await sdk(proxy).messages.create(**REQUEST)
    direct = await sdk(fake.url).messages.create(**REQUEST)
    assert via_proxy.model_dump() == direct.model_dump()
    assert via_proxy.content[0].type == "tool_use"


@pytest.mark.parametrize("recording", sorted(p.name for p in (FIXTURES / "recorded" / "anthropic").glob("*.sse")))
async def test_messages_stream_gives_the_same_events_and_message(
    proxy: str, fake: FakeUpstream, recording: str
) -> None:
    """Every recorded stream reaches the SDK event for event, with the same final message."""
    fake.default = Stream(sse_events(f"anthropic/{recording}"))

    async def collect(base: str) -> tuple[list[Any], Any]:
        async with sdk(base).messages.stream(**REQUEST) as stream:
            events = [e.model_dump() async for e in stream]
            return events, (await stream.get_final_message()).model_dump()

    assert await collect(proxy) == await collect(fake.url)


async def test_stream_bytes_are_forwarded_unchanged(proxy: str, fake: FakeUpstream) -> None:
    """No re-encoding: the client receives the provider's SSE bytes exactly, padding included."""
    fake.default = Stream(sse_events("anthropic/stream_text.sse"))
    async with aiohttp.ClientSession() as s, s.post(f"{proxy}/v1/messages", json={**REQUEST, "stream": True}) as r:
        body = await r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-accel-buffering"] == "no"
    assert body == b"".join(sse_events("anthropic/stream_text.sse"))


async def test_first_event_reaches_the_client_while_the_provider_is_still_paused(
    proxy: str, fake: FakeUpstream
) -> None:
    """No buffering: the client holds the first event while the provider waits before the rest."""
    fake.default = Stream(sse_events("anthropic/stream_text.sse"), pause_after=1, pause=1.0)
    async with aiohttp.ClientSession() as s, s.post(f"{proxy}/v1/messages", json={**REQUEST, "stream": True}) as r:
        first = await r.content.readuntil(b"\n\n")
        assert b"message_start" in first
        assert fake.events_sent == 1, "the client got the first event before the provider sent the second"
        rest = await r.read()
    assert b"message_stop" in rest


async def test_client_disconnect_cancels_the_upstream_stream(proxy: str, fake: FakeUpstream) -> None:
    """A client that goes away mid-stream closes the provider's stream at once."""
    fake.default = Stream(sse_events("anthropic/stream_text.sse"), stall_after=2)
    async with aiohttp.ClientSession() as s:
        r = await s.post(f"{proxy}/v1/messages", json={**REQUEST, "stream": True})
        await r.content.readuntil(b"\n\n")
        r.close()
    await asyncio.wait_for(fake.cancelled.wait(), timeout=5)


async def test_headers_forwarded_except_hop_by_hop_and_the_client_credential(proxy: str, fake: FakeUpstream) -> None:
    """Betas and other end-to-end headers pass; hop-by-hop ones and the client's key do not."""
    headers = {
        "x-api-key": "sk-client",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,context-1m-2025-08-07",
        "user-agent": "claude-cli/2.1.197",
        "x-stainless-lang": "js",
        "connection": "keep-alive, x-hop",
        "x-hop": "1",
        "te": "trailers",
        "x-provider": "anthropic",
        "accept-encoding": "gzip, br",
    }
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{proxy}/v1/messages?beta=true", json=REQUEST, headers=headers) as r:
            assert r.status == 200
    got = fake.requests[-1]
    assert got.path == "/v1/messages"
    assert got.query == "beta=true"
    assert got.headers["x-api-key"] == "sk-upstream"
    assert got.headers["anthropic-beta"] == "claude-code-20250219,context-1m-2025-08-07"
    assert got.headers["user-agent"] == "claude-cli/2.1.197"
    assert got.headers["x-stainless-lang"] == "js"
    assert got.headers["accept-encoding"] == "identity"
    for dropped in ("x-hop", "te", "x-provider"):
        assert dropped not in got.headers


async def test_the_providers_response_headers_reach_the_client_once_each_whatever_their_spelling(
    proxy: str, fake: FakeUpstream
) -> None:
    """Anthropic's API writes `Content-Type` and `Cache-Control` in title case: a stream carries one
    of each, not the provider's next to the proxy's own; a header the provider repeats arrives
    repeated; its request id passes."""
    fake.default = Stream(
        sse_events("anthropic/stream_text.sse"),
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", "request-id": "r1"},
    )
    async with aiohttp.ClientSession() as s, s.post(f"{proxy}/v1/messages", json={**REQUEST, "stream": True}) as r:
        await r.read()
        names = [name.lower() for name, _ in r.raw_headers]
    assert names.count(b"content-type") == 1
    assert names.count(b"cache-control") == 1
    assert r.headers["request-id"] == "r1"

    fake.default = Reply(body=recorded("anthropic/message_tool_use.json"), headers=[("Link", "<a>"), ("Link", "<b>")])
    async with aiohttp.ClientSession() as s, s.post(f"{proxy}/v1/messages", json=REQUEST) as r:
        await r.read()
        assert r.headers.getall("link") == ["<a>", "<b>"]
        assert r.headers.getall("content-type") == ["application/json"]


async def test_zero_config_forwards_the_clients_own_key(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """A provider without keys is a transparent proxy: the client's credential goes upstream."""
    url = await make_proxy({"providers": [{"name": "anthropic", "kind": "anthropic", "api_base_url": fake.url}]})
    async with aiohttp.ClientSession() as s:
        for header, value in (("x-api-key", "sk-ant-mine"), ("authorization", "Bearer oauth-token")):
            async with s.post(f"{url}/v1/messages", json=REQUEST, headers={header: value}) as r:
                assert r.status == 200
            assert fake.requests[-1].headers[header] == value
    await sdk(url, api_key="sk-ant-sdk").messages.create(**REQUEST)
    assert "sk-ant-sdk" in (
        fake.requests[-1].headers.get("x-api-key", "") + fake.requests[-1].headers.get("authorization", "")
    )


async def test_the_body_goes_upstream_unchanged_except_the_routed_model(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """A real ~90 KB Claude Code request (with a system role inside messages) arrives intact."""
    capture = orjson.loads((FIXTURES / "claude-code" / "text-0001.json").read_bytes())
    raw = orjson.dumps(capture["body"])
    url = await make_proxy(
        {
            "providers": [anthropic_provider(fake)],
            "routes": {"claude-opus-4-8": {"provider": "anthropic", "model": "claude-opus-4-8"}},
        }
    )
    fake.default = Stream(sse_events("anthropic/stream_text.sse"))
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{url}/v1/messages?beta=true", data=raw, headers={"content-type": "application/json"}) as r,
    ):
        assert r.status == 200
        await r.read()
    assert fake.requests[-1].body == raw
    url2 = await make_proxy(
        {
            "providers": [anthropic_provider(fake)],
            "routes": {"default": {"provider": "anthropic", "model": "claude-sonnet-4-6"}},
        }
    )
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{url2}/v1/messages", data=raw, headers={"content-type": "application/json"}) as r,
    ):
        assert r.headers["x-ccproxy-route"].startswith("anthropic,claude-sonnet-4-6")
        await r.read()
    assert fake.requests[-1].json() == {**capture["body"], "model": "claude-sonnet-4-6"}


@pytest.mark.parametrize(
    ("body", "headers_file", "status", "exc"),
    [
        (
            "anthropic/error_429_rate_limit.json",
            "anthropic/error_429_rate_limit.headers.json",
            429,
            anthropic.RateLimitError,
        ),
        ("anthropic/error_529_overloaded.json", None, 529, anthropic.InternalServerError),
        (
            "anthropic/error_400_invalid_request.json",
            "anthropic/error_400_invalid_request.headers.json",
            400,
            anthropic.BadRequestError,
        ),
    ],
)
async def test_upstream_errors_reach_the_client_unchanged(
    proxy: str, fake: FakeUpstream, body: str, headers_file: str | None, status: int, exc: type
) -> None:
    """A provider's error status and body reach the client as the provider sent them."""
    fake.default = json_reply(body, status, headers_file)
    async with aiohttp.ClientSession() as s, s.post(f"{proxy}/v1/messages", json=REQUEST) as r:
        assert r.status == status
        assert await r.read() == recorded(body)
    with pytest.raises(exc):
        await sdk(proxy).messages.create(**REQUEST)


async def test_a_rejected_key_is_benched_and_the_client_told_why_without_a_retryable_status(
    proxy: str, fake: FakeUpstream
) -> None:
    """A configured key the provider refuses is `auth_error` and not sent again; the client gets a
    403 (never 5xx/429/529, which Claude Code would retry for minutes) naming the provider, the
    key and the provider's own message, on this request and the next."""
    fake.default = json_reply(
        "anthropic/error_401_authentication.json", 401, "anthropic/error_401_authentication.headers.json"
    )
    async with aiohttp.ClientSession() as s:
        for _ in range(2):
            async with s.post(f"{proxy}/v1/messages", json=REQUEST) as r:
                assert r.status == 403
                error = (await r.json())["error"]
                assert error["type"] == "permission_error"
                assert "'anthropic'" in error["message"] and "key-1" in error["message"]
                assert "invalid x-api-key" in error["message"]
        async with s.get(f"{proxy}/status/accounts/key-1") as r:
            account = await r.json()
    assert len(fake.requests) == 1
    assert account["state"] == "auth_error" and "invalid x-api-key" in account["lastError"]


async def test_invalid_json_is_a_400_naming_the_problem(proxy: str) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{proxy}/v1/messages", data=b"{not json", headers={"content-type": "application/json"}) as r,
    ):
        assert r.status == 400
        body = await r.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "not valid JSON" in body["error"]["message"]


async def test_missing_model_is_a_400_naming_the_field(proxy: str) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{proxy}/v1/messages", json={"messages": []}) as r:
        assert r.status == 400
        assert (await r.json())["error"]["message"].startswith("model:")


async def test_a_body_over_the_limit_is_a_413(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    url = await make_proxy({"providers": [anthropic_provider(fake)], "limits": {"max_request_body_size": 1000}})
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/messages", data=b"x" * 5000) as r:
        assert r.status == 413
        body = await r.json()
    assert body["error"]["type"] == "request_too_large"
    assert "max_request_body_size" in body["error"]["message"]
    assert fake.requests == []


async def test_an_unreachable_provider_is_a_502_naming_it(make_proxy: ProxyFactory, unused_tcp_port: int) -> None:
    url = await make_proxy(
        {
            "providers": [
                {
                    "name": "anthropic",
                    "kind": "anthropic",
                    "api_key": "k",
                    "api_base_url": f"http://127.0.0.1:{unused_tcp_port}",
                }
            ]
        }
    )
    with pytest.raises(anthropic.APIStatusError) as info:
        await sdk(url).messages.create(**REQUEST)
    assert info.value.status_code == 502
    assert "'anthropic'" in info.value.message


async def test_a_provider_that_never_answers_is_a_504_naming_it(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    url = await make_proxy({"providers": [anthropic_provider(fake)], "limits": {"request_timeout": "0.3s"}})
    fake.default = Hang()
    with pytest.raises(anthropic.APIStatusError) as info:
        await sdk(url).messages.create(**REQUEST)
    assert info.value.status_code == 504
    assert "'anthropic'" in info.value.message and "0.3 s" in info.value.message


async def test_a_stalled_stream_ends_with_an_overloaded_error_event(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """A stream silent for stream_idle_timeout ends with `event: error` so Claude Code retries."""
    url = await make_proxy({"providers": [anthropic_provider(fake)], "limits": {"stream_idle_timeout": "0.3s"}})
    fake.default = Stream(sse_events("anthropic/stream_text.sse"), stall_after=3)
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/messages", json={**REQUEST, "stream": True}) as r:
        body = await r.read()
    events = body.split(b"\n\n")
    assert b"event: error" in body
    err = orjson.loads(next(e for e in events if e.startswith(b"event: error")).split(b"data: ", 1)[1])
    assert err["error"]["type"] == "overloaded_error"
    with pytest.raises(anthropic.APIStatusError):
        async with sdk(url).messages.stream(**REQUEST) as stream:
            async for _ in stream:
                pass


async def test_a_dropped_stream_ends_with_an_error_event(proxy: str, fake: FakeUpstream) -> None:
    fake.default = Stream(sse_events("anthropic/stream_text.sse"), drop_after=3)
    async with aiohttp.ClientSession() as s, s.post(f"{proxy}/v1/messages", json={**REQUEST, "stream": True}) as r:
        body = await r.read()
    assert body.count(b"event: error") == 1
    assert b"message_stop" not in body


async def test_head_warmup_and_health(proxy: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.head(f"{proxy}/") as r:
            assert r.status == 200
        async with s.get(f"{proxy}/health") as r:
            health = await r.json()
    assert health["status"] == "ok"
    assert health["providers"] == [
        {
            "name": "anthropic",
            "kind": "anthropic",
            "preset": "anthropic",
            "enabled": True,
            "circuit": "closed",
            "usable": True,
            "credentials": 1,
            "available": 1,
            "rate_limited": 0,
        }
    ]
    assert "sk-upstream" not in orjson.dumps(health).decode()


async def test_unknown_path_is_an_anthropic_404(proxy: str) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{proxy}/v2/nothing") as r:
        assert r.status == 404
        assert (await r.json())["error"]["type"] == "not_found_error"


async def test_count_tokens_is_forwarded_to_an_anthropic_provider(proxy: str, fake: FakeUpstream) -> None:
    """count_tokens is forwarded to an Anthropic provider and its answer returned."""
    fake.default = Reply(body=recorded("anthropic/count_tokens_response.json"))
    result = await sdk(proxy).messages.count_tokens(
        model="claude-sonnet-4-6", messages=[{"role": "user", "content": "hi"}]
    )
    assert result.input_tokens == 19
    assert fake.requests[-1].path == "/v1/messages/count_tokens"


async def test_a_provider_that_compresses_anyway_still_reaches_the_client_readable(
    proxy: str, fake: FakeUpstream
) -> None:
    """ccproxy asks for identity; a provider that gzips regardless is decoded, not passed on broken."""
    import gzip

    fake.default = Reply(
        body=gzip.compress(recorded("anthropic/message_tool_use.json")), headers={"content-encoding": "gzip"}
    )
    message = await sdk(proxy).messages.create(**REQUEST)
    assert message.content[0].type == "tool_use"
    async with aiohttp.ClientSession(auto_decompress=False) as s, s.post(f"{proxy}/v1/messages", json=REQUEST) as r:
        assert "content-encoding" not in r.headers
        assert orjson.loads(await r.read())["type"] == "message"


async def test_openai_clients_headers_pass_through_to_an_openai_provider(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """Same dialect, same rule: end-to-end headers pass, the client's key is replaced."""
    fake.default = Reply(body=recorded("openai/completion_parallel_tool_calls.json"))
    url = await make_proxy(
        {
            "providers": [
                {"name": "openai", "kind": "openai", "api_base_url": f"{fake.url}/v1", "api_key": "sk-provider"}
            ]
        }
    )
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    headers = {
        "authorization": "Bearer sk-client",
        "openai-organization": "org-1",
        "user-agent": "aider/0.80",
        "connection": "keep-alive, x-hop",
        "x-hop": "1",
    }
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/chat/completions", json=body, headers=headers) as r:
        assert r.status == 200
    got = fake.requests[-1].headers
    assert got["authorization"] == "Bearer sk-provider"
    assert (got["openai-organization"], got["user-agent"]) == ("org-1", "aider/0.80")
    assert "x-hop" not in got and got["accept-encoding"] == "identity"
