"""SDK mode: what a warm session saves against a cold CLI start, measured through ccproxy.

Runs the real Claude Code CLI (found like the tests find it: CCPROXY_TEST_CLAUDE, the test
cache, PATH) against the fake Anthropic API of the tests, on loopback, with a temporary HOME:

    cold   stateless requests to /claude/v1/messages: every request starts a `claude` process
    first  the first turn of a new session: a start too, plus the session's transcript
    warm   later turns of that session: the process is already up (`--input-format stream-json`)

and prints, per row, the request latency (min / p50 / max) and the time to the first streamed
text. The fake answers at once, so the numbers are ccproxy + CLI overhead, not model time.

    .venv/bin/python bench/sdk_latency.py [--requests 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ccproxy_core.config.model import structure
from ccproxy_core.server.app import create_app
from tests.sdk_fake import FakeClaudeAPI, find_claude

HEADERS = {"anthropic-version": "2023-06-01"}


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def one(session: aiohttp.ClientSession, url: str, text: str, stream: bool) -> float:
    """Seconds to the whole answer, or to the first text delta when streaming."""
    body = {"model": "sonnet", "max_tokens": 50, "stream": stream, "messages": [{"role": "user", "content": text}]}
    start = time.perf_counter()
    async with session.post(url, json=body, headers=HEADERS) as response:
        assert response.status == 200, await response.text()
        if not stream:
            await response.read()
            return time.perf_counter() - start
        async for line in response.content:
            if b"text_delta" in line:
                elapsed = time.perf_counter() - start
                await response.read()
                return elapsed
    raise AssertionError("the stream had no text")


def row(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"| {name} | {len(ms)} | {ms[0]:.0f} | {statistics.median(ms):.0f} | {ms[-1]:.0f} |"


async def main(requests: int) -> None:
    cli, why = find_claude()
    if cli is None:
        raise SystemExit(f"needs the Claude Code CLI: {why}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HOME"] = tmp
        fake = FakeClaudeAPI()
        fake_runner, fake_url = await serve(fake.app)
        env = {
            "ANTHROPIC_BASE_URL": fake_url,
            "ANTHROPIC_API_KEY": "sk-fake",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
        }
        config = structure({"sdk": {"cli_path": cli, "cwd": tmp, "env": env}})
        proxy_runner, url = await serve(create_app(config))
        rows: dict[str, list[float]] = {
            "cold": [],
            "first": [],
            "warm": [],
            "cold, first text": [],
            "warm, first text": [],
        }
        try:
            async with aiohttp.ClientSession() as http:
                await one(http, url + "/claude/v1/messages", "warm-up", False)  # page the binary in
                for i in range(requests):
                    rows["cold"].append(await one(http, url + "/claude/v1/messages", f"cold {i}", False))
                    rows["cold, first text"].append(await one(http, url + "/claude/v1/messages", f"c {i}", True))
                    session = f"{url}/claude/bench-{i}/v1/messages"
                    rows["first"].append(await one(http, session, "first turn", False))
                    rows["warm"].append(await one(http, session, "second turn", False))
                    rows["warm, first text"].append(await one(http, session, "third turn", True))
        finally:
            await proxy_runner.cleanup()
            await fake_runner.cleanup()
    print(f"Claude Code {cli}, {requests} requests per row, latency in ms\n")
    print("| row | n | min | p50 | max |\n|---|---|---|---|---|")
    for name, samples in rows.items():
        print(row(name, samples))
    saved = statistics.median(rows["cold"]) - statistics.median(rows["warm"])
    print(f"\nwarm session saves {saved * 1000:.0f} ms per request at the median")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10)
    asyncio.run(main(parser.parse_args().requests))
