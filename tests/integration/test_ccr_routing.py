"""A claude-code-router config.json, found in ~/.claude-code-router, routes real requests end to end."""

from __future__ import annotations

from pathlib import Path

import anthropic

from ccproxy_core.config import ccr
from ccproxy_core.config.load import load
from tests.conftest import ProxyFactory
from tests.fakes import FakeUpstream, json_reply

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ccr" / "json5-env.json"


async def test_ccr_config_routes_default_and_think_through_the_real_server(
    isolated_home: Path, make_proxy: ProxyFactory, make_fake: object
) -> None:
    """`Router.default` goes to the OpenAI-style provider, `Router.think` to the Anthropic one, with `$VAR` keys."""
    deepseek: FakeUpstream = await make_fake()  # type: ignore[operator]
    claude: FakeUpstream = await make_fake()  # type: ignore[operator]
    deepseek.default = json_reply("openai/completion_reasoning_o3_mini.json")
    text = FIXTURE.read_text(encoding="utf-8")
    text = text.replace("http://127.0.0.1:1/chat/completions", f"{deepseek.url}/chat/completions")
    text = text.replace("http://127.0.0.1:1/v1/messages", f"{claude.url}/v1/messages")
    target = ccr.user_config_path(isolated_home)
    target.parent.mkdir()
    target.write_text(text, encoding="utf-8")

    loaded = load(env={"DEEPSEEK_KEY": "sk-deep", "CLAUDE_KEY": "sk-claude"}, cwd=isolated_home, user_paths=[])
    assert loaded.files == (target,)
    url = await make_proxy(loaded.config)
    client = anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0)

    plain = await client.messages.with_raw_response.create(
        model="claude-sonnet-4-20250514", max_tokens=200, messages=[{"role": "user", "content": "hi"}]
    )
    assert plain.headers["x-ccproxy-route"].startswith("deepseek,deepseek-chat")
    assert (await plain.parse()).content, "the OpenAI answer came back as an Anthropic message"
    (sent,) = deepseek.requests
    assert sent.path == "/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-deep"
    assert sent.json()["model"] == "deepseek-chat"

    # `think` takes a request that asks to think hard: here an effort above Claude Code's default
    thinking = await client.messages.create(
        model="claude-sonnet-4-20250514",
        max_tokens=2000,
        thinking={"type": "adaptive"},
        messages=[{"role": "user", "content": "think"}],
        extra_body={"output_config": {"effort": "max"}},
    )
    assert thinking.content
    (sent,) = claude.requests
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-claude"
    assert sent.json()["model"] == "claude-sonnet-4-20250514"
