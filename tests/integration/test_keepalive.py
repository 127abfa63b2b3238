"""Translated Anthropic streams carry `ping` events through a provider's long silences."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from tests.conftest import ProxyFactory
from tests.fakes import FakeUpstream, Stream, sse_events

REQUEST = {"model": "claude-opus-4-8", "max_tokens": 8, "stream": True, "messages": [{"role": "user", "content": "hi"}]}


async def test_a_silent_provider_gets_pings_sent_to_the_client(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """While an OpenAI provider thinks silently, the Anthropic client keeps receiving pings."""
    fake.default = Stream(sse_events("openai/stream_text_with_usage.sse"), pause_after=2, pause=0.8)
    url = await make_proxy(
        {
            "providers": [{"name": "openai", "kind": "openai", "api_base_url": f"{fake.url}/v1", "api_key": "k"}],
            "routes": {"default": {"provider": "openai", "model": "gpt-4o-mini"}},
            "limits": {"keepalive_interval": "0.2s"},
        }
    )
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/messages", json=REQUEST) as r:
        body = await r.read()
    events = [e.split(b"\n", 1)[0] for e in body.split(b"\n\n") if e]
    assert events[0] == b"event: message_start" and events[-1] == b"event: message_stop"
    assert events.count(b"event: ping") >= 2, events
    assert body.count(b'event: ping\ndata: {"type":"ping"}\n\n') == events.count(b"event: ping")


async def test_a_client_that_leaves_between_pings_cancels_the_provider(
    make_proxy: ProxyFactory, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """A client hanging up while pings keep a silent stream open closes the provider's stream, with nothing left running."""
    fake.default = Stream(sse_events("openai/stream_text_with_usage.sse"), pause_after=2, pause=30)
    url = await make_proxy(
        {
            "providers": [{"name": "openai", "kind": "openai", "api_base_url": f"{fake.url}/v1", "api_key": "k"}],
            "routes": {"default": {"provider": "openai", "model": "gpt-4o-mini"}},
            "limits": {"keepalive_interval": "0.05s"},
        }
    )
    async with aiohttp.ClientSession() as s:
        r = await s.post(f"{url}/v1/messages", json=REQUEST)
        assert b"event: ping" in await r.content.readuntil(b"event: ping")
        r.close()
    await asyncio.wait_for(fake.cancelled.wait(), timeout=5)
    await asyncio.sleep(0.2)  # several intervals: a ping timer left behind would fire into the closed stream
    left = [t for t in asyncio.all_tasks() if t.get_name() == "sse-keepalive"]
    assert left == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
