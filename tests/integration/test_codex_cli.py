"""Issue 16: Codex CLI itself, as a client of ccproxy's Responses API.

`codex exec` runs offline (the config from tests/fixtures/codex/README.md: a custom model
provider pointing at ccproxy, `wire_api = "responses"`, analytics and telemetry off, no
retries) against a scripted provider: the first answer asks for a shell command through
Codex's own `exec_command` tool, the second quotes the tool's output back. Codex must run the
command, send its output up as a `function_call_output`, and print the quoted output as its
final answer; once through an Anthropic provider and once through a Chat Completions one.

Codex CLI comes from npm (`@openai/codex`, pinned in .ci/run, which installs it into
`~/.cache/ccproxy-test/codex`); the test skips only where it is not installed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import ProxyFactory
from tests.specs import validator

JSON = dict[str, Any]

CODEX_DIR = Path(os.environ.get("CCPROXY_CODEX_DIR") or Path.home() / ".cache" / "ccproxy-test" / "codex")
CODEX = shutil.which("codex", path=str(CODEX_DIR / "node_modules" / ".bin")) or shutil.which("codex")
COMMAND = "echo codex-ran-$((6*7))"
PROMPT = f"Run this shell command and tell me its output: {COMMAND}"
EXPECTED = "codex-ran-42"
THOUGHT = "The user wants the output of a shell command; I will run it."
SIGNATURE = "EqQBCkgIARABGAIiQsignedByAnthropic=="
# A safety net for a wedged subprocess, not a performance limit: a run takes about a second.
RUN_LIMIT = 180.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CODEX is None, reason=f"Codex CLI is not installed (npm @openai/codex into {CODEX_DIR})"),
]


def _sse(name: str, payload: JSON) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _data(payload: JSON) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class ScriptedProvider:
    """A provider that asks for the shell command first, then quotes what the command printed."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.requests: list[JSON] = []
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.handle)
        app.router.add_post("/v1/chat/completions", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        output = self.tool_output(body)
        events = self._anthropic(output) if self.kind == "anthropic" else self._chat(output)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            await response.write(event)
        await response.write_eof()
        return response

    def tool_output(self, body: JSON) -> str | None:
        last = body["messages"][-1]
        if self.kind == "chat":
            return str(last["content"]) if last["role"] == "tool" else None
        results = [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]
        if not results:
            return None
        content = results[-1].get("content", "")
        return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)

    @staticmethod
    def _anthropic(output: str | None) -> list[bytes]:
        message: JSON = {
            "id": "msg_scripted",
            "type": "message",
            "role": "assistant",
            "model": "claude-scripted",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 120, "output_tokens": 1, "cache_read_input_tokens": 100},
        }
        events = [_sse("message_start", {"type": "message_start", "message": message})]
        if output is None:  # think (signed), then call the shell
            arguments = orjson.dumps({"cmd": COMMAND}).decode()
            blocks = [
                (
                    {"type": "thinking", "thinking": "", "signature": ""},
                    [
                        {"type": "thinking_delta", "thinking": THOUGHT},
                        {"type": "signature_delta", "signature": SIGNATURE},
                    ],
                ),
                (
                    {"type": "tool_use", "id": "toolu_scripted_1", "name": "exec_command", "input": {}},
                    [{"type": "input_json_delta", "partial_json": p} for p in ("", arguments[:12], arguments[12:])],
                ),
            ]
            stop = "tool_use"
        else:
            parts = ("FINAL: the tool returned: ", output.strip())
            blocks = [({"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in parts])]
            stop = "end_turn"
        for index, (block, deltas) in enumerate(blocks):
            events.append(
                _sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
            )
            events += [
                _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas
            ]
            events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": 20},
                },
            )
        )
        events.append(_sse("message_stop", {"type": "message_stop"}))
        return events

    @staticmethod
    def _chat(output: str | None) -> list[bytes]:
        base = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 1, "model": "gpt-scripted"}

        def chunk(delta: JSON, finish: str | None = None) -> bytes:
            return _data({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

        if output is None:
            arguments = orjson.dumps({"cmd": COMMAND}).decode()
            call = {
                "index": 0,
                "id": "call_scripted_1",
                "type": "function",
                "function": {"name": "exec_command", "arguments": arguments[:12]},
            }
            events = [
                chunk({"role": "assistant", "tool_calls": [call]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[12:]}}]}),
                chunk({}, "tool_calls"),
            ]
        else:
            events = [
                chunk({"role": "assistant", "content": "FINAL: the tool returned: "}),
                chunk({"content": output.strip()}),
                chunk({}, "stop"),
            ]
        usage = {
            "prompt_tokens": 120,
            "completion_tokens": 20,
            "total_tokens": 140,
            "prompt_tokens_details": {"cached_tokens": 100},
        }
        return [*events, _data({**base, "choices": [], "usage": usage}), b"data: [DONE]\n\n"]


def codex_config(base_url: str) -> str:
    """tests/fixtures/codex/README.md's config, with the provider pointing at ccproxy."""
    return f"""
model = "fake-model"
model_provider = "ccproxy"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[model_providers.ccproxy]
name = "ccproxy"
base_url = "{base_url}/v1"
env_key = "CCPROXY_TEST_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 60000

[analytics]
enabled = false

[otel]
exporter = "none"
trace_exporter = "none"
metrics_exporter = "none"
"""


async def run_codex(base_url: str, home: Path) -> tuple[int, str, str]:
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(codex_config(base_url))
    work = home / "work"
    work.mkdir(exist_ok=True)
    assert CODEX is not None
    process = await asyncio.create_subprocess_exec(
        CODEX,
        "exec",
        "--skip-git-repo-check",
        "--sandbox",
        "danger-full-access",
        "--strict-config",
        "-c",
        "check_for_update_on_startup=false",
        PROMPT,
        cwd=work,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            "PATH": f"{Path(CODEX).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "CODEX_HOME": str(codex_home),
            "CCPROXY_TEST_KEY": "sk-codex-test",
        },
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), RUN_LIMIT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace")


@pytest.fixture
async def scripted(aiohttp_server: Any, request: pytest.FixtureRequest) -> ScriptedProvider:
    provider = ScriptedProvider(request.param)
    server: TestServer = await aiohttp_server(provider.app())
    provider.url = str(server.make_url("")).rstrip("/")
    return provider


def provider_config(provider: ScriptedProvider) -> JSON:
    if provider.kind == "anthropic":
        return {"name": "up", "kind": "anthropic", "api_base_url": provider.url, "api_key": "sk-up"}
    return {"name": "up", "kind": "openai", "api_base_url": provider.url + "/v1", "api_key": "sk-up"}


@pytest.mark.parametrize("scripted", ["anthropic", "chat"], indirect=True)
async def test_codex_runs_a_shell_command_through_ccproxy(
    scripted: ScriptedProvider, make_proxy: ProxyFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Codex asks, runs exec_command, sends its output back, and prints the quoted output as its answer."""
    proxy = await make_proxy(
        {"providers": [provider_config(scripted)], "routes": {"default": {"provider": "up", "model": "scripted-model"}}}
    )
    code, stdout, stderr = await run_codex(proxy, tmp_path / "codex-home")
    assert code == 0, stderr[-3000:]
    assert len(scripted.requests) == 2, stderr[-3000:]
    first, second = scripted.requests
    assert EXPECTED not in orjson.dumps(first).decode()
    assert EXPECTED in (scripted.tool_output(second) or "")  # the command really ran
    assert "FINAL: the tool returned: " in stdout and EXPECTED in stdout
    schema = (
        ("anthropic", "CreateMessageParams")
        if scripted.kind == "anthropic"
        else ("openai", "CreateChatCompletionRequest")
    )
    for body in scripted.requests:
        assert validator(*schema).is_valid(body), next(iter(validator(*schema).iter_errors(body))).message
    # Codex hangs up right after response.completed: a normal end, nothing logged as an error.
    assert not [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    if scripted.kind == "anthropic":
        # Codex sent the reasoning item back (store: false); the thinking block came back exactly.
        assert second["messages"][1]["content"][0] == {"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE}
        # Codex's developer messages became the system prompt; its hosted web_search was left out.
        assert "Codex" in first["system"][0]["text"]
        assert all(tool["name"] != "web_search" and "type" not in tool for tool in first["tools"])


async def _overloaded(request: web.Request) -> web.StreamResponse:
    """529 before the first byte."""
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded right now"}}
    return web.json_response(body, status=529)


async def _breaks_off(request: web.Request) -> web.StreamResponse:
    """An answer that starts, then fails in-band with Anthropic's `error` event."""
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    message: JSON = {
        "id": "msg_x",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    }
    await response.write(_sse("message_start", {"type": "message_start", "message": message}))
    await response.write(
        _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
    )
    await response.write(
        _sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me"}},
        )
    )
    await response.write(
        _sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded right now"}})
    )
    await response.write_eof()
    return response


@pytest.mark.parametrize("answer", [_overloaded, _breaks_off], ids=["before the first byte", "mid-stream"])
async def test_codex_shows_a_provider_error(
    answer: Any, make_proxy: ProxyFactory, aiohttp_server: Any, tmp_path: Path
) -> None:
    """A provider's error reaches Codex (an HTTP error, or response.failed mid-stream) and Codex prints it."""
    app = web.Application()
    app.router.add_post("/v1/messages", answer)
    server: TestServer = await aiohttp_server(app)
    upstream = {"name": "up", "kind": "anthropic", "api_base_url": str(server.make_url("")).rstrip("/"), "api_key": "k"}
    proxy = await make_proxy({"providers": [upstream], "routes": {"default": {"provider": "up", "model": "m"}}})
    code, _, stderr = await run_codex(proxy, tmp_path / "codex-home")
    assert code != 0
    assert "Overloaded right now" in stderr, stderr[-3000:]
