"""Config that stays yours, live (issue #11 items 1, 2, 9): hot reload and provider API writes through a real server."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from aiohttp.test_utils import TestServer

from ccproxy_core.config.load import Sources
from ccproxy_core.server import config_watch
from ccproxy_core.server.app import create_app
from tests.fakes import FakeUpstream

REQUEST = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
MakeFake = Callable[[], Awaitable[FakeUpstream]]

STARTER = """\
// my proxy, commented by hand
{
  "port": 3456, // kept
  "providers": [
    {
      // the main one; its key stays a reference
      "name": "a",
      "kind": "anthropic",
      "api_base_url": "%(a)s",
      "api_key": "${A_KEY}"
    }
  ]
}
"""


async def serve(aiohttp_server: Any, sources: Sources) -> tuple[str, config_watch.ConfigWatcher]:
    loaded = sources.load()
    app = create_app(loaded.config, config_files=tuple(str(f) for f in loaded.files))
    watcher = config_watch.install(app, sources)
    server: TestServer = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), watcher


async def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.request(method, url, json=body) as r:
        return r.status, await r.json()


async def until(check: Callable[[], bool], what: str, limit: float = 5.0) -> float:
    """Poll `check` (bounded); the seconds it took."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < limit, f"not within {limit} s: {what}"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture
def sources(tmp_path: Path) -> Callable[[dict[str, str]], Sources]:
    def make(env: dict[str, str]) -> Sources:
        return Sources(
            env=env,
            cwd=tmp_path,
            managed=tmp_path / "none.json",
            managed_settings=tmp_path / "none-settings.json",
            config_file=str(tmp_path / "config.json"),
        )

    return make


async def test_an_edited_config_file_is_applied_within_a_second(
    aiohttp_server: Any, make_fake: MakeFake, tmp_path: Path, sources: Callable[[dict[str, str]], Sources]
) -> None:
    """Saving config.json moves the next request to the new provider without a restart."""
    a, b = await make_fake(), await make_fake()
    path = tmp_path / "config.json"
    path.write_text(STARTER % {"a": a.url})
    url, watcher = await serve(aiohttp_server, sources({"A_KEY": "key-a"}))
    client = anthropic.AsyncAnthropic(base_url=url, api_key="unused")
    await client.messages.create(**REQUEST)  # type: ignore[call-overload]
    assert len(a.requests) == 1

    outcomes: list[object] = []
    watcher.on_reload = outcomes.append
    path.write_text(STARTER.replace("%(a)s", b.url))
    took = await until(lambda: bool(outcomes), "the edit applied")
    assert outcomes[0] is not None

    await client.messages.create(**REQUEST)  # type: ignore[call-overload]
    assert len(a.requests) == 1 and b.requests[-1].headers["x-api-key"] == "key-a"
    assert took < 1.5


async def test_an_invalid_edit_is_logged_and_the_last_good_config_stays(
    aiohttp_server: Any,
    make_fake: MakeFake,
    tmp_path: Path,
    sources: Callable[[dict[str, str]], Sources],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A typo is logged as `file: key: problem` and requests keep flowing to the old provider."""
    a = await make_fake()
    path = tmp_path / "config.json"
    path.write_text(STARTER % {"a": a.url})
    url, watcher = await serve(aiohttp_server, sources({"A_KEY": "key-a"}))
    outcomes: list[object] = []
    watcher.on_reload = outcomes.append
    with caplog.at_level(logging.ERROR, logger="ccproxy.config"):
        path.write_text(STARTER.replace('"port": 3456', '"prot": 3456') % {"a": a.url})
        await until(lambda: outcomes == [None], "the bad edit refused")
    assert f"{path}: prot: unknown key" in caplog.text
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/messages", json=REQUEST) as r:
        assert r.status == 200
    assert len(a.requests) == 1


async def test_provider_api_writes_keep_comments_and_references_and_a_backup(
    aiohttp_server: Any, make_fake: MakeFake, tmp_path: Path, sources: Callable[[dict[str, str]], Sources]
) -> None:
    """Toggle and POST change only their own text: comments, `${A_KEY}` and the port comment stay; never the key."""
    a, b = await make_fake(), await make_fake()
    path = tmp_path / "config.json"
    original = STARTER % {"a": a.url}
    path.write_text(original)
    url, _ = await serve(aiohttp_server, sources({"A_KEY": "sk-from-the-environment", "OPENAI_API_KEY": "sk-env-o"}))

    status, toggled = await call("PATCH", f"{url}/providers/a/toggle")
    assert status == 200 and toggled["enabled"] is False
    text = path.read_text()
    assert text == original.replace('"api_key": "${A_KEY}"', '"api_key": "${A_KEY}",\n      "enabled": false')
    assert (tmp_path / "config.json.bak").read_text() == original

    status, created = await call(
        "POST", f"{url}/providers", {"name": "b", "kind": "anthropic", "api_base_url": b.url, "api_key": "$B_KEY"}
    )
    assert status == 400 and "B_KEY is not set" in created["error"]["message"], created
    assert path.read_text() == text, "a refused write leaves the file alone"
    status, _ = await call("POST", f"{url}/providers", {"name": "b", "kind": "anthropic", "api_base_url": b.url})
    assert status == 201
    written = path.read_text()
    assert "// my proxy, commented by hand" in written and "// the main one" in written
    assert "${A_KEY}" in written and "sk-from-the-environment" not in written and "sk-env-o" not in written
    status, listing = await call("GET", f"{url}/providers")
    assert [p["name"] for p in listing["providers"]] == ["a", "b"]


async def test_a_bad_post_is_a_400_and_nothing_is_written(
    aiohttp_server: Any, make_fake: MakeFake, tmp_path: Path, sources: Callable[[dict[str, str]], Sources]
) -> None:
    """An unknown preset is refused before the disk is touched; the server keeps serving."""
    a = await make_fake()
    path = tmp_path / "config.json"
    path.write_text(STARTER % {"a": a.url})
    url, _ = await serve(aiohttp_server, sources({"A_KEY": "k"}))
    for body in ({"name": "x", "preset": "bogus"}, {"name": "y", "kind": "openai", "api_key": "k"}):
        status, err = await call("POST", f"{url}/providers", body)
        assert status == 400, err
        assert "preset" in err["error"]["message"] or "api_base_url" in err["error"]["message"]
    assert path.read_text() == STARTER % {"a": a.url}
    assert not (tmp_path / "config.json.bak").exists()
    assert Sources(env={"A_KEY": "k"}, config_file=str(path), cwd=tmp_path).load().config.providers[0].name == "a"


async def test_providers_from_a_toml_or_npm_file_are_refused_with_the_reason(make_proxy: Any, tmp_path: Path) -> None:
    for name, text, reason in (
        ("c.toml", '[[providers]]\nname = "a"\nkind = "anthropic"\napi_base_url = "http://127.0.0.1:9"\n', "TOML"),
        ("settings.json", '{"providers": {"a": {"baseURL": "http://127.0.0.1:9", "apiKey": "k"}}}', "npm"),
    ):
        path = tmp_path / name
        path.write_text(text)
        loaded = Sources(env={}, config_file=str(path), cwd=tmp_path, managed=tmp_path / "n.json").load()
        url = await make_proxy(loaded.config, config_files=tuple(str(f) for f in loaded.files))
        status, err = await call("PATCH", f"{url}/providers/a/toggle")
        assert status == 400 and reason in err["error"]["message"] and str(path) in err["error"]["message"]
        assert path.read_text() == text


async def test_models_lists_route_models_when_providers_list_none(make_proxy: Any, fake: FakeUpstream) -> None:
    """Open WebUI and Continue pick from /v1/models: the models routes send to are there."""
    url = await make_proxy(
        {
            "providers": [{"name": "o", "kind": "openai", "api_base_url": f"{fake.url}/v1", "api_key": "k"}],
            "routes": {
                "default": {"provider": "o", "model": "gpt-4.1"},
                "background": {"provider": "o", "model": "gpt-4.1-mini"},
            },
        }
    )
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused")
    ids = [m.id async for m in client.models.list()]
    assert ids == ["gpt-4.1", "gpt-4.1-mini"]
