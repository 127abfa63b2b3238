"""Issue 3, end to end: the official Anthropic SDK through the proxy to an OpenAI-compatible provider.

The fake provider replays real OpenAI recordings; what the SDK gets must be what each recording
means in Anthropic terms, every stream must keep the Messages grammar Claude Code relies on,
and what reached the provider must be a valid Chat Completions request.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest

from tests.conftest import ProxyFactory
from tests.fakes import (
    FIXTURES,
    RECORDED,
    FakeUpstream,
    Received,
    Reply,
    Stream,
    json_reply,
    recorded,
    recorded_headers,
    recorded_json,
    sse_events,
)
from tests.grammar import assert_anthropic_stream_grammar
from tests.specs import keys_anywhere, validator

JSON = dict[str, Any]

STREAMS = sorted(p.name for p in (RECORDED / "openai").glob("stream_*.sse"))
COMPLETIONS = sorted(
    p.name for p in (RECORDED / "openai").glob("completion_*.json") if not p.name.endswith(".request.json")
)
ROUTED_MODEL = "gpt-4.1"
CLIENT_MODEL = "claude-opus-4-8"

# Keys only the Messages API knows; none may reach a Chat Completions provider.
ANTHROPIC_ONLY = {
    "system",
    "stop_sequences",
    "top_k",
    "thinking",
    "metadata",
    "context_management",
    "output_config",
    "container",
    "mcp_servers",
    "service_tier",
    "anthropic_version",
    "cache_control",
    "input_schema",
    "is_error",
    "tool_use_id",
    "media_type",
    "tool_result",
    "tool_use",
}
# What real OpenAI answered with: the fake sends its headers too.
OPENAI_STREAM_HEADERS = {
    k: v
    for k, v in recorded_headers("openai/headers_200_chat_stream.json").items()
    if k.lower() not in {"content-type", "transfer-encoding", "connection"}
}


def _schema(name: str, description: str, **properties: str) -> JSON:
    return {
        "name": name,
        "description": description,
        "input_schema": {
            "type": "object",
            "properties": {k: {"type": t} for k, t in properties.items()},
            "required": list(properties),
        },
    }


# The tools the recordings call (plus cache_control, which only Anthropic understands).
TOOLS: list[JSON] = [
    _schema("get_weather", "Weather in a city", city="string"),
    _schema("get_product_name", "The product's name"),
    _schema("get_capital", "Capital of a country", country="string"),
    _schema("delete_file", "Delete a file", path="string"),
    {**_schema("create_file", "Create a file", path="string"), "cache_control": {"type": "ephemeral"}},
]
REQUEST: JSON = {
    "model": CLIENT_MODEL,
    "max_tokens": 512,
    "system": [{"type": "text", "text": "Answer briefly.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is the capital of the UK?", "cache_control": {"type": "ephemeral"}}
            ],
        }
    ],
    "tools": TOOLS,
    "metadata": {"user_id": "user-1"},
    "extra_body": {"top_k": 5, "output_config": {"effort": "high"}},
}
FINISH_TO_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def config(fake: FakeUpstream, **extra: Any) -> JSON:
    return {
        "providers": [
            {"name": "openai", "kind": "openai", "api_base_url": fake.url + "/v1", "api_key": "sk-up", **extra}
        ],
        "routes": {"default": {"provider": "openai", "model": ROUTED_MODEL}},
    }


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, fake: FakeUpstream) -> str:
    """The proxy with one OpenAI provider in front of `fake`."""
    return await make_proxy(config(fake))


def sdk(base_url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base_url, api_key="x", max_retries=0)


def openai_stream(name: str, **kw: Any) -> Stream:
    return Stream(sse_events(f"openai/{name}"), headers=OPENAI_STREAM_HEADERS, **kw)


# -- what a recording means -----------------------------------------------------------------


def _meaning(text: str, calls: list[JSON], finish: str | None, usage: JSON) -> JSON:
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {
        "text": text,
        "tools": [(c["id"], c["name"], orjson.loads(c["arguments"] or "{}")) for c in calls],
        "stop_reason": FINISH_TO_STOP[finish or "stop"],
        "usage": {
            "input_tokens": usage["prompt_tokens"] - cached,
            "output_tokens": usage["completion_tokens"],
            "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": 0,
        },
    }


def stream_meaning(name: str) -> JSON:
    """The answer an OpenAI stream recording adds up to, in Anthropic terms."""
    text: list[str] = []
    calls: dict[int, JSON] = {}
    finish: str | None = None
    usage: JSON = {}
    for event in sse_events(f"openai/{name}"):
        data = event.strip().removeprefix(b"data:").strip()
        if data == b"[DONE]":
            continue
        chunk = orjson.loads(data)
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text.append(delta.get("content") or "")
            for fragment in delta.get("tool_calls") or []:
                call = calls.setdefault(fragment["index"], {"id": None, "name": "", "arguments": ""})
                call["id"] = call["id"] or fragment.get("id")
                function = fragment.get("function") or {}
                call["name"] += function.get("name") or ""
                call["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return _meaning("".join(text), [calls[i] for i in sorted(calls)], finish, usage)


def completion_meaning(body: JSON) -> JSON:
    """The answer a `chat.completion` means, in Anthropic terms."""
    choice = body["choices"][0]
    message = choice["message"]
    calls = [{"id": c["id"], **c["function"]} for c in message.get("tool_calls") or []]
    return _meaning(message.get("content") or "", calls, choice["finish_reason"], body["usage"])


def summary(message: JSON) -> JSON:
    """The same view of an Anthropic Message (a dict, from the SDK or the grammar)."""
    content = message["content"]
    usage = message["usage"]
    return {
        "text": "".join(b["text"] for b in content if b["type"] == "text"),
        "tools": [(b["id"], b["name"], b["input"]) for b in content if b["type"] == "tool_use"],
        "stop_reason": message["stop_reason"],
        "usage": {
            k: usage[k]
            for k in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
        },
    }


# -- what reached the provider -------------------------------------------------------------


def assert_chat_request(received: Received, *, stream: bool) -> JSON:
    """The provider got a spec-valid Chat Completions request for the routed model; returns its body."""
    assert received.method == "POST"
    assert received.path == "/v1/chat/completions"
    assert received.headers["authorization"] == "Bearer sk-up"
    assert "x-api-key" not in received.headers and "anthropic-version" not in received.headers
    body = received.json()
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}"
        for e in validator("openai", "CreateChatCompletionRequest").iter_errors(body)
    ]
    assert errors == []
    assert body["model"] == ROUTED_MODEL
    assert not keys_anywhere(body, schemas_under="parameters") & ANTHROPIC_ONLY
    if stream:
        assert body["stream"] is True
        assert body["stream_options"]["include_usage"] is True
    else:
        assert body.get("stream") in (None, False)
        assert "stream_options" not in body
    return body


# -- reading the proxy's own SSE --------------------------------------------------------------


def parse_anthropic_sse(raw: bytes) -> list[tuple[str, JSON]]:
    """`event:`/`data:` pairs as sent on the wire (ccproxy writes one line of each per event)."""
    events = []
    for part in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        fields = dict(line.split(b": ", 1) for line in part.split(b"\n") if b": " in line)
        if b"data" in fields:
            events.append((fields.get(b"event", b"").decode(), orjson.loads(fields[b"data"])))
    return events


async def post_raw(
    url: str, body: JSON | bytes, path: str = "/v1/messages", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with (
        aiohttp.ClientSession() as s,
        s.post(url + path, data=data, headers={"content-type": "application/json", **(headers or {})}) as r,
    ):
        return r.status, await r.read()


async def raw_events(client: anthropic.AsyncAnthropic, **request: Any) -> list[tuple[str, JSON]]:
    """Every event of `messages.create(stream=True)`, as the SDK parsed it."""
    stream = await client.messages.create(**request, stream=True)
    return [(event.type, event.to_dict()) async for event in stream]


# -- answers: every recording ------------------------------------------------------------------


@pytest.mark.parametrize("recording", STREAMS)
async def test_every_recorded_stream_reaches_the_sdk_as_what_it_means(
    proxy: str, fake: FakeUpstream, recording: str
) -> None:
    """Raw events keep the Messages grammar, and both they and `messages.stream` add up to the recording."""
    fake.default = openai_stream(recording)
    expected = stream_meaning(recording)

    events = await raw_events(sdk(proxy), **REQUEST)
    built = assert_anthropic_stream_grammar(events)
    assert summary(built) == expected
    assert built["model"] == CLIENT_MODEL
    assert_chat_request(fake.requests[-1], stream=True)

    async with sdk(proxy).messages.stream(**REQUEST) as stream:
        final = await stream.get_final_message()
    assert summary(final.to_dict()) == expected
    assert final.model == CLIENT_MODEL
    assert re.fullmatch(r"msg_[0-9a-zA-Z]+", final.id)
    assert_chat_request(fake.requests[-1], stream=True)


@pytest.mark.parametrize("recording", COMPLETIONS)
async def test_every_recorded_completion_reaches_the_sdk_as_what_it_means(
    proxy: str, fake: FakeUpstream, recording: str
) -> None:
    """`messages.create` returns the Message the recorded chat.completion means."""
    fake.default = json_reply(f"openai/{recording}")
    message = await sdk(proxy).messages.create(**REQUEST)
    assert summary(message.to_dict()) == completion_meaning(recorded_json(f"openai/{recording}"))
    assert message.model == CLIENT_MODEL
    assert message.content, "a message always has a block"
    assert_chat_request(fake.requests[-1], stream=False)


async def test_a_tool_use_round_trip_sends_tool_messages_with_the_call_ids(proxy: str, fake: FakeUpstream) -> None:
    """Parallel tool calls come back as tool_use blocks; their results go upstream as `tool` messages."""
    fake.queue(openai_stream("stream_parallel_tool_calls.sse"), openai_stream("stream_text_with_usage.sse"))
    client = sdk(proxy)
    async with client.messages.stream(**REQUEST) as stream:
        first = await stream.get_final_message()
    calls = [b for b in first.content if b.type == "tool_use"]
    assert [(c.id, c.name, c.input) for c in calls] == [
        ("call_NS4iQj14cDFwc0BnrKqDHavt", "get_weather", {"city": "Mexico City"}),
        (calls[1].id, "get_product_name", {}),
    ]
    assert first.stop_reason == "tool_use"

    results = {calls[0].id: "Sunny, 24 C", calls[1].id: "Pelican Pro"}
    follow_up = {
        **REQUEST,
        "messages": [
            *REQUEST["messages"],
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.input} for c in calls],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": i, "content": r, "cache_control": {"type": "ephemeral"}}
                    for i, r in results.items()
                ],
            },
        ],
    }
    async with client.messages.stream(**follow_up) as stream:
        second = await stream.get_final_message()
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text" and second.content[0].text.startswith("The capital")

    sent = assert_chat_request(fake.requests[-1], stream=True)["messages"]
    assistant = next(m for m in sent if m["role"] == "assistant")
    assert [
        (c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"])) for c in assistant["tool_calls"]
    ] == [(c.id, c.name, c.input) for c in calls]
    after = sent[sent.index(assistant) + 1 :]
    assert [(m["role"], m["tool_call_id"], m["content"]) for m in after] == [("tool", i, r) for i, r in results.items()]


async def test_a_real_claude_code_request_goes_through_and_validates_upstream(proxy: str, fake: FakeUpstream) -> None:
    """Claude Code's Bash follow-up (24 tools, mid-conversation system, betas) becomes a valid Chat request."""
    capture = orjson.loads((FIXTURES / "claude-code" / "tool-bash-echo-0002.json").read_bytes())
    skip = {"host", "content-length", "connection", "accept-encoding"}
    headers = {k: v for k, v in capture["headers"] if k.lower() not in skip}
    fake.default = openai_stream("stream_text_with_usage.sse")
    status, raw = await post_raw(proxy, orjson.dumps(capture["body"]), "/v1/messages?beta=true", headers)
    assert status == 200
    message = assert_anthropic_stream_grammar(parse_anthropic_sse(raw))
    assert summary(message) == stream_meaning("stream_text_with_usage.sse")

    received = fake.requests[-1]
    assert "anthropic-beta" not in received.headers
    body = assert_chat_request(received, stream=True)
    source = capture["body"]
    assert {t["function"]["name"]: t["function"]["parameters"] for t in body["tools"]} == {
        t["name"]: t["input_schema"] for t in source["tools"]
    }
    assert all(len(t["function"]["name"]) <= 64 for t in body["tools"])
    messages = body["messages"]
    assert messages[0]["role"] == "system"
    call = next(m for m in messages if m.get("tool_calls"))["tool_calls"][0]
    assert (call["id"], call["function"]["name"]) == ("toolu_fake_984ad049052942ed", "Bash")
    assert orjson.loads(call["function"]["arguments"]) == {"command": "echo hello", "description": "Print hello"}
    result = next(m for m in messages if m["role"] == "tool")
    assert (result["tool_call_id"], result["content"]) == ("toolu_fake_984ad049052942ed", "hello")


LONG_NAME = "mcp__github_enterprise_server__create_or_update_repository_file_contents_signed"
ODD_NAME = "mcp.server:read.file"


async def test_long_and_odd_tool_names_are_shortened_upstream_and_restored_in_the_answer(
    proxy: str, fake: FakeUpstream
) -> None:
    """An MCP name over 64 characters, or with dots, goes upstream safe and comes back as the client's own."""
    assert len(LONG_NAME) > 64
    tools = [_schema(LONG_NAME, "Write a file", path="string"), _schema(ODD_NAME, "Read a file", path="string")]
    client = sdk(proxy)
    request = {**REQUEST, "tools": tools}
    fake.default = json_reply("openai/completion_reasoning_o3_mini.json")
    await client.messages.create(**request)
    upstream = [t["function"]["name"] for t in assert_chat_request(fake.requests[-1], stream=False)["tools"]]
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name) for name in upstream)
    assert len(set(upstream)) == 2 and LONG_NAME not in upstream and ODD_NAME not in upstream
    long_up, odd_up = upstream

    completion = recorded_json("openai/completion_parallel_tool_calls.json")
    for call, name in zip(completion["choices"][0]["message"]["tool_calls"], upstream, strict=True):
        call["function"]["name"] = name
    fake.default = Reply(body=orjson.dumps(completion))
    message = await client.messages.create(**request)
    assert [b.name for b in message.content if b.type == "tool_use"] == [LONG_NAME, ODD_NAME]

    events = [
        e.replace(b'"get_weather"', f'"{long_up}"'.encode()).replace(b'"get_product_name"', f'"{odd_up}"'.encode())
        for e in sse_events("openai/stream_parallel_tool_calls.sse")
    ]
    fake.default = Stream(events)
    streamed = assert_anthropic_stream_grammar(await raw_events(client, **request))
    assert [b["name"] for b in streamed["content"] if b["type"] == "tool_use"] == [LONG_NAME, ODD_NAME]

    first = next(b for b in message.content if b.type == "tool_use")
    fake.default = json_reply("openai/completion_reasoning_o3_mini.json")
    await client.messages.create(
        **{
            **request,
            "tool_choice": {"type": "tool", "name": LONG_NAME},
            "messages": [
                *REQUEST["messages"],
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": first.id, "name": LONG_NAME, "input": first.input}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.id, "content": "done"}]},
            ],
        }
    )
    body = assert_chat_request(fake.requests[-1], stream=False)
    assert body["tool_choice"] == {"type": "function", "function": {"name": long_up}}
    history = next(m for m in body["messages"] if m.get("tool_calls"))
    assert history["tool_calls"][0]["function"]["name"] == long_up


async def test_translated_events_reach_the_client_while_the_provider_is_still_paused(
    proxy: str, fake: FakeUpstream
) -> None:
    """No buffering through translation: message_start and the first text delta arrive before chunk 3 is sent."""
    fake.default = openai_stream("stream_text_with_usage.sse", pause_after=2, pause=1.0)
    stream = await sdk(proxy).messages.create(**REQUEST, stream=True)
    seen: list[str] = []
    async for event in stream:
        seen.append(event.type)
        if event.type == "content_block_delta":
            assert event.delta.type == "text_delta" and event.delta.text == "The"
            break
    assert seen[0] == "message_start"
    assert fake.events_sent == 2, "the client got the first text before the provider sent its third chunk"
    rest = [event.type async for event in stream]
    assert rest[-1] == "message_stop"


# -- errors ----------------------------------------------------------------------------------

SERVER_ERROR = (
    b'{"error":{"message":"The server had an error while processing your request.",'
    b'"type":"server_error","param":null,"code":null}}'
)
OVERLOADED = (
    b'{"error":{"message":"The engine is currently overloaded, please try again later",'
    b'"type":"server_error","param":null,"code":null}}'
)


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize(
    ("reply", "status", "exc", "etype", "says"),
    [
        (
            json_reply("openai/error_429_rate_limit_exceeded.json", 429),
            429,
            anthropic.RateLimitError,
            "rate_limit_error",
            "Request too large for gpt-4o",
        ),
        (
            # ccproxy's own key was refused: a 403 naming the provider and key, never the 401 that
            # would tell Claude Code to log in again.
            json_reply("openai/error_401_invalid_api_key.json", 401, "openai/error_401_invalid_api_key.headers.json"),
            403,
            anthropic.PermissionDeniedError,
            "permission_error",
            "Incorrect API key provided",
        ),
        (
            json_reply("openai/error_404_model_not_found.json", 404),
            404,
            anthropic.NotFoundError,
            "not_found_error",
            "does not exist",
        ),
        (
            json_reply("openai/error_400_unsupported_value.json", 400),
            400,
            anthropic.BadRequestError,
            "invalid_request_error",
            "Unsupported value",
        ),
        (Reply(status=500, body=SERVER_ERROR), 500, anthropic.InternalServerError, "api_error", "server had an error"),
        (Reply(status=503, body=OVERLOADED), 529, anthropic.OverloadedError, "overloaded_error", "overloaded"),
    ],
    ids=["429", "401", "404", "400", "500", "503"],
)
async def test_upstream_errors_become_anthropic_errors(
    proxy: str, fake: FakeUpstream, stream: bool, reply: Reply, status: int, exc: type[Exception], etype: str, says: str
) -> None:
    """An OpenAI error answer reaches the SDK as the matching Anthropic status, exception and error body."""
    fake.default = reply
    with pytest.raises(exc) as info:
        if stream:
            async with sdk(proxy).messages.stream(**REQUEST) as s:
                await s.get_final_message()
        else:
            await sdk(proxy).messages.create(**REQUEST)
    err = info.value
    assert isinstance(err, anthropic.APIStatusError)
    assert err.status_code == status
    assert isinstance(err.body, dict)
    assert err.body["type"] == "error"
    assert err.body["error"]["type"] == etype
    assert says in err.body["error"]["message"]
    assert len(fake.requests) == 1


async def test_a_rate_limit_keeps_the_providers_retry_after(proxy: str, fake: FakeUpstream) -> None:
    """The client is told how long to wait, as the provider said."""
    fake.default = Reply(
        status=429, body=recorded("openai/error_429_rate_limit_exceeded.json"), headers={"retry-after": "20"}
    )
    with pytest.raises(anthropic.RateLimitError) as info:
        await sdk(proxy).messages.create(**REQUEST)
    assert info.value.response.headers["retry-after"] == "20"


async def test_an_in_band_error_mid_stream_becomes_an_error_event(proxy: str, fake: FakeUpstream) -> None:
    """`data: {"error": ...}` after some text ends the Anthropic stream with `event: error`, no message_stop."""
    events = sse_events("openai/stream_text_with_usage.sse")[:3]
    fake.default = Stream([*events, b"data: " + SERVER_ERROR + b"\n\n", *events[3:]])
    status, raw = await post_raw(proxy, {**REQUEST, "stream": True})
    assert status == 200
    parsed = parse_anthropic_sse(raw)
    message = assert_anthropic_stream_grammar(parsed)
    assert [name for name, _ in parsed].count("message_stop") == 0
    assert parsed[-1][0] == "error"
    assert message["error"]["type"] in ("api_error", "overloaded_error")
    assert "server had an error" in message["error"]["message"]
    assert message["content"][0]["text"] == "The capital"
    with pytest.raises(anthropic.APIStatusError):
        async with sdk(proxy).messages.stream(**REQUEST) as s:
            await s.get_final_message()


async def test_a_dropped_stream_ends_with_an_error_event(proxy: str, fake: FakeUpstream) -> None:
    """A provider that cuts the connection midway leaves the client a well-formed stream ending in an error."""
    fake.default = openai_stream("stream_tool_call_with_usage.sse", drop_after=3)
    status, raw = await post_raw(proxy, {**REQUEST, "stream": True})
    assert status == 200
    parsed = parse_anthropic_sse(raw)
    assert_anthropic_stream_grammar(parsed)
    names = [name for name, _ in parsed]
    assert names[0] == "message_start" and names[-1] == "error" and "message_stop" not in names


async def test_a_stream_that_opens_with_an_in_band_error_falls_over_to_the_next_provider(
    make_proxy: ProxyFactory, make_fake: Any
) -> None:
    """`data: {"error": ...}` as the very first chunk means nothing reached the client: the fallback answers."""
    a, b = await make_fake(), await make_fake()
    a.default = Stream([b"data: " + SERVER_ERROR + b"\n\n"])
    b.default = openai_stream("stream_text_with_usage.sse")
    url = await make_proxy(
        {
            "providers": [
                {"name": "a", "kind": "openai", "api_base_url": a.url + "/v1", "api_key": "ka"},
                {"name": "b", "kind": "openai", "api_base_url": b.url + "/v1", "api_key": "kb"},
            ],
            "routes": {"default": {"provider": "a", "model": ROUTED_MODEL}},
            "router": {"fallback": {"default": ["b"]}},
        }
    )
    async with sdk(url).messages.stream(**REQUEST) as stream:
        text = await stream.get_final_text()
    assert text == "The capital of the UK is London."
    assert (len(a.requests), len(b.requests)) == (1, 1)


async def test_a_client_that_hangs_up_cancels_the_translated_stream(proxy: str, fake: FakeUpstream) -> None:
    """Closing the connection mid-stream closes the provider's stream at once, translation or not."""
    fake.default = openai_stream("stream_text_with_usage.sse", stall_after=3)
    async with aiohttp.ClientSession() as s:
        r = await s.post(f"{proxy}/v1/messages", json={**REQUEST, "stream": True})
        assert r.headers["content-type"].startswith("text/event-stream")
        assert (r.headers["cache-control"], r.headers["x-accel-buffering"]) == ("no-cache", "no")
        assert b"message_start" in await r.content.readuntil(b"\n\n")
        r.close()
    await asyncio.wait_for(fake.cancelled.wait(), timeout=5)


# -- count_tokens and models ------------------------------------------------------------------


async def test_count_tokens_for_an_openai_provider_is_answered_locally(proxy: str, fake: FakeUpstream) -> None:
    """count_tokens never reaches an OpenAI provider; the estimate is positive and grows with tools."""
    client = sdk(proxy)
    bare = await client.messages.count_tokens(model=CLIENT_MODEL, messages=REQUEST["messages"])
    with_tools = await client.messages.count_tokens(model=CLIENT_MODEL, messages=REQUEST["messages"], tools=TOOLS)
    assert bare.input_tokens > 0
    assert with_tools.input_tokens > bare.input_tokens
    assert fake.requests == []


async def test_models_list_takes_the_shape_of_the_asking_client(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """With `anthropic-version` the list is Anthropic's; without it, OpenAI's; both SDKs parse theirs."""
    cfg = config(fake, models=[ROUTED_MODEL, "gpt-4o-mini"])
    cfg["routes"][CLIENT_MODEL] = {"provider": "openai", "model": ROUTED_MODEL}
    url = await make_proxy(cfg)
    page = await sdk(url).models.list()
    assert [m.id for m in page.data] == [CLIENT_MODEL, ROUTED_MODEL, "gpt-4o-mini"]
    assert all(m.type == "model" for m in page.data)
    listed = await openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0).models.list()
    assert [(m.id, m.object) for m in listed.data] == [
        (CLIENT_MODEL, "model"),
        (ROUTED_MODEL, "model"),
        ("gpt-4o-mini", "model"),
    ]
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{url}/v1/models", headers={"anthropic-version": "2023-06-01"}) as r:
            anthropic_shape = await r.json()
        async with s.get(f"{url}/v1/models") as r:
            openai_shape = await r.json()
    assert anthropic_shape["has_more"] is False and "object" not in anthropic_shape
    assert openai_shape["object"] == "list" and "has_more" not in openai_shape
    assert fake.requests == []
