"""Metrics, request ids, the access log, the raw HTTP log and `ccproxy usage`, through the real server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import orjson
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from ccproxy_core.cli import usage as usage_cmd
from ccproxy_core.config.model import structure
from ccproxy_core.server.app import _JsonFormatter, create_app
from tests.fakes import FakeUpstream, Reply, Stream, sse_events

MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
KEY = "sk-proxy-observability-1"
PROVIDER_KEY = "sk-ant-provider-secret-0123456789"
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [{"type": "text", "text": "Hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 5, "output_tokens": 3},
}

Start = Callable[..., Awaitable[str]]


@pytest.fixture
async def start(aiohttp_server: Any, fake: FakeUpstream, tmp_path: Path) -> Start:
    async def go(**extra: Any) -> str:
        config = structure(
            {
                "providers": [
                    {"name": "claude", "kind": "anthropic", "api_base_url": fake.url, "api_keys": [PROVIDER_KEY]}
                ],
                "routes": {"default": {"provider": "claude", "model": MODEL}},
                "usage": {"path": str(tmp_path / "usage.sqlite3")},
                **extra,
            }
        )
        server: TestServer = await aiohttp_server(create_app(config))
        return str(server.make_url("")).rstrip("/")

    return go


def samples(text: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append(s)
    return out


async def fetch(url: str, **kw: Any) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as s, s.request(kw.pop("method", "GET"), url, **kw) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()


async def test_metrics_parse_and_count_the_requests_made(start: Start, fake: FakeUpstream) -> None:
    """/metrics parses with prometheus_client's parser; requests, durations and streams match what was sent."""
    proxy = await start()
    fake.default = Reply(body=orjson.dumps(MESSAGE))
    client = anthropic.AsyncAnthropic(base_url=proxy, api_key="x", max_retries=0)
    for _ in range(3):
        await client.messages.create(**BODY)  # type: ignore[call-overload]
    fake.default = Stream(sse_events("anthropic/stream_text.sse"))
    async with client.messages.stream(**BODY) as stream:  # type: ignore[arg-type]
        await stream.get_final_message()
    await fetch(f"{proxy}/v1/messages", method="POST", data=b"not json")
    status, headers, body = await fetch(f"{proxy}/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    s = samples(body.decode())
    by_status: dict[str, float] = {}
    for sample in s["ccproxy_requests_total"]:
        assert sample.labels["endpoint"] == "/v1/messages"
        by_status[sample.labels["status"]] = by_status.get(sample.labels["status"], 0) + sample.value
    assert by_status == {"200": 4.0, "400": 1.0}
    assert sum(x.value for x in s["ccproxy_request_duration_seconds_count"]) == 5.0
    assert sum(x.value for x in s["ccproxy_time_to_first_byte_seconds_count"]) == 5.0
    assert [x.value for x in s["ccproxy_streams_in_flight"]] == [0.0]
    assert {x.labels["state"]: x.value for x in s["ccproxy_credential_state"]}["available"] == 1.0
    assert [x.value for x in s["ccproxy_breaker_open"]] == [0.0]
    # /metrics, /health and the like are not proxied requests
    await fetch(f"{proxy}/health")
    again = samples((await fetch(f"{proxy}/metrics"))[2].decode())
    assert sum(x.value for x in again["ccproxy_requests_total"]) == 5.0


async def test_every_response_carries_a_request_id(start: Start) -> None:
    """/health, an error and an unknown path each carry their own x-request-id."""
    proxy = await start()
    ids = set()
    for method, path in (("GET", "/health"), ("POST", "/v1/messages"), ("GET", "/nowhere"), ("GET", "/dashboard")):
        _, headers, _ = await fetch(f"{proxy}{path}", method=method)
        assert headers["x-request-id"].startswith("req_")
        ids.add(headers["x-request-id"])
    assert len(ids) == 4


async def test_metrics_need_the_key_unless_public(start: Start) -> None:
    """With apikey set /metrics needs it like every endpoint but /health; metrics.public opens it."""
    closed = await start(apikey=KEY)
    assert (await fetch(f"{closed}/metrics"))[0] == 401
    assert (await fetch(f"{closed}/metrics", headers={"x-api-key": KEY}))[0] == 200
    assert (await fetch(f"{closed}/usage"))[0] == 401
    assert (await fetch(f"{closed}/dashboard"))[0] == 200  # the page holds no data; it asks for the key
    public = await start(apikey=KEY, metrics={"public": True})
    assert (await fetch(f"{public}/metrics"))[0] == 200
    assert (await fetch(f"{public}/usage"))[0] == 401


async def test_access_log_has_one_line_per_request(
    start: Start, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """One access-log line per proxied request, with its id, status, latency and structured fields."""
    proxy = await start()
    fake.default = Reply(body=orjson.dumps(MESSAGE))
    with caplog.at_level(logging.INFO, logger="ccproxy.access"):
        _, headers, _ = await fetch(f"{proxy}/v1/messages", method="POST", json=BODY)
    lines = [r for r in caplog.records if r.name == "ccproxy.access"]
    assert len(lines) == 1
    record = lines[0]
    assert record.getMessage().startswith(f"{headers['x-request-id']} POST /v1/messages 200 client=anonymous")
    assert "latency=" in record.getMessage()
    as_json = orjson.loads(_JsonFormatter().format(record))
    assert as_json["request_id"] == headers["x-request-id"] and as_json["status"] == 200
    assert {"latency_ms", "ttfb_ms", "input_tokens", "provider", "credential"} <= set(as_json)


async def test_raw_http_log_masks_every_configured_secret(start: Start, fake: FakeUpstream, tmp_path: Path) -> None:
    """The raw log has the request and the answer, with the proxy key and provider keys masked."""
    raw_dir = tmp_path / "raw"
    proxy = await start(apikey=KEY, log={"raw_http_dir": str(raw_dir)})
    fake.default = Reply(body=orjson.dumps({**MESSAGE, "echo": f"key was {PROVIDER_KEY}"}))
    status, headers, _ = await fetch(
        f"{proxy}/v1/messages", method="POST", json=BODY, headers={"x-api-key": KEY, "authorization": f"Bearer {KEY}"}
    )
    assert status == 200
    text = ""
    for _ in range(100):  # written by the log's own thread
        text = (raw_dir / "http.log").read_text() if (raw_dir / "http.log").exists() else ""
        if "echo" in text:
            break
        await asyncio.sleep(0.02)
    assert headers["x-request-id"] in text and "> POST /v1/messages" in text and "< 200" in text
    assert KEY not in text and PROVIDER_KEY not in text
    assert "key was sk-a…6789" in text  # a secret echoed in a body is masked too


async def test_ccproxy_usage_reads_the_running_server(start: Start, fake: FakeUpstream) -> None:
    """`ccproxy usage` asks the running server; its table shows the requests made."""
    proxy = await start(apikey=KEY)
    fake.default = Reply(body=orjson.dumps(MESSAGE))
    for _ in range(2):
        await fetch(f"{proxy}/v1/messages", method="POST", json=BODY, headers={"x-api-key": KEY})
    doc = await asyncio.to_thread(usage_cmd.from_server, proxy, KEY, "1h", "model")
    assert doc is not None and doc["totals"]["requests"] == 2
    table = usage_cmd.render(doc, "server").splitlines()
    assert table[1].split()[0] == "MODEL" and table[-1].split()[:2] == ["TOTAL", "2"]
    with pytest.raises(usage_cmd.UsageError, match="refused: since"):
        await asyncio.to_thread(usage_cmd.from_server, proxy, KEY, "soon", "model")


async def test_metrics_carry_tokens_attempts_and_header_utilization(start: Start, fake: FakeUpstream) -> None:
    """Tokens as the provider reported them, one attempt per upstream call, and the token window's use."""
    proxy = await start()
    fake.default = Reply(
        body=orjson.dumps(MESSAGE),
        headers={"anthropic-ratelimit-tokens-limit": "1000", "anthropic-ratelimit-tokens-remaining": "400"},
    )
    await fetch(f"{proxy}/v1/messages", method="POST", json=BODY)
    s = samples((await fetch(f"{proxy}/metrics"))[2].decode())
    tokens = {x.labels["type"]: x.value for x in s["ccproxy_tokens_total"]}
    assert tokens == {"input": 5.0, "output": 3.0, "cache_read": 0.0, "cache_creation": 0.0}
    assert all(x.labels["provider"] == "claude" and x.labels["model"] == MODEL for x in s["ccproxy_tokens_total"])
    assert [(x.labels["credential"], x.labels["outcome"], x.value) for x in s["ccproxy_upstream_attempts_total"]] == [
        ("key-1", "ok", 1.0)
    ]
    util = {x.labels["window"]: x.value for x in s["ccproxy_credential_utilization_ratio"]}
    assert util["tokens"] == 0.6
    assert sum(x.value for x in s["ccproxy_cost_usd_total"]) > 0
