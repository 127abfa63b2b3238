"""Sticky sessions through the real server: a conversation stays on one account of a pool of three."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp
import openai
import orjson

from tests.conftest import ProxyFactory
from tests.fakes import FIXTURES, FakeUpstream, Reply, Stream, json_reply, sse_events

KEYS = ["sk-pool-1", "sk-pool-2", "sk-pool-3"]
LIMITED = Reply(
    status=429,
    body=orjson.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
    headers={"retry-after": "120"},
)


_HOP = {"x-api-key", "host", "content-length", "connection", "accept-encoding", "x-claude-code-session-id"}


def claude_code_request(name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A recorded Claude Code request (tests/fixtures/claude-code): its headers, less hop and key headers, and body."""
    doc = orjson.loads((FIXTURES / "claude-code" / f"{name}.json").read_bytes())
    headers = {k: v for k, v in doc["headers"] if k.lower() not in _HOP}
    return headers, doc["body"]


def pool_config(fake: FakeUpstream) -> dict[str, Any]:
    return {"providers": [{"name": "anthropic", "kind": "anthropic", "api_base_url": fake.url, "api_keys": KEYS}]}


async def turn(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/messages", json=body, headers=headers) as r:
        await r.read()
        return r.status


def keys_used(fake: FakeUpstream) -> list[str]:
    return [r.headers["x-api-key"] for r in fake.requests]


async def conversation(url: str, session: str, turns: int) -> None:
    headers, body = claude_code_request("tool-read-0002")
    headers["X-Claude-Code-Session-Id"] = session
    for i in range(turns):
        messages = [*body["messages"], *[{"role": "user", "content": f"turn {j}"} for j in range(i)]]
        assert await turn(url, {**body, "messages": messages}, headers) == 200


async def test_a_20_turn_conversation_uses_one_account(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """The recorded Claude Code turns with their session header, 20 times over a pool of 3: one account serves all."""
    fake.default = Stream(sse_events("anthropic/stream_text.sse"))
    url = await make_proxy(pool_config(fake))
    await conversation(url, "6411a561-8895-479f-9dd1-687b89f65e76", 20)
    assert len(fake.requests) == 20 and len(set(keys_used(fake))) == 1
    async with aiohttp.ClientSession() as s, s.get(f"{url}/status/accounts/{_name(keys_used(fake)[0])}") as r:
        assert (await r.json())["sessions"] == 1


async def test_30_conversations_spread_over_all_3(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """New conversations still go round robin: 30 of them, 2 turns each, use every account about equally."""
    fake.default = Stream(sse_events("anthropic/stream_text.sse"))
    url = await make_proxy(pool_config(fake))
    for n in range(30):
        await conversation(url, f"session-{n}", 2)
    per_session = [keys_used(fake)[i : i + 2] for i in range(0, 60, 2)]
    assert all(a == b for a, b in per_session)  # each conversation's two turns on one account
    assert Counter(a for a, _ in per_session) == Counter(dict.fromkeys(KEYS, 10))


async def test_a_429_moves_the_conversation_once(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """The sticky account is limited: that turn fails over, and the turns after it stay on the new account."""
    fake.default = Stream(sse_events("anthropic/stream_text.sse"))
    url = await make_proxy(pool_config(fake))
    await conversation(url, "moving", 3)
    first = keys_used(fake)[0]
    fake.by_credential[first] = LIMITED
    fake.requests.clear()
    await conversation(url, "moving", 8)
    used = keys_used(fake)
    assert used[0] == first and used.count(first) == 1  # tried once, then benched by the pool
    assert len(set(used[1:])) == 1 and used[1] != first  # moved once, and stuck to the new account


async def test_metadata_user_id_and_openai_user_are_sessions_too(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """Without the header: the session_id in metadata.user_id, and an OpenAI client's `user`, keep their account."""
    fake.default = Stream(sse_events("anthropic/stream_text.sse"))
    url = await make_proxy(pool_config(fake))
    _, body = claude_code_request("tool-read-0002")
    for _ in range(4):
        assert await turn(url, body, {}) == 200
    assert len(set(keys_used(fake))) == 1
    fake.requests.clear()
    fake.default = json_reply("anthropic/message_tool_use.json")
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
    for _ in range(4):
        await client.chat.completions.create(
            model="claude-opus-4-8", messages=[{"role": "user", "content": "hi"}], user="dev-7"
        )
    assert len(set(keys_used(fake))) == 1


async def test_a_refused_thinking_signature_is_retried_once_without_earlier_thinking(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """A 400 on the history's thinking signatures: the same request again, earlier thinking dropped, succeeds."""
    refused = Reply(
        status=400,
        body=orjson.dumps(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "message": "messages.1.content.0: Invalid `signature` in `thinking` block",
                },
            }
        ),
    )
    fake.queue(refused)
    url = await make_proxy(pool_config(fake))
    body = {
        "model": "claude-opus-4-8",
        "max_tokens": 64,
        "messages": [
            {"role": "user", "content": "first"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "c2lnbmVkLWVsc2V3aGVyZQ=="},
                    {"type": "text", "text": "answer"},
                ],
            },
            {"role": "user", "content": "second"},
        ],
    }
    assert await turn(url, body, {}) == 200
    assert len(fake.requests) == 2 and fake.requests[0].headers["x-api-key"] == fake.requests[1].headers["x-api-key"]
    assert fake.requests[1].json()["messages"][1]["content"] == [{"type": "text", "text": "answer"}]
    fake.queue(refused, refused)
    started = len(fake.requests)
    assert await turn(url, body, {}) == 400  # retried once only
    assert len(fake.requests) - started == 2


def _name(key: str) -> str:
    return f"key-{KEYS.index(key) + 1}"


async def test_a_conversation_idle_past_sticky_ttl_goes_round_robin_again(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """rotation.sticky_ttl: after that long without a request the conversation is new again."""
    fake.default = Stream(sse_events("anthropic/stream_text.sse"))
    url = await make_proxy({**pool_config(fake), "rotation": {"sticky_ttl": "200ms"}})
    await conversation(url, "idle", 2)
    await asyncio.sleep(0.3)
    await conversation(url, "idle", 1)
    used = keys_used(fake)
    assert used[0] == used[1] != used[2]
