"""Issue 3, end to end: the official OpenAI SDK through the proxy, to Anthropic and to OpenAI providers.

In front of an Anthropic provider the fake replays real Anthropic recordings; the SDK must get
what each recording means as Chat Completions (content, tool calls by call index, finish reason,
usage), streams must end in `data: [DONE]`, and the provider must get a valid Messages request.
In front of an OpenAI provider the proxy stays out of the way, byte for byte.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from pydantic import BaseModel

from tests.conftest import ProxyFactory, anthropic_provider
from tests.fakes import (
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

ANTHROPIC_STREAMS = sorted(p.name for p in (RECORDED / "anthropic").glob("*.sse"))
OPENAI_STREAMS = sorted(p.name for p in (RECORDED / "openai").glob("stream_*.sse"))
OPENAI_COMPLETIONS = sorted(
    p.name for p in (RECORDED / "openai").glob("completion_*.json") if not p.name.endswith(".request.json")
)
MODEL = "claude-opus-4-8"
STOP_TO_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
# Keys only Chat Completions knows; none may reach an Anthropic provider.
OPENAI_ONLY = {
    "stream_options",
    "max_completion_tokens",
    "response_format",
    "tool_calls",
    "tool_call_id",
    "n",
    "reasoning_effort",
    "function",
    "parameters",
    "developer",
    "logprobs",
}


def function(name: str, description: str, **properties: str) -> JSON:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": {k: {"type": t} for k, t in properties.items()},
                "required": list(properties),
                "additionalProperties": False,
            },
        },
    }


# The tools the recordings call.
TOOLS = [
    function("get_weather", "Weather at a place", location="string", units="string"),
    function("pelican_name_generator", "A name for a pelican"),
    function("fixed_version", "The fixed version"),
    function(
        "calculate_distance", "Distance between two points", lat1="string", lon1="string", lat2="string", lon2="string"
    ),
]
REQUEST: JSON = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "developer", "content": "Use the tools when they help."},
        {"role": "user", "content": "What is the weather in San Francisco?"},
    ],
    "tools": TOOLS,
}
STREAM_HEADERS = {
    k: v
    for k, v in recorded_headers("anthropic/stream_text.headers.json").items()
    if k.lower() not in {"content-type", "transfer-encoding", "connection"}
}
SYSTEM_TEXTS = ["Answer briefly.", "Use the tools when they help."]


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, fake: FakeUpstream) -> str:
    """The proxy with one Anthropic provider (its own key) in front of `fake`."""
    return await make_proxy({"providers": [anthropic_provider(fake)]})


def anthropic_stream(name: str) -> Stream:
    """A recorded Anthropic stream, with the headers real Anthropic sent with one."""
    return Stream(sse_events(f"anthropic/{name}"), headers=STREAM_HEADERS)


def sdk(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="x", max_retries=0)


# -- what a recording means -------------------------------------------------------------------


def parse_anthropic_sse(raw: bytes) -> list[tuple[str, JSON]]:
    events = []
    for part in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        fields = dict(line.split(b":", 1) for line in part.split(b"\n") if b":" in line)
        if b"data" in fields:
            events.append((fields.get(b"event", b"").strip().decode(), orjson.loads(fields[b"data"])))
    return events


def message_meaning(message: JSON) -> JSON:
    """What an Anthropic Message means to a Chat Completions client.

    A whitespace-only text block before the thinking (adaptive thinking on opus 4.6) carries no
    answer; the proxy drops it by design, so the meaning leaves it out too.
    """
    blocks = message["content"]
    if blocks and blocks[0]["type"] == "text" and not blocks[0]["text"].strip():
        blocks = blocks[1:]
    usage = message["usage"]
    prompt = (
        usage["input_tokens"]
        + (usage.get("cache_read_input_tokens") or 0)
        + (usage.get("cache_creation_input_tokens") or 0)
    )
    return {
        "content": "".join(b["text"] for b in blocks if b["type"] == "text") or None,
        "reasoning": "".join(b["thinking"] for b in blocks if b["type"] == "thinking") or None,
        "tool_calls": [(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"],
        "finish_reason": STOP_TO_FINISH[message["stop_reason"]],
        "usage": (prompt, usage["output_tokens"], prompt + usage["output_tokens"]),
    }


def stream_meaning(name: str) -> JSON:
    return message_meaning(assert_anthropic_stream_grammar(parse_anthropic_sse(recorded(f"anthropic/{name}"))))


def completion_view(completion: JSON) -> JSON:
    """The same view of a chat.completion (a dict from the SDK)."""
    message = completion["choices"][0]["message"]
    usage = completion["usage"]
    return {
        "content": message.get("content") or None,
        "reasoning": message.get("reasoning_content") or None,
        "tool_calls": [
            (c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"]))
            for c in message.get("tool_calls") or []
        ],
        "finish_reason": completion["choices"][0]["finish_reason"],
        "usage": (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]),
    }


def reassemble(chunks: list[JSON]) -> JSON:
    """A chat.completion from stream chunks, checking the tool-call indexes on the way."""
    content: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, JSON] = {}
    finish: str | None = None
    usage: JSON | None = None
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        if chunk.get("usage"):
            assert usage is None, "one usage chunk"
            assert chunk["choices"] == [], "usage comes in its own chunk with no choices"
            usage = chunk["usage"]
        for choice in chunk["choices"]:
            assert finish is None, "nothing after the finish_reason chunk but usage"
            delta = choice["delta"]
            content.append(delta.get("content") or "")
            reasoning.append(delta.get("reasoning_content") or "")
            for fragment in delta.get("tool_calls") or []:
                index = fragment["index"]
                if index not in calls:
                    assert index == len(calls), "tool calls are numbered 0, 1, 2... by call, not by block"
                    assert fragment["id"] and fragment["type"] == "function" and fragment["function"]["name"]
                    calls[index] = {
                        "id": fragment["id"],
                        "type": "function",
                        "function": {"name": fragment["function"]["name"], "arguments": ""},
                    }
                calls[index]["function"]["arguments"] += fragment["function"].get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    assert usage is not None, "include_usage was asked for"
    message: JSON = {"content": "".join(content), "reasoning_content": "".join(reasoning)}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {"choices": [{"message": message, "finish_reason": finish}], "usage": usage}


# -- what reached the provider ----------------------------------------------------------------


def assert_messages_request(received: Received, *, stream: bool) -> JSON:
    """The provider got a spec-valid Messages request, with its own key and a version; returns the body."""
    assert (received.method, received.path) == ("POST", "/v1/messages")
    assert received.headers["anthropic-version"]
    assert received.headers["x-api-key"] == "sk-upstream"
    assert "authorization" not in received.headers
    body = received.json()
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}"
        for e in validator("anthropic", "CreateMessageParams").iter_errors(body)
    ]
    assert errors == []
    assert body["model"] == MODEL
    assert isinstance(body["max_tokens"], int) and body["max_tokens"] > 0
    assert [b["text"] for b in body["system"]] == SYSTEM_TEXTS
    assert all(m["role"] in ("user", "assistant") for m in body["messages"])
    assert not keys_anywhere(body, schemas_under="input_schema") & OPENAI_ONLY
    assert body.get("stream", False) is stream
    return body


async def post_chat(url: str, body: JSON) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/chat/completions", json=body) as r:
        return r.status, await r.read()


def data_lines(raw: bytes) -> list[bytes]:
    return [part.removeprefix(b"data: ") for part in raw.split(b"\n\n") if part.strip()]


# -- answers: every recording ----------------------------------------------------------------


async def test_a_tool_use_message_becomes_a_chat_completion(proxy: str, fake: FakeUpstream) -> None:
    """`chat.completions.create` gets the recorded tool_use as a tool call, with Anthropic's usage."""
    fake.default = json_reply(
        "anthropic/message_tool_use.json", headers_file="anthropic/headers_200_oauth_unified_nonstream.json"
    )
    completion = await sdk(proxy).chat.completions.create(**REQUEST)
    assert completion_view(completion.to_dict()) == message_meaning(recorded_json("anthropic/message_tool_use.json"))
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.choices[0].message.content is None
    assert_messages_request(fake.requests[-1], stream=False)


@pytest.mark.parametrize("recording", ANTHROPIC_STREAMS)
async def test_every_recorded_stream_reaches_the_sdk_as_what_it_means(
    proxy: str, fake: FakeUpstream, recording: str
) -> None:
    """Chunks reassemble to the recording; the SDK's own accumulator agrees; the wire ends in [DONE]."""
    fake.default = anthropic_stream(recording)
    expected = stream_meaning(recording)
    request = {**REQUEST, "stream_options": {"include_usage": True}}
    client = sdk(proxy)

    stream = await client.chat.completions.create(**request, stream=True)
    chunks = [chunk.to_dict() async for chunk in stream]
    assert completion_view(reassemble(chunks)) == expected
    assert {c["model"] for c in chunks} == {MODEL}
    assert len({c["id"] for c in chunks}) == 1
    assert_messages_request(fake.requests[-1], stream=True)

    async with client.chat.completions.stream(**request) as helper:
        final = await helper.get_final_completion()
    view = completion_view(final.to_dict())
    assert {**view, "reasoning": None} == {**expected, "reasoning": None}

    status, raw = await post_chat(proxy, {**request, "stream": True})
    assert status == 200
    assert raw.endswith(b"\n\ndata: [DONE]\n\n")
    lines = data_lines(raw)
    assert lines.count(b"[DONE]") == 1
    assert [_without_created(orjson.loads(line)) for line in lines[:-1]] == [_without_created(c) for c in chunks]


def _without_created(chunk: JSON) -> JSON:
    """Two requests differ only in their `created` second."""
    return {k: v for k, v in chunk.items() if k != "created"}


async def test_a_tool_round_trip_sends_tool_results_in_one_user_turn(proxy: str, fake: FakeUpstream) -> None:
    """Parallel tool calls come back as tool_calls; the `tool` answers go up as tool_result blocks, ids kept."""
    fake.queue(anthropic_stream("stream_parallel_tool_use.sse"), anthropic_stream("stream_after_tool_result_text.sse"))
    client = sdk(proxy)
    stream = await client.chat.completions.create(**REQUEST, stream=True, stream_options={"include_usage": True})
    first = reassemble([c.to_dict() async for c in stream])
    calls = first["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("toolu_01LtHJmixrs9NcWQkK8hu8hj", "pelican_name_generator", "{}"),
        ("toolu_01N8a4jWyf116qKTMqKKmjyt", "pelican_name_generator", "{}"),
    ]
    assert first["choices"][0]["finish_reason"] == "tool_calls"

    answers = ["Percy", "Pelagia"]
    follow_up = {
        **REQUEST,
        "messages": [
            *REQUEST["messages"],
            {"role": "assistant", "content": None, "tool_calls": calls},
            *({"role": "tool", "tool_call_id": c["id"], "content": a} for c, a in zip(calls, answers, strict=True)),
        ],
    }
    second = await client.chat.completions.create(**follow_up, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in second if c.choices])
    assert text.startswith("The weather in San Francisco, CA is currently")

    body = assert_messages_request(fake.requests[-1], stream=True)
    *_, assistant, results = body["messages"]
    assert assistant["role"] == "assistant"
    assert [(b["type"], b["id"], b["name"], b["input"]) for b in assistant["content"]] == [
        ("tool_use", c["id"], "pelican_name_generator", {}) for c in calls
    ]
    assert results["role"] == "user"
    assert [(b["type"], b["tool_use_id"], _text(b["content"])) for b in results["content"]] == [
        ("tool_result", c["id"], a) for c, a in zip(calls, answers, strict=True)
    ]


def _text(content: str | list[JSON]) -> str:
    return content if isinstance(content, str) else "".join(b["text"] for b in content)


class Weather(BaseModel):
    location: str
    units: str


async def test_response_format_json_schema_answers_with_the_json_as_content(proxy: str, fake: FakeUpstream) -> None:
    """`response_format` becomes a forced tool upstream; its input comes back as the message content."""
    as_json_tool = recorded_json("anthropic/message_tool_use.json")
    as_json_tool["content"][0]["name"] = "json_tool_call"
    fake.default = Reply(body=orjson.dumps(as_json_tool))
    client = sdk(proxy)
    request = {
        "model": MODEL,
        "messages": REQUEST["messages"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "weather", "schema": Weather.model_json_schema()},
        },
    }
    completion = await client.chat.completions.create(**request)
    assert orjson.loads(completion.choices[0].message.content or "") == {"location": "San Francisco, CA", "units": "c"}
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"
    body = assert_messages_request(fake.requests[-1], stream=False)
    assert body["tool_choice"] == {"type": "tool", "name": "json_tool_call"}
    assert [t["name"] for t in body["tools"]] == ["json_tool_call"]
    assert body["tools"][0]["input_schema"]["properties"] == Weather.model_json_schema()["properties"]

    parsed = await client.chat.completions.parse(model=MODEL, messages=REQUEST["messages"], response_format=Weather)
    assert parsed.choices[0].message.parsed == Weather(location="San Francisco, CA", units="c")

    events = [
        e.replace(b'"get_weather"', b'"json_tool_call"')
        for e in sse_events("anthropic/stream_tool_use_input_json_delta.sse")
    ]
    fake.default = Stream(events)
    stream = await client.chat.completions.create(**request, stream=True)
    chunks = [c async for c in stream]
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert orjson.loads(content) == {"location": "San Francisco, CA", "units": "f"}
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


async def test_without_include_usage_no_usage_is_streamed(proxy: str, fake: FakeUpstream) -> None:
    """A client that did not ask for usage gets no usage chunk and no `usage` key, as from OpenAI."""
    fake.default = anthropic_stream("stream_text.sse")
    status, raw = await post_chat(proxy, {**REQUEST, "stream": True})
    assert status == 200
    lines = data_lines(raw)
    assert lines[-1] == b"[DONE]"
    chunks = [orjson.loads(line) for line in lines[:-1]]
    assert all("usage" not in c and len(c["choices"]) == 1 for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "- Captain\n- Scoop"


async def test_a_client_that_hangs_up_cancels_the_anthropic_stream(proxy: str, fake: FakeUpstream) -> None:
    """Closing the connection mid-stream closes the provider's stream at once."""
    fake.default = Stream(sse_events("anthropic/stream_text.sse"), stall_after=4)
    async with aiohttp.ClientSession() as s:
        r = await s.post(f"{proxy}/v1/chat/completions", json={**REQUEST, "stream": True})
        assert r.headers["content-type"].startswith("text/event-stream")
        assert b"chat.completion.chunk" in await r.content.readuntil(b"\n\n")
        r.close()
    await asyncio.wait_for(fake.cancelled.wait(), timeout=5)


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize(
    ("body", "headers", "upstream", "status", "exc", "code"),
    [
        (
            "error_429_rate_limit",
            "error_429_rate_limit.headers",
            429,
            429,
            openai.RateLimitError,
            "rate_limit_exceeded",
        ),
        (
            "error_429_oauth_account_rate_limit",
            "error_429_headers_api_key_2024",
            429,
            429,
            openai.RateLimitError,
            "rate_limit_exceeded",
        ),
        ("error_529_overloaded", "error_529_overloaded.headers", 529, 503, openai.InternalServerError, "overloaded"),
        ("error_400_invalid_request", "error_400_invalid_request.headers", 400, 400, openai.BadRequestError, None),
        ("error_400_invalid_request_effort", None, 400, 400, openai.BadRequestError, None),
        (
            # ccproxy's own key was refused: 403, so the client stops instead of re-asking its user
            "error_401_authentication",
            "error_401_authentication.headers",
            401,
            403,
            openai.PermissionDeniedError,
            None,
        ),
    ],
    ids=["429", "429-account", "529", "400", "400-effort", "401"],
)
async def test_anthropic_errors_become_openai_errors(
    proxy: str,
    fake: FakeUpstream,
    stream: bool,
    body: str,
    headers: str | None,
    upstream: int,
    status: int,
    exc: type[Exception],
    code: str | None,
) -> None:
    """An Anthropic error answer reaches the OpenAI SDK with an OpenAI status, exception and error body."""
    fake.default = json_reply(f"anthropic/{body}.json", upstream, headers and f"anthropic/{headers}.json")
    with pytest.raises(exc) as info:
        if stream:
            async for _ in await sdk(proxy).chat.completions.create(**REQUEST, stream=True):
                pass
        else:
            await sdk(proxy).chat.completions.create(**REQUEST)
    err = info.value
    assert isinstance(err, openai.APIStatusError)
    assert err.status_code == status
    assert err.code == code
    raw = orjson.loads(await err.response.aread())
    assert set(raw) == {"error"}, "the OpenAI error envelope"
    assert set(raw["error"]) >= {"message", "type", "param", "code"}
    assert recorded_json(f"anthropic/{body}.json")["error"]["message"] in raw["error"]["message"]


async def test_a_rate_limit_keeps_the_providers_retry_after(proxy: str, fake: FakeUpstream) -> None:
    """The OpenAI client is told how long to wait, as Anthropic said."""
    fake.default = json_reply(
        "anthropic/error_429_oauth_account_rate_limit.json", 429, "anthropic/error_429_headers_oauth_unified.json"
    )
    with pytest.raises(openai.RateLimitError) as info:
        await sdk(proxy).chat.completions.create(**REQUEST)
    assert info.value.response.headers["retry-after"] == "684"


async def test_an_error_event_mid_stream_ends_the_stream_without_done(proxy: str, fake: FakeUpstream) -> None:
    """`event: error` after some text gives one `data: {"error": ...}` and no `[DONE]`."""
    payload = recorded("anthropic/stream_error_event_overloaded.json")
    error_event = b"event: error\ndata: " + orjson.dumps(orjson.loads(payload)) + b"\n\n"
    events = sse_events("anthropic/stream_text.sse")
    fake.default = Stream([*events[:5], error_event])
    status, raw = await post_chat(proxy, {**REQUEST, "stream": True})
    assert status == 200
    lines = data_lines(raw)
    assert b"[DONE]" not in lines
    errors = [orjson.loads(line) for line in lines if b'"error"' in line]
    assert len(errors) == 1 and lines[-1].startswith(b'{"error"')
    assert errors[0]["error"]["message"] == "Overloaded"
    assert set(errors[0]["error"]) >= {"message", "type", "code"}
    assert [orjson.loads(line)["choices"][0]["delta"].get("content") for line in lines[1:-1]] == ["-", " Captain"]
    with pytest.raises(openai.APIError):
        async for _ in await sdk(proxy).chat.completions.create(**REQUEST, stream=True):
            pass


# -- passthrough to an OpenAI provider ------------------------------------------------------------


@pytest.fixture
async def openai_proxy(make_proxy: ProxyFactory, fake: FakeUpstream) -> str:
    """The proxy with one OpenAI provider and no routes: models go through unchanged."""
    return await make_proxy(
        {"providers": [{"name": "openai", "kind": "openai", "api_base_url": fake.url + "/v1", "api_key": "sk-up"}]}
    )


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is the capital of the UK?"}]}


def recorded_request(recording: str) -> JSON:
    """The request that produced a recording, or a plain one when none was kept."""
    path = RECORDED / "openai" / (recording.rsplit(".", 1)[0] + ".request.json")
    if path.exists():
        return orjson.loads(path.read_bytes())
    return {**CHAT, "stream": True, "stream_options": {"include_usage": True}}


@pytest.mark.parametrize("recording", OPENAI_STREAMS)
async def test_an_openai_provider_stream_reaches_the_client_byte_for_byte(
    openai_proxy: str, fake: FakeUpstream, recording: str
) -> None:
    """Routed to an OpenAI provider, the request goes up as sent and the chunks come back unchanged."""
    fake.default = Stream(sse_events(f"openai/{recording}"))
    body = recorded_request(recording)
    status, raw = await post_chat(openai_proxy, body)
    assert status == 200
    assert raw == b"".join(sse_events(f"openai/{recording}"))
    received = fake.requests[-1]
    assert (received.path, received.headers["authorization"]) == ("/v1/chat/completions", "Bearer sk-up")
    assert received.json() == body
    stream = await sdk(openai_proxy).chat.completions.create(**{**CHAT, "stream": True})
    assert [c.id async for c in stream]


@pytest.mark.parametrize("recording", OPENAI_COMPLETIONS)
async def test_an_openai_provider_completion_parses_the_same_through_the_proxy(
    openai_proxy: str, fake: FakeUpstream, recording: str
) -> None:
    """`chat.completions.create` through the proxy equals the provider's own answer."""
    fake.default = json_reply(f"openai/{recording}")
    request = recorded_request(recording)
    via_proxy = await sdk(openai_proxy).chat.completions.create(**request)
    assert fake.requests[-1].json() == request
    direct = await openai.AsyncOpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0).chat.completions.create(
        **request
    )
    assert via_proxy.to_dict() == direct.to_dict() == recorded_json(f"openai/{recording}")


async def test_an_openai_provider_error_reaches_the_client_unchanged(openai_proxy: str, fake: FakeUpstream) -> None:
    """An OpenAI client talking to an OpenAI provider gets the provider's own error, status and body."""
    fake.default = json_reply("openai/error_429_rate_limit_exceeded.json", 429)
    with pytest.raises(openai.RateLimitError) as info:
        await sdk(openai_proxy).chat.completions.create(**CHAT)
    assert info.value.code == "rate_limit_exceeded"
    assert await info.value.response.aread() == recorded("openai/error_429_rate_limit_exceeded.json")
