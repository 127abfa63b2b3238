"""Issue 16, end to end: the official openai SDK's Responses API through ccproxy.

To an Anthropic provider the fake replays real Anthropic recordings; to a Chat Completions
provider it replays real OpenAI ones. What the SDK gets must be what the recording means as a
Responses `response` (text, function calls, reasoning, usage with cached tokens), every stream
event must validate against the OpenAI spec, and what reached the provider must validate
against that provider's spec.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from tests.conftest import ProxyFactory, anthropic_provider
from tests.fakes import FakeUpstream, Reply, Stream, json_reply, recorded, recorded_json, sse_events
from tests.specs import keys_anywhere, validator

JSON = dict[str, Any]
MODEL = "claude-opus-4-8"
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather at a place",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "units": {"type": "string"}},
            "required": ["location"],
        },
    },
    {"type": "function", "name": "fixed_version", "description": "The fixed version", "parameters": {}},
]
# Keys only the Responses API knows; none may reach an Anthropic provider.
# (`input` and `text` are Anthropic keys too: tool_use input, text blocks.)
RESPONSES_ONLY = {
    "instructions",
    "max_output_tokens",
    "reasoning",
    "store",
    "include",
    "previous_response_id",
    "parallel_tool_calls",
    "call_id",
    "arguments",
    "encrypted_content",
    "summary",
    "parameters",
    "strict",
    "prompt_cache_key",
    "developer",
}


Sdk = Callable[..., openai.AsyncOpenAI]


@pytest.fixture
async def sdk() -> AsyncIterator[Sdk]:
    """The official client for a proxy URL (and path prefix); closed after the test."""
    made: list[openai.AsyncOpenAI] = []

    def make(base_url: str, prefix: str = "/v1") -> openai.AsyncOpenAI:
        made.append(openai.AsyncOpenAI(base_url=base_url + prefix, api_key="x", max_retries=0))
        return made[-1]

    yield make
    for client in made:
        await client.close()


def anthropic_stream(name: str) -> Stream:
    return Stream(sse_events(f"anthropic/{name}"))


def assert_valid_messages_request(body: JSON) -> None:
    errors = sorted(validator("anthropic", "CreateMessageParams").iter_errors(body), key=str)
    assert not errors, [e.message for e in errors[:3]]
    assert not keys_anywhere(body, schemas_under="input_schema") & RESPONSES_ONLY


def assert_valid_event(event: JSON) -> None:
    errors = list(validator("openai", "ResponseStreamEvent", nullable_as_union=True).iter_errors(event))
    assert not errors, (event["type"], [e.message for e in errors[:3]])


async def raw_events(
    base_url: str, body: JSON, path: str = "/v1/responses"
) -> tuple[aiohttp.ClientResponse, list[JSON]]:
    """The proxy's SSE answer, event by event, as the bytes said (no SDK in between)."""
    async with aiohttp.ClientSession() as session, session.post(base_url + path, json=body) as resp:
        raw = await resp.read()
    events = []
    for part in raw.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in part.splitlines() if ": " in line and not line.startswith(":"))
        if "data" in lines:
            event = orjson.loads(lines["data"])
            assert lines["event"] == event["type"]
            events.append(event)
    return resp, events


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, fake: FakeUpstream) -> str:
    return await make_proxy({"providers": [anthropic_provider(fake)]})


# -- to an Anthropic provider -------------------------------------------------------------


async def test_stream_text_from_anthropic(sdk: Sdk, proxy: str, fake: FakeUpstream) -> None:
    """A streamed answer arrives as response.* events the SDK assembles into the recording's text."""
    fake.default = anthropic_stream("stream_text.sse")
    async with sdk(proxy).responses.stream(model=MODEL, input="Say hi", instructions="Be brief.") as stream:
        deltas = [event.delta async for event in stream if event.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    message = _message_of("anthropic/stream_text.sse")
    assert final.output_text == "".join(deltas) == _text_of(message)
    assert final.status == "completed" and final.model == MODEL
    assert final.usage is not None and final.usage.input_tokens == _prompt_tokens(message["usage"])
    sent = fake.requests[0].json()
    assert_valid_messages_request(sent)
    assert sent["system"][0]["text"] == "Be brief." and sent["stream"] is True


async def test_every_stream_event_validates_against_the_spec(proxy: str, fake: FakeUpstream) -> None:
    """Each event of a thinking + tool call stream is a valid ResponseStreamEvent, numbered from 0."""
    fake.default = anthropic_stream("stream_thinking_then_tool_use.sse")
    resp, events = await raw_events(
        proxy, {"model": MODEL, "input": "hi", "tools": TOOLS, "stream": True, "reasoning": {"effort": "low"}}
    )
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    for event in events:
        assert_valid_event(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    kinds = [item["type"] for item in events[-1]["response"]["output"]]
    assert kinds == ["reasoning", "function_call"]
    assert validator("openai", "Response", nullable_as_union=True).is_valid(events[-1]["response"])


async def test_function_call_round_trip(sdk: Sdk, proxy: str, fake: FakeUpstream) -> None:
    """A tool_use comes back as a function_call; its function_call_output goes up as a tool_result."""
    fake.queue(json_reply("anthropic/message_tool_use.json"), anthropic_stream("stream_after_tool_result_text.sse"))
    client = sdk(proxy)
    first = await client.responses.create(model=MODEL, input="Weather in SF?", tools=TOOLS)
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    assert orjson.loads(calls[0].arguments) == _tool_input("anthropic/message_tool_use.json")
    follow_up: list[Any] = [
        {"role": "user", "content": "Weather in SF?"},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "18C and sunny"},
    ]
    async with client.responses.stream(model=MODEL, input=follow_up, tools=TOOLS) as stream:
        final = await stream.get_final_response()
    assert final.output_text
    sent = fake.requests[1].json()
    assert_valid_messages_request(sent)
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    result = sent["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == calls[0].call_id
    assert result["content"] == "18C and sunny"


async def test_reasoning_comes_back_and_restores_the_signed_thinking(sdk: Sdk, proxy: str, fake: FakeUpstream) -> None:
    """Thinking streams as reasoning summary deltas; the reasoning item sent back restores the exact block."""
    fake.queue(anthropic_stream("stream_thinking_then_tool_use.sse"), anthropic_stream("stream_text.sse"))
    client = sdk(proxy)
    async with client.responses.stream(
        model=MODEL,
        input="Version?",
        tools=TOOLS,
        reasoning={"effort": "low"},
        include=["reasoning.encrypted_content"],
        store=False,
    ) as stream:
        summary = "".join([e.delta async for e in stream if e.type == "response.reasoning_summary_text.delta"])
        first = await stream.get_final_response()
    thinking = _blocks_of("anthropic/stream_thinking_then_tool_use.sse", "thinking")[0]
    assert summary == thinking["thinking"]
    assert fake.requests[0].json()["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    call = next(item for item in first.output if item.type == "function_call")
    next_input: list[Any] = [
        {"role": "user", "content": "Version?"},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": "1.2.3"},
    ]
    await client.responses.create(model=MODEL, input=next_input, tools=TOOLS, reasoning={"effort": "low"}, stream=True)
    sent = fake.requests[1].json()
    assert_valid_messages_request(sent)
    assert sent["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": thinking["thinking"],
        "signature": thinking["signature"],
    }
    assert "thinking" in sent  # the tool loop carries its signed thinking, so thinking stays on


async def test_error_before_the_first_byte_is_an_openai_error(sdk: Sdk, proxy: str, fake: FakeUpstream) -> None:
    """An upstream 429 reaches the SDK as RateLimitError with the provider's message, OpenAI-shaped."""
    fake.default = json_reply("anthropic/error_429_rate_limit.json", status=429)
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk(proxy).responses.create(model=MODEL, input="hi", stream=True)
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "rate_limit_exceeded"
    assert "rate limit" in body["message"]


async def test_error_midstream_is_response_failed(proxy: str, fake: FakeUpstream) -> None:
    """An error event after the answer began ends the stream with response.failed, not a bare error."""
    events = sse_events("anthropic/stream_text.sse")[:4]
    error = recorded("anthropic/stream_error_event_overloaded.json").replace(b"\n", b"").replace(b"  ", b"")
    fake.default = Stream([*events, b"event: error\ndata: " + error + b"\n\n"])
    _, out = await raw_events(proxy, {"model": MODEL, "input": "hi", "stream": True})
    for event in out:
        assert_valid_event(event)
    assert out[-1]["type"] == "response.failed"
    assert out[-1]["response"]["error"] == {"code": "server_error", "message": "Overloaded"}


async def test_previous_response_id_is_refused_by_name(sdk: Sdk, proxy: str, fake: FakeUpstream) -> None:
    """ccproxy keeps no responses: a previous_response_id is a 400 that names it, and nothing goes upstream."""
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk(proxy).responses.create(model=MODEL, input="hi", previous_response_id="resp_abc123")
    assert "resp_abc123" in str(caught.value) and not fake.requests


async def test_stored_responses_are_not_found_by_name(sdk: Sdk, proxy: str) -> None:
    """Retrieving, deleting or cancelling a response is a 404 that names it: ccproxy keeps none."""
    client = sdk(proxy)
    for call in (client.responses.retrieve, client.responses.delete, client.responses.cancel):
        with pytest.raises(openai.NotFoundError) as caught:
            await call("resp_abc123")
        assert "resp_abc123" in str(caught.value)


async def test_hosted_tools_are_dropped_named_and_do_not_route(make_proxy: ProxyFactory, make_fake: Any) -> None:
    """web_search is left out, named in x-ccproxy-dropped-tools, and the webSearch route does not fire."""
    main, search = await make_fake(), await make_fake()
    main.default = search.default = Reply(body=recorded("anthropic/message_tool_use.json"))
    proxy = await make_proxy(
        {
            "providers": [anthropic_provider(main), {**anthropic_provider(search), "name": "search"}],
            "routes": {
                "default": {"provider": "anthropic", "model": MODEL},
                "webSearch": {"provider": "search", "model": MODEL},
            },
        }
    )
    body = {"model": MODEL, "input": "hi", "tools": [*TOOLS, {"type": "web_search", "external_web_access": True}]}
    async with aiohttp.ClientSession() as session, session.post(proxy + "/v1/responses", json=body) as resp:
        assert resp.status == 200
        assert resp.headers["x-ccproxy-dropped-tools"] == "web_search"
    assert len(main.requests) == 1 and not search.requests
    assert [t["name"] for t in main.requests[0].json()["tools"]] == ["get_weather", "fixed_version"]


@pytest.mark.parametrize(("effort", "routed_to"), [("xhigh", "thinker"), ("low", "anthropic"), (None, "anthropic")])
async def test_a_high_reasoning_effort_takes_the_think_route(
    make_proxy: ProxyFactory, make_fake: Any, effort: str | None, routed_to: str
) -> None:
    """reasoning.effort at or above router.think_effort routes like a Messages client thinking hard."""
    main, thinker = await make_fake(), await make_fake()
    main.default = thinker.default = json_reply("anthropic/message_tool_use.json")
    proxy = await make_proxy(
        {
            "providers": [anthropic_provider(main), {**anthropic_provider(thinker), "name": "thinker"}],
            "routes": {
                "default": {"provider": "anthropic", "model": MODEL},
                "think": {"provider": "thinker", "model": "claude-opus-4-8"},
            },
        }
    )
    body: JSON = {"model": MODEL, "input": "hi", **({"reasoning": {"effort": effort}} if effort else {})}
    async with aiohttp.ClientSession() as session, session.post(proxy + "/v1/responses", json=body) as resp:
        assert resp.status == 200
        assert resp.headers["x-ccproxy-route"].startswith(routed_to + ",")
    sent = (thinker if routed_to == "thinker" else main).requests[0].json()
    assert "output_config" not in sent  # routed on, never sent: not every model takes an effort


@pytest.mark.parametrize("path", ["/api/v1", "/api/codex", "/api/codex/v1", "/api/codex/sess-42"])
async def test_every_responses_path_answers(sdk: Sdk, proxy: str, fake: FakeUpstream, path: str) -> None:
    """The /api and /api/codex spellings (with a session id) are the same endpoint."""
    fake.default = json_reply("anthropic/message_tool_use.json")
    response = await sdk(proxy, path).responses.create(model=MODEL, input="hi", tools=TOOLS)
    assert response.status == "completed"


async def test_codex_chat_and_models_paths(sdk: Sdk, proxy: str, fake: FakeUpstream) -> None:
    """/api/codex/chat/completions, /api/codex/v1/chat/completions and /api/codex/v1/models are the /v1 surfaces."""
    fake.default = json_reply("anthropic/message_tool_use.json")
    for prefix in ("/api/codex", "/api/codex/v1"):
        completion = await sdk(proxy, prefix).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        assert completion.choices[0].finish_reason == "tool_calls"
    assert [r.path for r in fake.requests] == ["/v1/messages", "/v1/messages"]
    models = await sdk(proxy, "/api/codex/v1").models.list()
    assert models.data is not None


async def test_errors_on_responses_paths_are_openai_shaped(proxy: str) -> None:
    """A bad body on a /responses path gets {"error": {message, type, param, code}}, naming the field."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(proxy + "/api/codex/responses", json={"model": MODEL, "input": 5}) as resp,
    ):
        body = await resp.json()
    assert resp.status == 400
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["message"].startswith("input:")


async def test_client_hanging_up_after_completed_is_a_normal_end(
    proxy: str, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that closes right after response.completed (Codex does) leaves no error behind."""
    events = sse_events("anthropic/stream_text.sse")
    # The provider ends its body a moment after message_stop: the client is gone by then.
    late = Stream([*events, b": late\n\n"], pause_after=len(events), pause=0.5)
    fake.queue(late, json_reply("anthropic/message_tool_use.json"))
    body = {"model": MODEL, "input": "hi", "stream": True}
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy + "/v1/responses", json=body) as resp:
            seen = b""
            async for chunk in resp.content.iter_any():
                seen += chunk
                if b"response.completed" in seen:
                    break
            # The proxy ends the stream as it sends response.completed, without waiting for the
            # provider's own end, so its last chunk often comes in the same read and aiohttp has
            # let go of the connection; otherwise the client hangs up on it here.
            if resp.connection is not None:
                resp.connection.transport.abort()  # type: ignore[union-attr]
        assert b"event: response.completed" in seen
        async with session.post(proxy + "/v1/responses", json={**body, "stream": False}) as again:
            assert again.status == 200
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_a_failing_provider_falls_back_to_a_chat_provider(
    sdk: Sdk, make_proxy: ProxyFactory, make_fake: Any
) -> None:
    """An overloaded Anthropic provider before the first byte: the route's fallback (a Chat provider) answers."""
    claude, gpt = await make_fake(), await make_fake()
    claude.default = json_reply("anthropic/error_529_overloaded.json", status=529)
    gpt.default = Stream(sse_events("openai/stream_text_with_usage.sse"))
    proxy = await make_proxy(
        {
            "providers": [
                anthropic_provider(claude),
                {
                    "name": "gpt",
                    "kind": "openai",
                    "api_base_url": gpt.url + "/v1",
                    "api_key": "sk-up",
                    "models": ["gpt-4.1"],
                },
            ],
            "routes": {"default": {"provider": "anthropic", "model": MODEL}},
            "router": {"fallback": {"default": ["gpt"]}},
        }
    )
    async with sdk(proxy).responses.stream(model=MODEL, input="hi") as stream:
        final = await stream.get_final_response()
    assert final.output_text == _chat_text("openai/stream_text_with_usage.sse")
    assert len(claude.requests) == 1 and len(gpt.requests) == 1


async def test_silences_are_bridged_by_comments_the_sdk_ignores(
    sdk: Sdk, make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """While the provider is silent, SSE comments keep the connection alive; the SDK's result is unchanged."""
    fake.default = Stream(sse_events("anthropic/stream_text.sse"), pause_after=3, pause=0.5)
    proxy = await make_proxy({"providers": [anthropic_provider(fake)], "limits": {"keepalive_interval": "0.1s"}})
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy + "/v1/responses", json={"model": MODEL, "input": "hi", "stream": True}) as r:
            assert (await r.read()).count(b": keep-alive\n\n") >= 2
    async with sdk(proxy).responses.stream(model=MODEL, input="hi") as stream:
        final = await stream.get_final_response()
    assert final.output_text == _text_of(_message_of("anthropic/stream_text.sse"))


# -- to a Chat Completions provider -------------------------------------------------------


@pytest.fixture
async def chat_proxy(make_proxy: ProxyFactory, fake: FakeUpstream) -> str:
    return await make_proxy(
        {
            "providers": [
                {
                    "name": "openai",
                    "kind": "openai",
                    "api_base_url": fake.url + "/v1",
                    "api_key": "sk-up",
                    "models": ["gpt-4.1"],
                }
            ],
            "routes": {"default": {"provider": "openai", "model": "gpt-4.1"}},
        }
    )


def openai_stream(name: str) -> Stream:
    return Stream(sse_events(f"openai/{name}"))


async def test_stream_text_from_chat(sdk: Sdk, chat_proxy: str, fake: FakeUpstream) -> None:
    """Chat chunks become response.* events: the text and the usage (cached tokens included) arrive."""
    fake.default = openai_stream("stream_text_with_usage.sse")
    async with sdk(chat_proxy).responses.stream(model=MODEL, input="hi", instructions="Be brief.") as stream:
        final = await stream.get_final_response()
    assert final.output_text == _chat_text("openai/stream_text_with_usage.sse")
    usage = _chat_usage("openai/stream_text_with_usage.sse")
    assert final.usage is not None and final.usage.input_tokens == usage["prompt_tokens"]
    assert final.usage.input_tokens_details.cached_tokens == usage["prompt_tokens_details"]["cached_tokens"]
    sent = fake.requests[0].json()
    assert validator("openai", "CreateChatCompletionRequest").is_valid(sent)
    assert sent["model"] == "gpt-4.1" and sent["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_function_call_round_trip_through_chat(sdk: Sdk, chat_proxy: str, fake: FakeUpstream) -> None:
    """Chat tool calls come back as function_calls; the output goes up as a `tool` message."""
    fake.queue(openai_stream("stream_tool_call_with_usage.sse"), openai_stream("stream_text_with_usage.sse"))
    client = sdk(chat_proxy)
    async with client.responses.stream(model=MODEL, input="Weather?", tools=TOOLS) as stream:
        first = await stream.get_final_response()
    call = next(item for item in first.output if item.type == "function_call")
    recorded_call = next(
        c
        for c in _chat_chunks("openai/stream_tool_call_with_usage.sse")
        if c.get("choices") and c["choices"][0]["delta"].get("tool_calls")
    )
    assert call.name == recorded_call["choices"][0]["delta"]["tool_calls"][0]["function"]["name"]
    assert call.call_id == recorded_call["choices"][0]["delta"]["tool_calls"][0]["id"]
    follow_up: list[Any] = [
        {"role": "user", "content": "Weather?"},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": "18C"},
    ]
    async with client.responses.stream(model=MODEL, input=follow_up, tools=TOOLS) as stream:
        second = await stream.get_final_response()
    assert second.output_text
    sent = fake.requests[1].json()
    assert validator("openai", "CreateChatCompletionRequest").is_valid(sent)
    assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "18C"}


def reasoning_chat_stream() -> Stream:
    """A Chat stream whose provider reasons out loud (`reasoning_content`, as DeepSeek does), then answers."""
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1"}
    pieces = [{"role": "assistant", "reasoning_content": "Think"}, {"reasoning_content": "ing."}, {"content": "Done"}]
    events = [b"data: " + orjson.dumps({**chunk, "choices": [{"index": 0, "delta": d}]}) + b"\n\n" for d in pieces]
    events.append(
        b"data: " + orjson.dumps({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + b"\n\n"
    )
    return Stream([*events, b"data: [DONE]\n\n"])


async def test_reasoning_through_chat(sdk: Sdk, make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """A Chat provider's reasoning_content streams as reasoning summary text; effort goes up as reasoning_effort."""
    fake.default = reasoning_chat_stream()
    # a reasoning model: gpt-4.1 refuses reasoning_effort, so the proxy sends it only to those that take it
    route = {"default": {"provider": "openai", "model": "o3"}}
    chat_proxy = await make_proxy(
        {"providers": [{"name": "openai", "api_base_url": fake.url + "/v1", "api_key": "sk-up"}], "routes": route}
    )
    async with sdk(chat_proxy).responses.stream(model=MODEL, input="hi", reasoning={"effort": "high"}) as stream:
        summary = "".join([e.delta async for e in stream if e.type == "response.reasoning_summary_text.delta"])
        final = await stream.get_final_response()
    assert summary == "Thinking." and final.output_text == "Done"
    assert fake.requests[0].json()["reasoning_effort"] == "high"


async def test_reasoning_made_by_a_chat_provider_never_reaches_anthropic(
    sdk: Sdk, make_proxy: ProxyFactory, make_fake: Any
) -> None:
    """A reasoning item sent back from a Chat provider's turn is left out when the next turn goes to Anthropic."""
    gpt, claude = await make_fake(), await make_fake()
    gpt.default = reasoning_chat_stream()
    claude.default = json_reply("anthropic/message_tool_use.json")
    proxy = await make_proxy(
        {
            "providers": [
                {"name": "gpt", "kind": "openai", "api_base_url": gpt.url + "/v1", "api_key": "sk-up"},
                anthropic_provider(claude),
            ],
            "routes": {"default": {"provider": "gpt", "model": "gpt-4.1"}},
        }
    )
    client = sdk(proxy)
    async with client.responses.stream(model=MODEL, input="hi", reasoning={"effort": "low"}) as stream:
        first = await stream.get_final_response()
    assert [item.type for item in first.output] == ["reasoning", "message"]
    history: list[Any] = [
        {"role": "user", "content": "hi"},
        *[i.model_dump(exclude_none=True) for i in first.output],
        {"role": "user", "content": "and now?"},
    ]
    await client.responses.create(model=MODEL, input=history, extra_headers={"X-Provider": "anthropic"})
    sent = claude.requests[0].json()
    assert_valid_messages_request(sent)
    assert [b["type"] for b in sent["messages"][1]["content"]] == ["text"]


async def test_error_through_chat(sdk: Sdk, chat_proxy: str, fake: FakeUpstream) -> None:
    """A Chat provider refusing ccproxy's key reaches the Responses client as an OpenAI error
    (403: the operator must fix the key), not the provider's body."""
    fake.default = json_reply("openai/error_401_invalid_api_key.json", status=401)
    with pytest.raises(openai.PermissionDeniedError) as info:
        await sdk(chat_proxy).responses.create(model=MODEL, input="hi")
    assert "Incorrect API key provided" in info.value.message


# -- what a recording means ---------------------------------------------------------------


def _anthropic_events(name: str) -> list[JSON]:
    return [orjson.loads(e.split(b"data: ", 1)[1]) for e in sse_events(name) if b"data: " in e]


def _message_of(name: str) -> JSON:
    events = _anthropic_events(name)
    message = dict(events[0]["message"])
    usage = dict(message["usage"])
    for event in events:
        if event["type"] == "message_delta":
            usage.update(event["usage"])
    message["usage"] = usage
    message["text"] = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    return message


def _text_of(message: JSON) -> str:
    return str(message["text"])


def _prompt_tokens(usage: JSON) -> int:
    return int(
        usage["input_tokens"]
        + (usage.get("cache_read_input_tokens") or 0)
        + (usage.get("cache_creation_input_tokens") or 0)
    )


def _blocks_of(name: str, kind: str) -> list[JSON]:
    blocks: list[JSON] = []
    for event in _anthropic_events(name):
        if event["type"] == "content_block_start" and event["content_block"]["type"] == kind:
            blocks.append({"thinking": "", "signature": ""})
        elif event["type"] == "content_block_delta" and blocks and event["delta"]["type"] == "thinking_delta":
            blocks[-1]["thinking"] += event["delta"]["thinking"]
        elif event["type"] == "content_block_delta" and blocks and event["delta"]["type"] == "signature_delta":
            blocks[-1]["signature"] += event["delta"]["signature"]
    return blocks


def _tool_input(name: str) -> JSON:
    return next(b["input"] for b in recorded_json(name)["content"] if b["type"] == "tool_use")


def _chat_chunks(name: str) -> list[JSON]:
    return [orjson.loads(e[6:]) for e in sse_events(name) if e.startswith(b"data: {")]


def _chat_text(name: str) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in _chat_chunks(name) if c.get("choices"))


def _chat_usage(name: str) -> JSON:
    return next(c["usage"] for c in _chat_chunks(name) if c.get("usage"))
