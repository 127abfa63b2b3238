"""A fake Anthropic Messages API that the real Claude Code CLI can talk to, offline.

SDK-mode tests run the real `claude` binary with `ANTHROPIC_BASE_URL` pointing here. The
fake plays a tiny model, so a whole Claude Code run (including its own tool loop) happens
without the internet:

- a user turn whose last text contains `run: CMD` (and a request offering the Bash tool)
  is answered with a `tool_use` of Bash running CMD;
- a turn that carries a `tool_result` is answered with text quoting the result;
- anything else is answered with `Echo: <the last user text>`; every user text of the
  request is recorded, so a test can see what the CLI sent (the conversation it carried).

A prompt containing `pause` makes the streamed answer stop after its first text delta until
the test calls `release()`; `fail_status` makes every answer an error. A client that has the first words while the provider is still
paused proves ccproxy streams rather than buffers. `hang_requests` counts requests stopped
there, so a test can wait for the pause before acting (a disconnect, say).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

# The Claude Code release the SDK-mode tests run (and .ci/run installs).
CLAUDE_CODE_VERSION = "2.1.332"
# The real user's cache, read before any test points HOME at a temporary directory.
CLI_CACHE = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "ccproxy-test" / "claude-code"


def _runs(path: Path) -> bool:
    """A real CLI answers --version (an npm install whose postinstall did not run leaves a stub)."""
    if not (path.is_file() and os.access(path, os.X_OK)):
        return False
    try:
        done = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return False
    return done.returncode == 0 and "Claude Code" in done.stdout


def _cached_cli() -> str | None:
    for path in (
        CLI_CACHE / "node_modules" / ".bin" / "claude",
        CLI_CACHE / "node_modules" / "@anthropic-ai" / "claude-code-linux-x64" / "claude",
    ):
        if _runs(path):
            return str(path)
    return None


def find_claude() -> tuple[str | None, str]:
    """The `claude` to test with (CCPROXY_TEST_CLAUDE, the test cache, PATH, else an npm install), or why not."""
    explicit = os.environ.get("CCPROXY_TEST_CLAUDE")
    if explicit:
        return (
            (explicit, "")
            if os.access(explicit, os.X_OK)
            else (None, f"CCPROXY_TEST_CLAUDE={explicit} is not executable")
        )
    found = _cached_cli() or shutil.which("claude")
    if found:
        return found, ""
    npm = shutil.which("npm")
    if npm is None:
        return None, "Claude Code is not installed and npm is not available to install it"
    spec = f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}"
    done = subprocess.run(
        [npm, "install", "--prefix", str(CLI_CACHE), "--no-audit", "--no-fund", spec],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    found = _cached_cli()
    if found:
        return found, ""
    return None, f"npm install {spec} failed: {(done.stderr or done.stdout).strip()[-300:]}"


_RUN = re.compile(r"run:\s*(.+)", re.IGNORECASE)
_ids = itertools.count(1)


def _sse(name: str, payload: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def user_texts(message: Any) -> list[str]:
    """The text blocks of one message (a string content counts as one)."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    return [
        b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
    ]


def last_user(body: dict[str, Any]) -> dict[str, Any]:
    """The last `user` message: Claude Code appends a `system` message (its environment) after it."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return message
    return {}


def _tool_result_text(message: Any) -> str | None:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return None
    for block in content:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            inner = block.get("content")
            if isinstance(inner, list):
                return "".join(b.get("text", "") for b in inner if isinstance(b, dict))
            return str(inner or "")
    return None


class FakeClaudeAPI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.hang_requests = 0
        self.fail_status = 0  # answer every request with this error status instead (0: answer normally)
        self._release = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_route("HEAD", "/", self._head)
        self.app.router.add_post("/v1/messages", self._messages)

    def release(self) -> None:
        self._release.set()

    def prompts(self) -> list[str]:
        """The last user text of every request received, in order."""
        out = []
        for body in self.requests:
            texts = user_texts(last_user(body))
            out.append(texts[-1] if texts else "")
        return out

    async def _head(self, _: web.Request) -> web.Response:
        return web.Response()

    def _answer(self, body: dict[str, Any]) -> tuple[str, Any]:
        """("text", str) or ("tool", command)."""
        last = last_user(body)
        result = _tool_result_text(last)
        if result is not None:
            return "text", f"The command printed: {result.strip()}"
        texts = user_texts(last)
        prompt = texts[-1] if texts else ""
        tools = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
        match = _RUN.search(prompt)
        if match and "Bash" in tools:
            return "tool", match.group(1).strip()
        return "text", f"Echo: {prompt.strip()}"

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if self.fail_status:
            return web.json_response(
                {"type": "error", "error": {"type": "not_found_error", "message": "no such thing"}},
                status=self.fail_status,
            )
        kind, value = self._answer(body)
        model = body.get("model", "claude-test")
        msg_id = f"msg_fake{next(_ids):04d}"
        usage = {"input_tokens": 11, "output_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if kind == "tool":
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": f"toolu_fake{next(_ids):04d}",
                "name": "Bash",
                "input": {"command": value, "description": "Run the command"},
            }
            stop = "tool_use"
        else:
            block = {"type": "text", "text": value}
            stop = "end_turn"
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [block],
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": usage,
                }
            )
        resp = web.StreamResponse(headers={"content-type": "text/event-stream", "request-id": f"req_{msg_id}"})
        await resp.prepare(request)
        await resp.write(
            _sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {**usage, "output_tokens": 1},
                    },
                },
            )
        )
        if kind == "tool":
            await resp.write(
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {**block, "input": {}}},
                )
            )
            await resp.write(
                _sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": orjson.dumps(block["input"]).decode()},
                    },
                )
            )
        else:
            await resp.write(
                _sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                )
            )
            words = value.split(" ")
            for i, word in enumerate(words):
                piece = word if i == 0 else " " + word
                await resp.write(
                    _sse(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                    )
                )
                if i == 0 and "pause" in value:
                    self.hang_requests += 1
                    await self._release.wait()
        await resp.write(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        await resp.write(
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": 7},
                },
            )
        )
        await resp.write(_sse("message_stop", {"type": "message_stop"}))
        return resp
