"""The usage ledger through the real server: what each provider reported, on every path, row by row."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer

from ccproxy_core.config.model import structure
from ccproxy_core.core.pricing import TokenCounts, cost_usd, price_for
from ccproxy_core.server.app import create_app
from tests.fakes import FakeUpstream, Reply, Stream, recorded, recorded_json, sse_events

CLAUDE = "claude-sonnet-4-6"
GPT = "gpt-4o-mini"
MESSAGES = {"max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
# An Anthropic answer with every kind of token, the 1-hour cache included.
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": CLAUDE,
    "content": [{"type": "text", "text": "Hello"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 11,
        "output_tokens": 22,
        "cache_read_input_tokens": 33,
        "cache_creation_input_tokens": 44,
        "cache_creation": {"ephemeral_5m_input_tokens": 40, "ephemeral_1h_input_tokens": 4},
    },
}
MESSAGE_TOKENS = TokenCounts(input=11, output=22, cache_read=33, cache_creation=44, cache_creation_1h=4)
# An OpenAI answer whose prompt was partly cached: input excludes the cached part.
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": GPT,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 100,
        "completion_tokens": 7,
        "total_tokens": 107,
        "prompt_tokens_details": {"cached_tokens": 60},
    },
}

Proxy = Callable[..., Awaitable[str]]


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "usage.sqlite3"


@pytest.fixture
async def fakes(make_fake: Callable[[], Awaitable[FakeUpstream]]) -> tuple[FakeUpstream, FakeUpstream]:
    return await make_fake(), await make_fake()


def config(fakes: tuple[FakeUpstream, FakeUpstream], ledger_path: Path, **extra: Any) -> dict[str, Any]:
    claude, gpt = fakes
    return {
        "providers": [
            {
                "name": "claude",
                "kind": "anthropic",
                "api_base_url": claude.url,
                "api_keys": ["sk-ant-first-1111111111", "sk-ant-second-222222222"],
            },
            {"name": "openai", "kind": "openai", "api_base_url": gpt.url, "api_key": "sk-openai-33333333333"},
        ],
        "routes": {"default": {"provider": "claude", "model": CLAUDE}, GPT: {"provider": "openai", "model": GPT}},
        "usage": {"path": str(ledger_path)},
        **extra,
    }


@pytest.fixture
async def start(aiohttp_server: Any, fakes: tuple[FakeUpstream, FakeUpstream], ledger_path: Path) -> Proxy:
    """Starts the proxy (aiohttp's test server, like `ccproxy serve`, cancels a handler whose client left)."""

    async def go(**extra: Any) -> str:
        server: TestServer = await aiohttp_server(create_app(structure(config(fakes, ledger_path, **extra))))
        return str(server.make_url("")).rstrip("/")

    return go


async def get_json(url: str, **kw: Any) -> Any:
    async with aiohttp.ClientSession() as s, s.get(url, **kw) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def latest(proxy: str) -> dict[str, Any]:
    rows = (await get_json(f"{proxy}/usage/requests?limit=1"))["requests"]
    return rows[0]  # type: ignore[no-any-return]


def tokens_of(row: dict[str, Any]) -> tuple[int, int, int, int]:
    return row["input_tokens"], row["output_tokens"], row["cache_read_tokens"], row["cache_creation_tokens"]


def claude_sdk(proxy: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=proxy, api_key="sk-client", max_retries=0)


def openai_sdk(proxy: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{proxy}/v1", api_key="sk-client", max_retries=0)


async def test_passthrough_json_records_every_token_kind_and_its_cost(start: Proxy, fakes: Any) -> None:
    """Anthropic -> Anthropic JSON: input, output, cache read and write as reported; cost at each rate."""
    proxy = await start()
    fakes[0].default = Reply(body=orjson.dumps(MESSAGE))
    message = await claude_sdk(proxy).messages.with_raw_response.create(model="claude-x", **MESSAGES)
    row = await latest(proxy)
    assert row["request_id"] == message.headers["x-request-id"]
    assert tokens_of(row) == (11, 22, 33, 44)
    assert row["cost_usd"] == pytest.approx(cost_usd(price_for(CLAUDE), MESSAGE_TOKENS))
    assert (row["provider"], row["upstream_model"], row["model"], row["credential"]) == (
        "claude",
        CLAUDE,
        "claude-x",
        "key-1",
    )
    assert (row["status"], row["stream"], row["endpoint"]) == (200, False, "/v1/messages")


async def test_passthrough_stream_records_message_start_and_delta(start: Proxy, fakes: Any) -> None:
    """Anthropic -> Anthropic stream: message_start's input, message_delta's output."""
    proxy = await start()
    fakes[0].default = Stream(sse_events("anthropic/stream_text.sse"))
    async with claude_sdk(proxy).messages.stream(model=CLAUDE, **MESSAGES) as stream:
        final = await stream.get_final_message()
    row = await latest(proxy)
    assert tokens_of(row) == (final.usage.input_tokens, final.usage.output_tokens, 0, 0) == (17, 10, 0, 0)
    assert row["stream"] is True and row["ttfb_ms"] is not None and row["ttfb_ms"] <= row["latency_ms"]


async def test_anthropic_client_to_openai_json_and_stream(start: Proxy, fakes: Any) -> None:
    """Anthropic -> OpenAI: input = prompt_tokens - cached_tokens, cache read = cached_tokens."""
    proxy = await start()
    fakes[1].default = Reply(body=orjson.dumps(COMPLETION))
    await claude_sdk(proxy).messages.create(model=GPT, **MESSAGES)
    assert tokens_of(await latest(proxy)) == (40, 7, 60, 0)
    fakes[1].default = Stream(sse_events("openai/stream_text_with_usage.sse"))
    async with claude_sdk(proxy).messages.stream(model=GPT, **MESSAGES) as stream:
        await stream.get_final_message()
    row = await latest(proxy)
    assert tokens_of(row) == (78, 9, 0, 0)
    assert (row["provider"], row["stream"]) == ("openai", True)


async def test_openai_client_to_anthropic_json_and_stream(start: Proxy, fakes: Any) -> None:
    """OpenAI -> Anthropic: the provider's Anthropic usage is recorded, not the translated one."""
    proxy = await start()
    fakes[0].default = Reply(body=orjson.dumps(MESSAGE))
    await openai_sdk(proxy).chat.completions.create(model=CLAUDE, **MESSAGES)  # type: ignore[call-overload]
    assert tokens_of(await latest(proxy)) == (11, 22, 33, 44)
    fakes[0].default = Stream(sse_events("anthropic/stream_text.sse"))
    stream = await openai_sdk(proxy).chat.completions.create(model=CLAUDE, stream=True, **MESSAGES)  # type: ignore[call-overload]
    async for _ in stream:
        pass
    row = await latest(proxy)
    assert tokens_of(row) == (17, 10, 0, 0) and row["endpoint"] == "/v1/chat/completions"


async def test_openai_passthrough_stream_usage_chunk(start: Proxy, fakes: Any) -> None:
    """OpenAI -> OpenAI stream: the final usage chunk."""
    proxy = await start()
    fakes[1].default = Stream(sse_events("openai/stream_text_with_usage.sse"))
    stream = await openai_sdk(proxy).chat.completions.create(
        model=GPT, stream=True, stream_options={"include_usage": True}, **MESSAGES
    )  # type: ignore[call-overload]
    usage = [chunk.usage async for chunk in stream if chunk.usage is not None]
    row = await latest(proxy)
    assert tokens_of(row) == (usage[0].prompt_tokens, usage[0].completion_tokens, 0, 0)


async def test_client_that_hangs_up_mid_stream_gets_a_499_row_with_what_was_seen(start: Proxy, fakes: Any) -> None:
    """A stream cut by the client is recorded with status 499 and the usage seen so far."""
    proxy = await start()
    fakes[0].default = Stream(sse_events("anthropic/stream_text.sse"), pause_after=2, pause=30.0)
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{proxy}/v1/messages", json={"model": CLAUDE, "stream": True, **MESSAGES}) as r:
            await r.content.readuntil(b"message_start")
        # leaving the block closes the connection mid-stream
    await asyncio.wait_for(fakes[0].cancelled.wait(), 10)
    for _ in range(100):
        rows = (await get_json(f"{proxy}/usage/requests"))["requests"]
        if rows:
            break
        await asyncio.sleep(0.05)
    row = rows[0]
    assert (row["status"], row["error_type"]) == (499, "client_closed")
    assert tokens_of(row) == (17, 1, 0, 0)  # message_start's counts; the delta never came


async def test_usage_by_credential_splits_a_pooled_run(start: Proxy, fakes: Any) -> None:
    """Round-robin over two keys: /usage?group_by=credential shows each key's own share."""
    proxy = await start()
    fakes[0].default = Reply(body=orjson.dumps(MESSAGE))
    for _ in range(4):
        await claude_sdk(proxy).messages.create(model=CLAUDE, **MESSAGES)
    doc = await get_json(f"{proxy}/usage?group_by=credential&since=1h")
    rows = {r["key"]: r for r in doc["rows"]}
    assert set(rows) == {"claude/key-1", "claude/key-2"}
    assert [rows[k]["requests"] for k in sorted(rows)] == [2, 2]
    assert rows["claude/key-1"]["input_tokens"] == 22 and doc["totals"]["output_tokens"] == 88
    assert doc["totals"]["cost_usd"] == pytest.approx(4 * cost_usd(price_for(CLAUDE), MESSAGE_TOKENS))  # type: ignore[operator]


async def test_refused_requests_get_a_row_without_a_provider(start: Proxy, fakes: Any) -> None:
    """A 401 before routing is a row with no provider, and its x-request-id is the row's."""
    proxy = await start(apikey="sk-proxy-key-123456")
    async with aiohttp.ClientSession() as s, s.post(f"{proxy}/v1/messages", json={"model": CLAUDE, **MESSAGES}) as r:
        assert r.status == 401
        request_id = r.headers["x-request-id"]
    row = await latest_with_key(proxy)
    assert (row["request_id"], row["status"], row["provider"], row["error_type"]) == (
        request_id,
        401,
        "",
        "authentication_error",
    )
    assert row["cost_usd"] == 0.0


async def latest_with_key(proxy: str) -> dict[str, Any]:
    rows = await get_json(f"{proxy}/usage/requests?limit=1", headers={"x-api-key": "sk-proxy-key-123456"})
    return rows["requests"][0]  # type: ignore[no-any-return]


async def test_unpriced_model_has_null_cost(start: Proxy, fakes: Any) -> None:
    """A model with no price is recorded with cost null and counted as unpriced."""
    proxy = await start(routes={"default": {"provider": "claude", "model": "house-model-1"}})
    fakes[0].default = Reply(body=orjson.dumps(MESSAGE))
    await claude_sdk(proxy).messages.create(model="anything", **MESSAGES)
    row = await latest(proxy)
    assert row["cost_usd"] is None and row["input_tokens"] == 11
    totals = (await get_json(f"{proxy}/usage"))["totals"]
    assert totals["unpriced_requests"] == 1 and totals["cost_usd"] is None


async def test_pricing_override_in_config(start: Proxy, fakes: Any) -> None:
    """`pricing` in the config prices a model the table does not know."""
    proxy = await start(
        routes={"default": {"provider": "claude", "model": "house-model-1"}},
        pricing={"house-*": {"input": 1000000, "output": 0}},
    )
    fakes[0].default = Reply(body=orjson.dumps(MESSAGE))
    await claude_sdk(proxy).messages.create(model="anything", **MESSAGES)
    assert (await latest(proxy))["cost_usd"] == pytest.approx(11 + 33 + 44)  # cache rates default to input


async def test_the_ledger_survives_a_restart(aiohttp_server: Any, fakes: Any, ledger_path: Path) -> None:
    """Rows written by one server are read by the next one on the same file."""
    fakes[0].default = Reply(body=orjson.dumps(MESSAGE))
    first: TestServer = await aiohttp_server(create_app(structure(config(fakes, ledger_path))))
    await claude_sdk(str(first.make_url("")).rstrip("/")).messages.create(model=CLAUDE, **MESSAGES)
    await first.close()
    second: TestServer = await aiohttp_server(create_app(structure(config(fakes, ledger_path))))
    doc = await get_json(str(second.make_url("/usage")))
    assert doc["totals"]["requests"] == 1 and doc["totals"]["input_tokens"] == 11


async def test_session_id_and_session_header_are_kept(start: Proxy, fakes: Any) -> None:
    """Claude Code's session id header lands in the row."""
    proxy = await start()
    fakes[0].default = Reply(body=orjson.dumps(MESSAGE))
    await claude_sdk(proxy).messages.create(
        model=CLAUDE, extra_headers={"X-Claude-Code-Session-Id": "sess-42"}, **MESSAGES
    )
    assert (await latest(proxy))["session_id"] == "sess-42"


async def test_usage_rejects_bad_parameters_with_the_field_named(start: Proxy) -> None:
    """A bad since or group_by is a 400 naming the parameter."""
    proxy = await start()
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{proxy}/usage?since=yesterday") as r:
            assert r.status == 400 and "since" in (await r.json())["error"]["message"]
        async with s.get(f"{proxy}/usage?group_by=colour") as r:
            assert r.status == 400 and "group_by" in (await r.json())["error"]["message"]


async def test_disabled_ledger_says_so(start: Proxy) -> None:
    """With usage.enabled false, /usage answers 503 and says which setting."""
    proxy = await start(usage={"enabled": False})
    async with aiohttp.ClientSession() as s, s.get(f"{proxy}/usage") as r:
        assert r.status == 503 and "usage.enabled" in (await r.json())["error"]["message"]


def test_recorded_fixtures_used_here_carry_usage() -> None:
    """The recordings this module replays report usage (a guard against a silent fixture change)."""
    assert b'"usage"' in recorded("anthropic/stream_text.sse")
    assert recorded_json("openai/completion_reasoning_o3_mini.json")["usage"]["prompt_tokens"] > 0
