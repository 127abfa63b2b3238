"""Issue 16: Codex CLI through ccproxy to a `responses` provider, its requests passed through.

The same offline `codex exec` run as tests/integration/test_codex_cli.py, but the provider
speaks the Responses API itself: it asks for the shell command with a `function_call`, then
quotes the command's output. What Codex sent must reach the provider as Codex sent it, but for
`model` (its developer messages, namespace and hosted tools, `prompt_cache_key` and all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import ProxyFactory
from tests.integration.test_codex_cli import CODEX, CODEX_DIR, COMMAND, EXPECTED, run_codex
from tests.responses_fake import function_call, message, stream_events

JSON = dict[str, Any]
UPSTREAM_MODEL = "gpt-5-codex"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CODEX is None, reason=f"Codex CLI is not installed (npm @openai/codex into {CODEX_DIR})"),
]


class ResponsesProvider:
    """A Responses API that asks for the shell command first, then quotes what it printed."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.bodies.append(raw)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        output = tool_output(orjson.loads(raw))
        if output is None:
            items = [function_call("exec_command", {"cmd": COMMAND}, call_id="call_codex_1")]
        else:
            items = [message("FINAL: the tool returned: " + output.strip())]
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in stream_events(items, model=UPSTREAM_MODEL):
            await response.write(event)
        await response.write_eof()
        return response


def tool_output(body: JSON) -> str | None:
    outputs = [item for item in body["input"] if item.get("type") == "function_call_output"]
    if not outputs:
        return None
    output = outputs[-1]["output"]
    return output if isinstance(output, str) else "".join(part.get("text", "") for part in output)


async def test_codex_runs_a_shell_command_through_a_responses_provider(
    make_proxy: ProxyFactory, aiohttp_server: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Codex's two requests reach the provider as sent but for `model`; the command runs; its output is the answer."""
    provider = ResponsesProvider()
    app = web.Application()
    app.router.add_post("/v1/responses", provider.handle)
    server: TestServer = await aiohttp_server(app)
    upstream = {
        "name": "oai",
        "kind": "responses",
        "api_base_url": str(server.make_url("/v1")),
        "api_key": "sk-up",
    }
    proxy = await make_proxy(
        {"providers": [upstream], "routes": {"default": {"provider": "oai", "model": UPSTREAM_MODEL}}}
    )
    code, stdout, stderr = await run_codex(proxy, tmp_path / "codex-home")
    assert code == 0, stderr[-3000:]
    assert len(provider.bodies) == 2, stderr[-3000:]
    first, second = (orjson.loads(body) for body in provider.bodies)
    assert first["model"] == second["model"] == UPSTREAM_MODEL
    assert EXPECTED in (tool_output(second) or "")  # the command really ran
    assert "FINAL: the tool returned: " in stdout and EXPECTED in stdout
    # Passed through, not translated: Codex's own shapes arrive as it wrote them.
    assert first["input"][0]["role"] == "developer" and "instructions" not in first
    kinds = {tool["type"] for tool in first["tools"]}
    assert {"function", "web_search"} <= kinds
    assert first["store"] is False and first["prompt_cache_key"]
    assert provider.headers[0]["authorization"] == "Bearer sk-up"
    assert provider.headers[0]["originator"] == "codex_exec"
    # Codex spells `model` as "fake-model" (its config); only that value changed, byte for byte.
    assert (
        provider.bodies[0].count(b'"fake-model"') == 0 and provider.bodies[0].count(orjson.dumps(UPSTREAM_MODEL)) == 1
    )
    assert not [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
