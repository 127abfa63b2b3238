"""Hostile requests against the real server: nothing a client sends makes ccproxy fail (issue 11).

Hypothesis builds requests for every endpoint, in both dialects: bodies that are almost right,
arbitrary JSON, JSON nested past every limit, random bytes; gzip, deflate, br or a bogus
coding; headers with bytes that are not UTF-8, wrong keys, unknown providers and accounts;
and raw framing no HTTP library would send (bad or doubled Content-Length, broken chunks, no
Host, 64 KiB headers, garbage request lines, bodies cut short). Each goes over a raw socket to
the proxy as `ccproxy serve` runs it (framing.ProxyRunner) in front of a fake provider that
answers every well-formed call with a recorded success.

The oracle, for every request: no 5xx from ccproxy (the provider here never fails; SDK mode's
"no Claude Code CLI" 503 is its provider's answer), every error body JSON in the dialect of the
endpoint asked for, and no ERROR record or traceback in the log. CI runs a fixed sequence of
examples (tests/conftest.py loads hypothesis' derandomized profile when CI is set).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings

from tests.edge import Answer, LogTrap, exchange, parse_answer, serving, trapped_logs
from tests.fakes import recorded, sse_events
from tests.hostile_requests import KEY, MUTATIONS, Plan, plans, render
from tests.specs import validator

EXAMPLES = 300


class FuzzProvider:
    """Answers each upstream call with a recorded success of its kind, streamed when asked."""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            doc = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            doc = {}
        stream = isinstance(doc, dict) and doc.get("stream") is True
        if request.path.endswith("/count_tokens"):
            return web.Response(body=recorded("anthropic/count_tokens_response.json"), content_type="application/json")
        if request.path.endswith("/chat/completions"):
            events, whole = "openai/stream_text_with_usage.sse", "openai/completion_parallel_tool_calls.json"
        else:
            events, whole = "anthropic/stream_text.sse", "anthropic/message_tool_use.json"
        if not stream:
            return web.Response(body=recorded(whole), content_type="application/json")
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for event in sse_events(events):
            await response.write(event)
        await response.write_eof()
        return response


# -- the oracle ------------------------------------------------------------------------------


def error_dialects(body: Any) -> set[str]:
    """Which dialects' error shape `body` has."""
    found = set()
    if isinstance(body, dict) and not list(
        validator("openai", "ErrorResponse", nullable_as_union=True).iter_errors(body)
    ):
        found.add("openai")
    error = body.get("error") if isinstance(body, dict) else None
    if (
        isinstance(body, dict)
        and body.get("type") == "error"
        and isinstance(error, dict)
        and isinstance(error.get("type"), str)
        and isinstance(error.get("message"), str)
    ):
        found.add("anthropic")
    return found


def problems(plan: Plan, raw: bytes, half_closed: bool) -> Iterator[str]:
    if not raw:
        if not half_closed:  # a client that gave up may get nothing; any other gets an answer
            yield "no answer"
        return
    answer: Answer = parse_answer(raw)
    if answer.status >= 500 and not (answer.status == 503 and b"Claude Code" in answer.body):
        yield f"HTTP {answer.status} from ccproxy: {answer.body[:300]!r}"
    if answer.status < 400 or plan.method == "HEAD":
        return
    if not answer.headers.get("content-type", "").startswith("application/json"):
        yield f"HTTP {answer.status} error is {answer.headers.get('content-type')}: {answer.body[:200]!r}"
        return
    try:
        body = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        yield f"HTTP {answer.status} error body is not JSON: {answer.body[:200]!r}"
        return
    want = "openai" if plan.openai() else "anthropic"
    if plan.mutation in ("garbage-request-line",):
        want = "openai"  # unreadable request line: the neutral body, which has both shapes
    if want not in error_dialects(body):
        yield f"HTTP {answer.status} error is not in the {want} dialect: {body}"


# -- the test --------------------------------------------------------------------------------


def test_no_request_makes_ccproxy_fail(tmp_path: Any) -> None:
    """Hundreds of hostile requests to every endpoint: no 5xx of ccproxy's own, JSON errors in the
    client's dialect, and no ERROR record or traceback in the log."""
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    try:
        with trapped_logs() as logs:
            port = loop.run_until_complete(_start(stack))

            @settings(
                max_examples=EXAMPLES,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                deadline=None,
            )
            @given(plan=plans())
            def one(plan: Plan) -> None:
                data, half_close = render(plan)
                before = len(logs.records)
                raw = loop.run_until_complete(exchange(port, data, half_close=half_close))
                found = list(problems(plan, raw, half_close))
                found += [f"log: {line}" for line in _new_tracebacks(logs, before)]
                assert not found, (plan, found)

            one()
    finally:
        loop.run_until_complete(stack.aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _new_tracebacks(logs: LogTrap, before: int) -> list[str]:
    fresh = LogTrap()
    fresh.records = logs.records[before:]
    return fresh.tracebacks()


async def _start(stack: AsyncExitStack) -> int:
    fake = web.Application()
    fake.router.add_route("*", "/{tail:.*}", FuzzProvider().handle)
    runner = web.AppRunner(fake, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    upstream = f"http://127.0.0.1:{runner.addresses[0][1]}"
    config = {
        "apikey": KEY,
        "providers": [
            {"name": "anthropic", "kind": "anthropic", "api_base_url": upstream, "api_key": "sk-up"},
            {"name": "openai", "kind": "openai", "api_base_url": upstream + "/v1", "api_key": "sk-up"},
        ],
        "routes": {
            "gpt-4.1": {"provider": "openai", "model": "gpt-4.1"},
            "alias": {"provider": "anthropic", "model": "claude-sonnet-4-6"},
            "to-openai": {"provider": "openai", "model": "gpt-4.1"},
        },
        "sdk": {"cli_path": "/nonexistent/claude"},
    }
    return await stack.enter_async_context(serving(config))


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_every_mutation_renders(mutation: str) -> None:
    """Each framing mutation the fuzz can pick produces request bytes (so none is silently dead)."""
    plan = Plan("POST", "/v1/messages", {}, b"{}", "", "good", False, mutation)
    data, _ = render(plan)
    assert data.endswith(b"\r\n\r\n{}") or b"0\r\n\r\n" in data or mutation in ("cut-short",)
