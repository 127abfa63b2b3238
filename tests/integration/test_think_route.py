"""Issue 11 item 11, through the real server: the `think` route takes only requests that ask to think hard.

Claude Code sends thinking on every main request (adaptive, effort "high"); a configured `think`
route used to take all of it and `default` was never used. The recorded request is replayed as
Claude Code sent it, then with an explicit high budget and with a higher effort.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import ProxyFactory
from tests.fakes import FIXTURES, FakeUpstream, Stream, sse_events

CAPTURE = orjson.loads((FIXTURES / "claude-code" / "text-0001.json").read_bytes())
SKIP_HEADERS = {"host", "content-length", "connection", "accept-encoding"}
Fakes = Callable[[], Awaitable[FakeUpstream]]


async def send(url: str, body: dict[str, Any]) -> str:
    """POST the body with Claude Code's own headers; the route the proxy reports."""
    headers = {k: v for k, v in CAPTURE["headers"] if k.lower() not in SKIP_HEADERS}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/messages?beta=true", data=orjson.dumps(body), headers=headers) as r,
    ):
        assert r.status == 200, await r.text()
        await r.read()
        return r.headers["x-ccproxy-route"]


@pytest.mark.parametrize(
    ("change", "router", "goes_to"),
    [
        ({}, {}, "default"),
        ({"thinking": {"type": "enabled", "budget_tokens": 31999}}, {}, "default"),
        ({"thinking": {"type": "enabled", "budget_tokens": 63999}}, {}, "think"),
        ({"output_config": {"effort": "max"}}, {}, "think"),
        ({"thinking": True}, {}, "think"),
        ({"thinking": {"type": "enabled", "budget_tokens": 20000}}, {"think_budget_threshold": 16000}, "think"),
    ],
)
async def test_claude_code_main_requests_reach_default_unless_they_think_hard(
    make_proxy: ProxyFactory, make_fake: Fakes, change: dict[str, Any], router: dict[str, Any], goes_to: str
) -> None:
    """Claude Code's default thinking goes to `default`; a high budget, a higher effort or `thinking: true` to `think`."""
    fakes = {"default": await make_fake(), "think": await make_fake()}
    for fake in fakes.values():
        fake.default = Stream(sse_events("anthropic/stream_text.sse"))
    providers = [
        {"name": name, "kind": "anthropic", "api_base_url": fake.url, "api_key": f"sk-{name}"}
        for name, fake in fakes.items()
    ]
    routes = {"default": {"provider": "default", "model": "claude-sonnet-4-5"}, "think": {"provider": "think"}}
    url = await make_proxy({"providers": providers, "routes": routes, "router": router})

    reported = await send(url, {**CAPTURE["body"], **change})

    assert reported.startswith(goes_to + ","), reported
    assert [len(f.requests) for f in fakes.values()] == ([1, 0] if goes_to == "default" else [0, 1])
