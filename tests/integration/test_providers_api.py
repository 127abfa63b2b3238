"""The live provider API, and configs written for other proxies, end to end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from ccproxy_core.config.load import load
from tests.conftest import ProxyFactory
from tests.fakes import FakeUpstream, Reply, Stream, recorded, sse_events

REQUEST = {"model": "claude-opus-4-8", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
MakeFake = Callable[[], Awaitable[FakeUpstream]]


async def call(method: str, url: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.request(method, url, json=body, **kw) as r:
        return r.status, await r.json()


async def started_from_file(make_proxy: ProxyFactory, path: Path, config: dict[str, Any]) -> str:
    path.write_text(json.dumps(config))
    loaded = load(config_file=str(path), env={}, cwd=path.parent, user_paths=[])
    return await make_proxy(loaded.config, config_files=tuple(str(f) for f in loaded.files))


async def test_provider_crud_is_validated_persisted_and_live(
    make_proxy: ProxyFactory, make_fake: MakeFake, tmp_path: Path
) -> None:
    a, b = await make_fake(), await make_fake()
    path = tmp_path / "config.json"
    url = await started_from_file(
        make_proxy,
        path,
        {"providers": [{"name": "a", "kind": "anthropic", "api_base_url": a.url, "api_key": "sk-ant-secret-aaaa"}]},
    )

    status, listing = await call("GET", f"{url}/providers")
    assert status == 200
    assert listing["providers"][0]["api_key"] == "sk-a…aaaa"
    assert "secret" not in json.dumps(listing)

    new = {"name": "b", "kind": "anthropic", "apiBaseUrl": b.url, "apiKey": "sk-ant-bbbbbbbbbbbb"}
    status, created = await call("POST", f"{url}/providers", new)
    assert status == 201 and created["name"] == "b"
    assert [p["name"] for p in json.loads(path.read_text())["providers"]] == ["a", "b"]
    assert path.stat().st_mode & 0o777 == 0o600

    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/messages", json={**REQUEST, "model": "b,m"}) as r:
        assert r.status == 200
    assert b.requests[-1].headers["x-api-key"] == "sk-ant-bbbbbbbbbbbb"

    status, err = await call("POST", f"{url}/providers", {"name": "c", "kind": "nonsense"})
    assert status == 400 and "kind" in err["error"]["message"]
    status, err = await call("POST", f"{url}/providers", new)
    assert status == 400 and "exists" in err["error"]["message"]
    status, _ = await call("GET", f"{url}/providers/zzz")
    assert status == 404

    status, toggled = await call("PATCH", f"{url}/providers/b/toggle")
    assert status == 200 and toggled["enabled"] is False
    status, replaced = await call("PUT", f"{url}/providers/b", {**new, "models": ["m1"], "enabled": True})
    assert status == 200 and replaced["models"] == ["m1"] and replaced["enabled"] is True
    status, _ = await call("GET", f"{url}/status?provider=b")
    assert status == 200, "b's keys form a pool"
    status, _ = await call("DELETE", f"{url}/providers/b")
    assert status == 200
    status, _ = await call("GET", f"{url}/status?provider=b")
    assert status == 404, "a deleted provider's pool is retired with it"
    assert [p["name"] for p in json.loads(path.read_text())["providers"]] == ["a"]
    status, err = await call("POST", f"{url}/v1/messages", {**REQUEST, "model": "b,m"})
    assert status == 404


async def test_a_write_while_50_requests_are_in_flight_drops_none(
    make_proxy: ProxyFactory, make_fake: MakeFake, tmp_path: Path
) -> None:
    a, b = await make_fake(), await make_fake()
    a.default = Stream(sse_events("anthropic/stream_text.sse"), pause_after=2, pause=0.5)
    url = await started_from_file(
        make_proxy,
        tmp_path / "config.json",
        {"providers": [{"name": "a", "kind": "anthropic", "api_base_url": a.url, "api_key": "ka"}]},
    )

    async def one() -> bytes:
        async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/messages", json={**REQUEST, "stream": True}) as r:
            assert r.status == 200
            return await r.read()

    tasks = [asyncio.ensure_future(one()) for _ in range(50)]
    while a.streams_started < 50:
        await asyncio.sleep(0.01)
    status, _ = await call(
        "PUT", f"{url}/providers/a", {"name": "a", "kind": "anthropic", "api_base_url": b.url, "api_key": "kb"}
    )
    assert status == 200
    bodies = await asyncio.gather(*tasks)
    assert bodies == [b"".join(sse_events("anthropic/stream_text.sse"))] * 50, "every stream finished whole"
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/messages", json=REQUEST) as r:
        assert r.status == 200
    assert len(b.requests) == 1, "the next request went to the new address"


async def test_go_ccproxy_config_loads_as_it_is_and_routes(
    make_proxy: ProxyFactory, make_fake: MakeFake, tmp_path: Path
) -> None:
    anthropic_fake, openai_fake = await make_fake(), await make_fake()
    openai_fake.default = Reply(body=recorded("openai/completion_parallel_tool_calls.json"))
    path = tmp_path / "config.json"
    path.write_text(f"""{{
      // the Go ccproxy's config.json, comments and all
      "host": "127.0.0.1",
      "port": 3456,
      "log": false,
      "apikey": "",
      "providers": [
        {{"name": "anthropic", "api_base_url": "{anthropic_fake.url}", "api_key": "sk-ant",
          "models": ["claude-sonnet-4-6"], "enabled": true}},
        {{"name": "openai", "api_base_url": "{openai_fake.url}/v1", "api_key": "sk-openai",
          "models": ["gpt-4.1-mini"], "enabled": true}}
      ],
      "routes": {{
        "default": {{"provider": "anthropic", "model": "claude-sonnet-4-6"}},
        "background": {{"provider": "openai", "model": "gpt-4.1-mini"}}
      }},
      "performance": {{"request_timeout": "30s", "max_request_body_size": 10485760}}
    }}""")
    loaded = load(config_file=str(path), env={}, cwd=tmp_path, user_paths=[])
    assert loaded.config.limits.request_timeout == 30
    url = await make_proxy(loaded.config)
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{url}/v1/messages", json=REQUEST) as r:
            assert r.status == 200
            assert r.headers["x-ccproxy-route"].startswith("anthropic,claude-sonnet-4-6")
        async with s.post(f"{url}/v1/messages", json={**REQUEST, "model": "claude-haiku-4-5"}) as r:
            assert r.status == 200
            message = await r.json()
    assert openai_fake.requests[-1].path == "/v1/chat/completions"
    assert openai_fake.requests[-1].json()["model"] == "gpt-4.1-mini"
    assert [b["type"] for b in message["content"]] == ["tool_use", "tool_use"]


async def test_npm_claude_code_proxy_settings_load_as_they_are_and_route(
    make_proxy: ProxyFactory, make_fake: MakeFake, tmp_path: Path
) -> None:
    big, small = await make_fake(), await make_fake()
    small.default = Reply(body=recorded("openai/completion_reasoning_o3_mini.json"))
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "providers": {
                    "claude": {"baseURL": big.url, "apiKey": "sk-ant", "responseStyle": "anthropic"},
                    "local": {"baseURL": f"{small.url}/v1", "apiKey": "sk-local", "responseStyle": "openai"},
                },
                "models": {"bigModel": "claude-sonnet-4-6@claude", "smallModel": "o3-mini@local"},
            }
        )
    )
    url = await make_proxy(load(config_file=str(path), env={}, cwd=tmp_path, user_paths=[]).config)
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{url}/v1/messages", json={**REQUEST, "model": "claude-sonnet-4-5-20250929"}) as r:
            assert r.status == 200
        async with s.post(f"{url}/v1/messages", json={**REQUEST, "model": "claude-3-5-haiku-20241022"}) as r:
            assert r.status == 200
            message = await r.json()
    assert big.requests[-1].json()["model"] == "claude-sonnet-4-6"
    assert small.requests[-1].json()["model"] == "o3-mini"
    assert message["type"] == "message" and message["content"][0]["type"] == "text"
    assert (
        orjson.loads(recorded("openai/completion_reasoning_o3_mini.json"))["choices"][0]["message"]["content"]
        in message["content"][0]["text"]
    )
