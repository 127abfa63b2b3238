"""Translated Anthropic streams carry `ping` events through a provider's long silences."""

from __future__ import annotations

import aiohttp

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
