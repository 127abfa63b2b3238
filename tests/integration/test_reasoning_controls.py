"""Issue 11 item 10, through the real server: reasoning controls reach only models that take them.

Claude Code sends `thinking: {"type": "adaptive"}` with `output_config.effort` on every main
request; OpenAI answers 400 `unsupported_parameter` when gpt-4.1 gets the `reasoning_effort`
that becomes. The recorded Claude Code request is replayed as Claude Code sent it.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import ProxyFactory
from tests.fakes import FIXTURES, FakeUpstream, Stream, sse_events

CAPTURE = orjson.loads((FIXTURES / "claude-code" / "text-0001.json").read_bytes())
SKIP_HEADERS = {"host", "content-length", "connection", "accept-encoding"}


async def replay(make_proxy: ProxyFactory, fake: FakeUpstream, model: str, **provider: Any) -> dict[str, Any]:
    """Send the recorded Claude Code request through a proxy routing to `model`; the body the provider got."""
    url = await make_proxy(
        {
            "providers": [
                {"name": "openai", "api_base_url": fake.url + "/v1", "api_key": "sk-up", **provider},
            ],
            "routes": {"default": {"provider": "openai", "model": model}},
        }
    )
    fake.default = Stream(sse_events("openai/stream_text_with_usage.sse"))
    headers = {k: v for k, v in CAPTURE["headers"] if k.lower() not in SKIP_HEADERS}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/messages?beta=true", data=orjson.dumps(CAPTURE["body"]), headers=headers) as r,
    ):
        assert r.status == 200, await r.text()
        await r.read()
    sent: dict[str, Any] = fake.requests[-1].json()
    assert sent["model"] == model
    return sent


def test_the_recording_asks_for_adaptive_thinking_at_high_effort() -> None:
    """The fixture is what the issue describes: adaptive thinking plus output_config.effort "high"."""
    assert CAPTURE["body"]["thinking"] == {"type": "adaptive"}
    assert CAPTURE["body"]["output_config"]["effort"] == "high"


async def test_gpt_4_1_gets_no_reasoning_effort(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """Routed to gpt-4.1, which refuses reasoning controls, the request carries none."""
    sent = await replay(make_proxy, fake, "gpt-4.1")
    assert "reasoning_effort" not in sent and "reasoning" not in sent


async def test_o3_gets_the_effort_claude_code_asked_for(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """Routed to o3, a reasoning model, the request carries reasoning_effort "high"."""
    sent = await replay(make_proxy, fake, "o3")
    assert sent["reasoning_effort"] == "high"
    assert "max_completion_tokens" in sent and "max_tokens" not in sent


@pytest.mark.parametrize(
    ("model", "setting", "expected"),
    [("gpt-4.1", True, "high"), ("o3", False, None), ("o3", "auto", "high")],
)
async def test_a_provider_reasoning_setting_overrides_the_table(
    make_proxy: ProxyFactory, fake: FakeUpstream, model: str, setting: Any, expected: str | None
) -> None:
    """`reasoning: true` sends the effort to any model, `false` to none, "auto" follows the table."""
    sent = await replay(make_proxy, fake, model, reasoning=setting)
    assert sent.get("reasoning_effort") == expected
