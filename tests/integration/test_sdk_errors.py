"""SDK-mode answers that need no Claude Code run: refusals, a missing CLI, the model list, auth.

Each error comes in the dialect of the endpoint asked (Anthropic on /messages, OpenAI on
/chat/completions) and says what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import ProxyFactory

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}
HELLO = [{"role": "user", "content": "hi"}]


async def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers or {}) as r:
        return r.status, await r.json()


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers or {}) as r:
        return r.status, await r.json()


@pytest.fixture
async def no_cli_proxy(make_proxy: ProxyFactory, tmp_path: Path) -> str:
    """A proxy whose `claude` is nowhere: PATH holds only an empty directory."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    return await make_proxy({"sdk": {"env": {"PATH": str(empty)}, "cwd": str(tmp_path)}})


async def test_missing_cli_is_503_naming_the_fix_anthropic(no_cli_proxy: str) -> None:
    """No `claude` on the PATH: an Anthropic client gets 503 saying to install it or set sdk.cli_path."""
    status, body = await post(
        no_cli_proxy + "/claude/v1/messages", {"model": "sonnet", "messages": HELLO}, ANTHROPIC_HEADERS
    )
    assert status == 503 and body["type"] == "error"
    assert "not on the PATH" in body["error"]["message"]
    assert "npm install -g @anthropic-ai/claude-code" in body["error"]["message"]
    assert "sdk.cli_path" in body["error"]["message"]


async def test_missing_cli_is_503_naming_the_fix_openai(no_cli_proxy: str) -> None:
    """The same for an OpenAI client, in OpenAI's error shape, on the session route too."""
    status, body = await post(
        no_cli_proxy + "/sdk/any-session/v1/chat/completions", {"model": "sonnet", "messages": HELLO}
    )
    assert status == 503 and "sdk.cli_path" in body["error"]["message"] and body["error"]["type"] == "server_error"


async def test_a_cli_path_that_is_not_executable_is_named(make_proxy: ProxyFactory, tmp_path: Path) -> None:
    """A wrong sdk.cli_path is reported with the path itself."""
    url = await make_proxy({"sdk": {"cli_path": str(tmp_path / "nope" / "claude"), "cwd": str(tmp_path)}})
    status, body = await post(url + "/claude/v1/messages", {"model": "sonnet", "messages": HELLO}, ANTHROPIC_HEADERS)
    assert status == 503 and str(tmp_path / "nope" / "claude") in body["error"]["message"]


async def test_client_tools_are_refused_in_each_dialect(no_cli_proxy: str) -> None:
    """Client-defined tools get a 400 explaining SDK mode, before anything else is tried."""
    tool = {"name": "get_weather", "description": "d", "input_schema": {"type": "object"}}
    status, body = await post(
        no_cli_proxy + "/claude/v1/messages", {"model": "sonnet", "messages": HELLO, "tools": [tool]}, ANTHROPIC_HEADERS
    )
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    assert "Claude Code's own tools" in body["error"]["message"] and "/v1/messages" in body["error"]["message"]
    function = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    status, body = await post(
        no_cli_proxy + "/claude/v1/chat/completions", {"model": "sonnet", "messages": HELLO, "tools": [function]}
    )
    assert status == 400 and "Claude Code's own tools" in body["error"]["message"]


async def test_json_response_format_is_refused(no_cli_proxy: str) -> None:
    """response_format cannot be forced on Claude Code: 400 naming the field."""
    status, body = await post(
        no_cli_proxy + "/claude/v1/chat/completions",
        {"model": "sonnet", "messages": HELLO, "response_format": {"type": "json_object"}},
    )
    assert status == 400 and body["error"]["message"].startswith("response_format:")


async def test_a_prefilled_assistant_turn_is_refused(no_cli_proxy: str) -> None:
    """A request ending in an assistant turn gets 400 naming the message."""
    messages = [*HELLO, {"role": "assistant", "content": "Sure,"}]
    status, body = await post(
        no_cli_proxy + "/claude/v1/messages", {"model": "sonnet", "messages": messages}, ANTHROPIC_HEADERS
    )
    assert status == 400 and body["error"]["message"].startswith("messages.1:")


async def test_models_in_both_shapes(no_cli_proxy: str) -> None:
    """GET /claude/v1/models lists the CLI's aliases and models, Anthropic-shaped with anthropic-version."""
    status, body = await get(no_cli_proxy + "/claude/v1/models", ANTHROPIC_HEADERS)
    ids = [m["id"] for m in body["data"]]
    assert status == 200 and {"sonnet", "opus", "haiku"} <= set(ids) and body["data"][0]["type"] == "model"
    status, body = await get(no_cli_proxy + "/sdk/v1/models")
    assert status == 200 and body["object"] == "list" and [m["id"] for m in body["data"]] == ids


async def test_sdk_routes_need_the_proxy_key(make_proxy: ProxyFactory, tmp_path: Path) -> None:
    """With an apikey set, SDK mode is protected like every other path."""
    url = await make_proxy({"apikey": "secret", "sdk": {"cwd": str(tmp_path)}})
    status, _ = await post(url + "/claude/v1/messages", {"model": "sonnet", "messages": HELLO}, ANTHROPIC_HEADERS)
    assert status == 401
    status, _ = await get(url + "/sdk/v1/models", {"x-api-key": "secret"})
    assert status == 200
