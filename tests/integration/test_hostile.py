"""Issue 11, items 12-15: no input crashes the proxy, each through the real server and its HTTP protocol.

12. JSON nested past what orjson re-encodes is refused at read time, naming the limit.
13. Header bytes that are not UTF-8 are refused by name; error answers escape what they echo.
14. (test_framing.py)
15. The proxy key is checked before a body is read or inflated; inflation stops at the body limit.
"""

from __future__ import annotations

import gzip
import logging
import time
import zlib
from typing import Any

import anthropic
import openai
import orjson
import pytest

from ccproxy_core.core.inbound import MAX_JSON_DEPTH
from tests.edge import (
    MESSAGES,
    assert_anthropic_error,
    assert_openai_error,
    config,
    exchange,
    parse_answer,
    request_bytes,
    serving,
    trapped_logs,
)
from tests.fakes import FakeUpstream, json_reply

BODY = orjson.dumps(MESSAGES)
CHAT = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}


def deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def deep_json(levels: int) -> bytes:
    """JSON text nested `levels` deep (orjson will not write past 254 levels itself)."""
    return b"[" * levels + b'"leaf"' + b"]" * levels


def with_deep_field(body: dict[str, Any], levels: int) -> bytes:
    return orjson.dumps(body)[:-1] + b',"deep":' + deep_json(levels) + b"}"


# -- 12. deep JSON ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", {**MESSAGES, "model": "alias"}),  # passthrough with a route: re-encoded
        ("/v1/messages", {**MESSAGES, "model": "to-openai"}),  # translated to Chat Completions
        ("/v1/chat/completions", CHAT),  # chat passthrough, model rewritten
        ("/v1/messages/count_tokens", {**MESSAGES, "model": "to-openai"}),  # counted locally
    ],
)
async def test_json_nested_past_the_limit_is_refused_naming_it(
    fake: FakeUpstream, path: str, body: dict[str, Any]
) -> None:
    """A body nested 300 levels deep gets a 400 that names the limit, on every path that re-encodes."""
    payload = with_deep_field({**body, "metadata": {"user_id": "u"}}, 300)
    with trapped_logs() as logs:
        async with serving(config(fake)) as port:
            answer = parse_answer(await exchange(port, request_bytes("POST", path, payload)))
    assert answer.status == 400
    assert f"more than {MAX_JSON_DEPTH} levels" in answer.body.decode()
    if path.endswith("/chat/completions"):
        assert_openai_error(answer.json())
    else:
        assert_anthropic_error(answer.json(), "invalid_request_error")
    assert not fake.requests
    assert logs.tracebacks() == []


async def test_json_at_the_limit_is_served(fake: FakeUpstream) -> None:
    """A body exactly at the depth limit goes through translation and reaches the provider."""
    fake.default = json_reply("openai/completion_parallel_tool_calls.json")
    nested = {**MESSAGES, "model": "to-openai", "metadata": {"user_id": "u"}}
    nested["messages"] = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    payload = orjson.dumps(nested)
    # messages[0].content[0] is 4 levels down; a tool schema takes the rest of the budget.
    nested["tools"] = [{"name": "t", "input_schema": {"type": "object", "properties": {"x": deep(MAX_JSON_DEPTH - 5)}}}]
    payload = orjson.dumps(nested)
    async with serving(config(fake)) as port:
        answer = parse_answer(await exchange(port, request_bytes("POST", "/v1/messages", payload)))
    assert answer.status == 200, answer.body
    assert len(fake.requests) == 1


async def test_deep_tool_arguments_from_a_chat_client_are_passed_as_text(fake: FakeUpstream) -> None:
    """Tool-call arguments that parse too deep are kept as their text, not a 500."""
    fake.default = json_reply("anthropic/message_tool_use.json")
    args = '{"a":' + deep_json(400).decode() + "}"
    body = {
        "model": "alias",
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": args}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ],
    }
    with trapped_logs() as logs:
        async with serving(config(fake)) as port:
            answer = parse_answer(
                await exchange(port, request_bytes("POST", "/v1/chat/completions", orjson.dumps(body)))
            )
    assert answer.status == 200, answer.body
    sent = fake.requests[-1].json()
    assert sent["messages"][1]["content"][0]["input"] == {"raw": args}
    assert logs.tracebacks() == []


# -- 13. header bytes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "apikey"),
    [(b"X-Account-Name: acc\xff\xfe", ""), (b"x-api-key: k\xe9y", "secret"), (b"Authorization: Bearer \xc3(", "")],
)
async def test_header_bytes_that_are_not_utf8_are_refused_by_name(
    fake: FakeUpstream, header: bytes, apikey: str
) -> None:
    """A non-UTF-8 header value is a 400 naming the header, never a 500, with or without a proxy key."""
    name = header.split(b":")[0].decode()
    raw = request_bytes("POST", "/v1/messages", orjson.dumps(MESSAGES)).replace(
        b"Host: 127.0.0.1\r\n", b"Host: 127.0.0.1\r\n" + header + b"\r\n"
    )
    with trapped_logs() as logs:
        async with serving(config(fake, apikey=apikey)) as port:
            answer = parse_answer(await exchange(port, raw))
    assert answer.status == 400
    assert_anthropic_error(answer.json(), "invalid_request_error")
    assert f"header {name}" in answer.json()["error"]["message"]
    assert logs.tracebacks() == []


async def test_a_non_ascii_proxy_key_is_a_clean_401(fake: FakeUpstream) -> None:
    """A UTF-8 but wrong (non-ASCII) key gets the ordinary 401 through the official SDK."""
    async with serving(config(fake, apikey="secret")) as port:
        client = anthropic.AsyncAnthropic(
            base_url=f"http://127.0.0.1:{port}", api_key="x", default_headers={"x-api-key": "clé"}, max_retries=0
        )
        with pytest.raises(anthropic.AuthenticationError):
            await client.messages.create(**MESSAGES)


async def test_an_error_echoing_client_text_is_escaped_and_its_headers_are_sendable() -> None:
    """The renderer escapes lone surrogates in a message and drops header values no writer can send."""
    from ccproxy_core.core.errors import RateLimited
    from ccproxy_core.server.replies import render_error

    err = RateLimited("no account named 'a\udcff'", retry_after=3, headers={"x-note": "caf\udce9", "x-bad": "a\r\nb"})
    response = render_error(err, openai=False)
    assert orjson.loads(response.body)["error"]["message"] == "no account named 'a\\udcff'"  # type: ignore[arg-type]
    assert response.headers["retry-after"] == "3"
    assert "x-note" not in response.headers and "x-bad" not in response.headers


# -- 15. auth before the body; bounded inflation ---------------------------------------------

BOMB = gzip.compress(b" " * 100_000_000, 9)  # ~100 KB that inflates to 100 MB


async def test_a_gzip_bomb_without_the_key_is_refused_without_inflating(fake: FakeUpstream) -> None:
    """No key: the answer is a 401 and the bomb is never inflated (CPU far below one inflation)."""
    start = time.process_time()
    zlib.decompress(BOMB, 16 + zlib.MAX_WBITS)
    one_inflation = time.process_time() - start
    raw = request_bytes("POST", "/v1/messages", BOMB, {"Content-Encoding": "gzip"})
    async with serving(config(fake, apikey="secret")) as port:
        start = time.process_time()
        answer = parse_answer(await exchange(port, raw))
        spent = time.process_time() - start
    assert answer.status == 401
    assert_anthropic_error(answer.json(), "authentication_error")
    assert spent < one_inflation / 4, (spent, one_inflation)


async def test_a_gzip_bomb_with_the_key_stops_at_the_body_limit(fake: FakeUpstream) -> None:
    """With the key, inflation stops as soon as the inflated size passes limits.max_request_body_size: 413."""
    limit = 1_000_000
    raw = request_bytes("POST", "/v1/messages", BOMB, {"Content-Encoding": "gzip", "x-api-key": "secret"})
    with trapped_logs() as logs:
        async with serving(config(fake, apikey="secret", limits={"max_request_body_size": limit})) as port:
            answer = parse_answer(await exchange(port, raw))
    assert answer.status == 413
    assert_anthropic_error(answer.json(), "request_too_large")
    assert "inflates to more than 1000000 bytes" in answer.json()["error"]["message"]
    assert logs.tracebacks() == []
    assert not fake.requests


@pytest.mark.parametrize("coding", ["gzip", "deflate", "x-gzip"])
async def test_a_compressed_body_with_the_key_is_served_inflated(fake: FakeUpstream, coding: str) -> None:
    """gzip and deflate bodies are inflated, served, and reach the provider as plain JSON."""
    fake.default = json_reply("anthropic/message_tool_use.json")
    packed = gzip.compress(BODY) if "gzip" in coding else zlib.compress(BODY)
    raw = request_bytes("POST", "/v1/messages", packed, {"Content-Encoding": coding, "x-api-key": "secret"})
    async with serving(config(fake, apikey="secret")) as port:
        answer = parse_answer(await exchange(port, raw))
    assert answer.status == 200, answer.body
    assert fake.requests[-1].json() == MESSAGES
    assert "content-encoding" not in fake.requests[-1].headers


async def test_expect_continue_without_the_key_is_refused_before_the_body(fake: FakeUpstream) -> None:
    """A client waiting for `100 Continue` gets its 401 (or 413 past the limit) instead, and never sends the body."""
    head = (
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n"
        b"Content-Encoding: gzip\r\n\r\n"
    )
    async with serving(config(fake, apikey="secret", limits={"max_request_body_size": 1_000_000})) as port:
        raw = await exchange(port, head)
        answer = parse_answer(raw)
        too_big = parse_answer(await exchange(port, head.replace(b"Host: x\r\n", b"Host: x\r\nx-api-key: secret\r\n")))
    assert answer.status == 401
    assert not raw.startswith(b"HTTP/1.1 100"), "the client was told to send its body"
    assert too_big.status == 413


async def test_expect_continue_with_the_key_is_served(fake: FakeUpstream) -> None:
    """With the key, the client is told to continue and its request is served."""
    fake.default = json_reply("anthropic/message_tool_use.json")
    async with serving(config(fake, apikey="secret")) as port:
        client = anthropic.AsyncAnthropic(
            base_url=f"http://127.0.0.1:{port}", api_key="secret", default_headers={"Expect": "100-continue"}
        )
        message = await client.messages.create(**MESSAGES)
    assert message.content


async def test_sdk_clients_are_served_through_the_production_protocol(fake: FakeUpstream) -> None:
    """Both official SDKs work against the server as `ccproxy serve` runs it."""
    fake.default = json_reply("anthropic/message_tool_use.json")
    async with serving(config(fake)) as port:
        base = f"http://127.0.0.1:{port}"
        message = await anthropic.AsyncAnthropic(base_url=base, api_key="x", max_retries=0).messages.create(**MESSAGES)
        fake.default = json_reply("openai/completion_parallel_tool_calls.json")
        chat = await openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0).chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hi"}]
        )
    assert message.content and chat.choices


def test_the_log_trap_sees_ccproxy_records() -> None:
    """The log trap used above sees a WARNING from the ccproxy logger (so empty lists mean something)."""
    with trapped_logs() as logs:
        logging.getLogger("ccproxy").warning("probe")
        logging.getLogger("aiohttp.server").error("probe")
    assert [r.getMessage() for r in logs.warnings()] == ["probe"]
    assert logs.tracebacks() == ["ERROR aiohttp.server: probe"]
