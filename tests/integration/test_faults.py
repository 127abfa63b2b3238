"""Faults are normal: the real server against a fake provider that cuts, resets, stalls, lies and
rate-limits. Every case ends with a well-formed answer or one well-formed error, never a hang, a
second response inside a stream, or a cut answer reported as complete.

The figures the issue asks for are printed (run with -s to see them): upstream calls per request
in a 429 storm, and hangs (each case is bounded by `asyncio.wait_for`, so a hang fails the test).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from ccproxy_core.translate.chat_stream import ChatStreamTranslator
from ccproxy_core.translate.messages_stream import MessagesStreamTranslator
from tests.conftest import ProxyFactory
from tests.fakes import FakeUpstream, Reply, Stream, recorded, sse_events

ANTHROPIC = {"model": "claude-x", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}
BOUND = 20.0  # seconds any one exchange may take; past it the test fails as a hang


def passthrough(fake: FakeUpstream, **rotation: Any) -> dict[str, Any]:
    return {
        "providers": [{"name": "anthropic", "kind": "anthropic", "api_base_url": fake.url, "api_key": "sk-up"}],
        "rotation": rotation,
    }


def to_openai(fake: FakeUpstream) -> dict[str, Any]:
    return {
        "providers": [{"name": "openai", "kind": "openai", "api_base_url": fake.url + "/v1", "api_key": "sk-up"}],
        "routes": {"default": {"provider": "openai", "model": "gpt-x"}},
    }


async def raw_stream(url: str, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    """POST and read the whole body as bytes; fails (as a hang) if the server never ends it."""

    async def go() -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as s, s.post(f"{url}{path}", json={**body, "stream": True}) as r:
            return r.status, await r.read()

    return await asyncio.wait_for(go(), BOUND)


def events_of(raw: bytes) -> list[str]:
    return [line.split(b": ", 1)[1].decode() for line in raw.split(b"\n") if line.startswith(b"event: ")]


# --- passthrough: bytes untouched, but a cut stream is never complete --------------------------

STREAM = sse_events("anthropic/stream_text.sse")


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(Stream(STREAM[:-1]), id="clean-early-end"),
        pytest.param(Stream([*STREAM[:3], STREAM[3][:17]]), id="mid-event"),
        pytest.param(Stream(STREAM, drop_after=3), id="fin"),
        pytest.param(Stream(STREAM, reset_after=3), id="rst"),
    ],
)
async def test_a_cut_passthrough_stream_ends_with_an_error_after_its_last_whole_event(
    make_proxy: ProxyFactory, fake: FakeUpstream, cut: Stream
) -> None:
    """The forwarded bytes are the provider's whole events as they were; then one `event: error`,
    so the SDK raises instead of returning a partial message as if it were complete."""
    fake.default = cut
    url = await make_proxy(passthrough(fake))
    status, raw = await raw_stream(url, "/v1/messages", ANTHROPIC)
    assert status == 200
    whole = [e for e in cut.events[: cut.drop_after or cut.reset_after or len(cut.events)] if e.endswith(b"\n\n")]
    assert raw.startswith(b"".join(whole))
    tail = raw[len(b"".join(whole)) :]
    assert tail.startswith(b"event: error\n") and tail.count(b"event: ") == 1, tail
    assert events_of(raw)[-1] == "error" and "message_stop" not in events_of(raw)
    client = anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0)
    fake.default = cut
    with pytest.raises(anthropic.APIStatusError):
        async with client.messages.stream(**ANTHROPIC) as stream:
            await asyncio.wait_for(stream.get_final_message(), BOUND)


async def test_a_whole_passthrough_stream_is_untouched(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    fake.default = Stream(STREAM)
    url = await make_proxy(passthrough(fake))
    assert (await raw_stream(url, "/v1/messages", ANTHROPIC))[1] == b"".join(STREAM)


async def test_an_html_page_for_a_stream_is_an_error_before_the_first_byte(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """A 200 text/html answer to a streaming request is the provider's failure (502 naming it), not a stream."""
    fake.default = Reply(body=b"<html>maintenance</html>", content_type="text/html")
    url = await make_proxy(passthrough(fake))
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/messages", json={**ANTHROPIC, "stream": True}) as r:
        assert r.status == 502
        error = (await r.json())["error"]
    assert "'anthropic'" in error["message"] and "text/html" in error["message"]


# --- translated streams -------------------------------------------------------------------------

OPENAI_TEXT = sse_events("openai/stream_text_with_usage.sse")


@pytest.mark.parametrize(
    "upstream",
    [
        pytest.param(Stream([e for e in OPENAI_TEXT if b'finish_reason":"' not in e][:3]), id="clean-early-end"),
        pytest.param(Stream([*OPENAI_TEXT[:2], b"data: {not json\n\n", *OPENAI_TEXT[2:]]), id="malformed-data"),
        pytest.param(Stream(OPENAI_TEXT, reset_after=2), id="rst"),
    ],
)
async def test_a_broken_openai_stream_reaches_an_anthropic_client_as_an_error(
    make_proxy: ProxyFactory, fake: FakeUpstream, upstream: Stream
) -> None:
    """Never `end_turn` + `message_stop` for an answer the provider did not finish."""
    fake.default = upstream
    url = await make_proxy(to_openai(fake))
    _, raw = await raw_stream(url, "/v1/messages", ANTHROPIC)
    names = events_of(raw)
    assert names[-1] == "error" and "message_stop" not in names, names
    assert b"end_turn" not in raw


async def test_a_cut_anthropic_stream_reaches_an_openai_client_as_an_error(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """Never `finish_reason: stop` + `[DONE]` for an answer the provider did not finish."""
    fake.default = Stream(STREAM[:4])
    url = await make_proxy(passthrough(fake))
    _, raw = await raw_stream(url, "/v1/chat/completions", CHAT)
    assert b"[DONE]" not in raw and b'"finish_reason":"stop"' not in raw
    assert raw.rstrip().split(b"\n")[-1].startswith(b'data: {"error"')
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIError):
        async for _ in await client.chat.completions.create(**CHAT, stream=True):
            pass


# --- an exception of ccproxy's own after the first byte -----------------------------------------


def _raise_on_call(n: int) -> Any:
    calls = {"n": 0}

    def boom(*_: Any, **__: Any) -> Any:
        calls["n"] += 1
        if calls["n"] >= n:
            raise RuntimeError("translator bug")
        return boom.original(*_, **__)  # type: ignore[attr-defined]

    return boom


@pytest.mark.parametrize("stage", ["feed-1", "feed-3", "finish"])
async def test_a_translator_that_raises_ends_the_stream_with_one_error_and_closes(
    make_proxy: ProxyFactory, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    """Whatever stage raises, the client reads one error event, the chunked terminator, and a
    closed connection: never a second HTTP response inside the body, never a hang."""
    method, _, nth = stage.partition("-")
    original = getattr(ChatStreamTranslator, method)
    boom = _raise_on_call(int(nth or 1))

    def patched(self: ChatStreamTranslator, *args: Any) -> Any:
        boom.original = lambda *a: original(self, *a)  # type: ignore[attr-defined]
        return boom(*args)

    monkeypatch.setattr(ChatStreamTranslator, method, patched)
    fake.default = Stream(OPENAI_TEXT)
    url = await make_proxy(to_openai(fake))
    reader, writer = await asyncio.open_connection(*url.removeprefix("http://").split(":"))
    body = b'{"model":"claude-x","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}'
    writer.write(
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    raw = await asyncio.wait_for(reader.read(), BOUND)  # EOF: the server closed the connection
    writer.close()
    assert raw.count(b"HTTP/1.1 ") == 1, raw
    assert raw.endswith(b"0\r\n\r\n"), "the chunked body is terminated"
    assert raw.count(b"event: error") == 1


async def test_a_translator_that_raises_on_an_openai_client_stream(
    make_proxy: ProxyFactory, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: MessagesStreamTranslator, event: str, payload: Any) -> Any:
        raise RuntimeError("translator bug")

    monkeypatch.setattr(MessagesStreamTranslator, "feed", broken)
    fake.default = Stream(STREAM)
    url = await make_proxy(passthrough(fake))
    status, raw = await raw_stream(url, "/v1/chat/completions", CHAT)
    assert status == 200 and raw.count(b'data: {"error"') == 1 and b"[DONE]" not in raw


async def test_an_unexpected_chunk_shape_is_an_error_not_a_hang(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """`"choices": "notalist"` from a provider: the client gets an error event and the stream ends."""
    fake.default = Stream([OPENAI_TEXT[0], b'data: {"id":"x","choices":"notalist"}\n\n', *OPENAI_TEXT[1:]])
    url = await make_proxy(to_openai(fake))
    _, raw = await raw_stream(url, "/v1/messages", ANTHROPIC)
    assert events_of(raw).count("error") <= 1 and events_of(raw)[-1] in ("error", "message_stop")


# --- rate limits and rejected keys --------------------------------------------------------------


def keys(fake: FakeUpstream, n: int, **rotation: Any) -> dict[str, Any]:
    return {
        "providers": [
            {
                "name": "anthropic",
                "kind": "anthropic",
                "api_base_url": fake.url,
                "api_keys": [f"k{i}" for i in range(1, n + 1)],
            }
        ],
        "rotation": rotation,
    }


@pytest.mark.slow
async def test_a_429_storm_wastes_no_call_per_cooldown(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """5 keys, 3 answering 429 + retry-after: 30; 1,000 requests at concurrency 50: each limited key
    is tried at most once per cooldown after its 429 came back (the rest in flight before it)."""
    limited = Reply(
        status=429,
        body=b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}',
        headers={"retry-after": "30"},
    )
    for k in ("k1", "k3", "k5"):
        fake.by_credential[k] = limited
    fake.default = Reply(body=recorded("anthropic/message_tool_use.json"))
    url = await make_proxy(keys(fake, 5))
    total, concurrency = 1000, 50
    statuses: list[int] = []

    async def worker(s: aiohttp.ClientSession, n: int) -> None:
        for _ in range(n):
            async with s.post(f"{url}/v1/messages", json=ANTHROPIC) as r:
                await r.read()
                statuses.append(r.status)

    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
        await asyncio.wait_for(asyncio.gather(*(worker(s, total // concurrency) for _ in range(concurrency))), 120)
    calls = len(fake.requests)
    limited_calls = sum(1 for r in fake.requests if r.headers.get("x-api-key") in ("k1", "k3", "k5"))
    print(
        f"\n429 storm: {total} requests, {calls} upstream calls ({calls / total:.3f} per request), "
        f"{limited_calls} to the 3 limited keys, {time.monotonic() - started:.1f} s"
    )
    assert statuses.count(200) == total
    # Only the requests already in flight when a key's 429 came back may have been sent to it.
    assert limited_calls <= concurrency
    assert (calls - limited_calls) == total
    assert calls / total <= 1.0 + concurrency / total


async def test_a_rejected_key_comes_back_by_itself(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """A 401 benches the key and the client is told why (403, not retryable); once the provider
    accepts the key again, the re-probe brings it back without a restart or a manual enable."""
    fake.by_credential["k1"] = Reply(
        status=401, body=b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}'
    )
    url = await make_proxy(keys(fake, 1, auth_reprobe="300ms"))
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{url}/v1/messages", json=ANTHROPIC) as r:
            assert r.status == 403
            message = (await r.json())["error"]["message"]
        assert "'anthropic'" in message and "key-1" in message and "invalid x-api-key" in message
        del fake.by_credential["k1"]  # the provider takes the key again
        await asyncio.sleep(0.4)
        async with s.post(f"{url}/v1/messages", json=ANTHROPIC) as r:
            assert r.status == 200
        async with s.get(f"{url}/status/accounts/key-1") as r:
            assert (await r.json())["state"] == "available"


async def test_a_providers_error_event_quoting_the_key_is_masked_on_passthrough(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """The bytes of a passthrough stream are the provider's, except a secret its error event quotes."""
    key = "sk-ant-api03-quoted-secret-0123456789"
    quoting = b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"bad key ' + key.encode()
    fake.default = Stream([*STREAM[:3], quoting + b'"}}\n\n'])
    config = passthrough(fake)
    config["providers"][0]["api_key"] = key
    url = await make_proxy(config)
    _, raw = await raw_stream(url, "/v1/messages", ANTHROPIC)
    assert raw.startswith(b"".join(STREAM[:3]))
    assert key.encode() not in raw and b"event: error" in raw


@pytest.mark.parametrize(
    "upstream",
    [
        pytest.param(Stream([e for e in OPENAI_TEXT if b'finish_reason":"' not in e][:3]), id="clean-early-end"),
        pytest.param(Stream([*OPENAI_TEXT[:2], b"data: {not json\n\n", *OPENAI_TEXT[2:]]), id="malformed-data"),
    ],
)
async def test_a_broken_openai_stream_reaches_a_responses_client_as_failed(
    make_proxy: ProxyFactory, fake: FakeUpstream, upstream: Stream
) -> None:
    """Through the Responses dialect too: `response.failed`, never `response.completed`, for an
    answer the Chat provider did not finish or sent garbage in."""
    fake.default = upstream
    url = await make_proxy(to_openai(fake))
    _, raw = await raw_stream(url, "/v1/responses", {"model": "gpt-x", "input": "hi"})
    names = events_of(raw)
    assert names[-1] == "response.failed" and "response.completed" not in names, names
