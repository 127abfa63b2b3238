"""Issue 16: Messages and Chat clients in front of a `responses` provider, translated both ways.

The official anthropic SDK and the openai SDK's chat client talk to ccproxy; the provider is a
fake Responses API answering in OpenAI's own stream shape (tests/responses_fake.py). Every
request that reaches it must validate against the Responses request schema of the OpenAI spec.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest

from tests.conftest import ProxyFactory
from tests.fakes import FIXTURES, FakeUpstream, Reply, Stream
from tests.responses_fake import (
    RESPONSE_ID,
    failed_event,
    function_call,
    message,
    reasoning,
    response,
    stream_events,
)
from tests.unit.translate.test_responses_upstream import spec_errors

JSON = dict[str, Any]
MODEL = "gpt-5"
TOOLS: list[Any] = [
    {
        "name": "exec_command",
        "description": "Run a shell command",
        "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
    }
]
CHAT_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {"name": t["name"], "description": t["description"], "parameters": t["input_schema"]},
    }
    for t in TOOLS
]
ENCRYPTED = "gAAAAABpY2Nwcm94eS1lbmNyeXB0ZWQtcmVhc29uaW5n"


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, fake: FakeUpstream) -> str:
    return await make_proxy(
        {
            "providers": [
                {"name": "oai", "kind": "responses", "api_base_url": fake.url + "/v1", "api_key": "sk-upstream"}
            ]
        }
    )


def claude(base_url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base_url, api_key="sk-client", max_retries=0)


def chat(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="sk-client", max_retries=0)


def sent(fake: FakeUpstream, i: int = -1) -> JSON:
    """What the provider got, checked against the spec on the way."""
    got = fake.requests[i]
    assert got.path == "/v1/responses"
    assert got.headers["authorization"] == "Bearer sk-upstream"
    body: JSON = got.json()
    assert not spec_errors(body), spec_errors(body)[:3]
    return body


# -- an Anthropic client ----------------------------------------------------------------------


async def test_messages_create_text(proxy: str, fake: FakeUpstream) -> None:
    """messages.create gets the Responses answer as a Message, usage with the cached tokens apart."""
    fake.default = Reply(body=orjson.dumps(response([message("Hello from Responses.")])))
    answer = await claude(proxy).messages.create(
        model=MODEL, max_tokens=256, system="Be brief.", messages=[{"role": "user", "content": "hi"}]
    )
    assert [b.type for b in answer.content] == ["text"] and answer.content[0].text == "Hello from Responses."  # type: ignore[union-attr]
    assert answer.stop_reason == "end_turn" and answer.model == MODEL
    assert answer.usage.cache_read_input_tokens == 100 and answer.usage.input_tokens == 20
    body = sent(fake)
    assert body["instructions"] == "Be brief." and body["max_output_tokens"] == 256 and body["store"] is False


async def test_messages_stream_text(proxy: str, fake: FakeUpstream) -> None:
    """A Responses stream arrives as Anthropic events the SDK assembles into the same text."""
    fake.default = Stream(stream_events([message("Streamed answer, in two deltas.")]))
    async with claude(proxy).messages.stream(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Streamed answer, in two deltas."
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 30
    assert sent(fake)["stream"] is True


async def test_messages_tool_round_trip(proxy: str, fake: FakeUpstream) -> None:
    """A function_call streams as tool_use; the tool_result goes back as its function_call_output."""
    call = function_call("exec_command", {"cmd": "echo hi"}, call_id="call_abc")
    fake.queue(Stream(stream_events([call])), Reply(body=orjson.dumps(response([message("It printed hi.")]))))
    client = claude(proxy)
    question: list[Any] = [{"role": "user", "content": "run echo hi"}]
    async with client.messages.stream(model=MODEL, max_tokens=256, messages=question, tools=TOOLS) as stream:
        first = await stream.get_final_message()
    use = next(b for b in first.content if b.type == "tool_use")
    assert (use.name, use.input, first.stop_reason) == ("exec_command", {"cmd": "echo hi"}, "tool_use")
    follow_up = [
        *question,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "hi"}]},
    ]
    answer = await client.messages.create(model=MODEL, max_tokens=256, messages=follow_up, tools=TOOLS)
    assert answer.content[0].text == "It printed hi."  # type: ignore[union-attr]
    body = sent(fake)
    kinds = [item.get("type", "message") for item in body["input"]]
    assert kinds == ["message", "function_call", "function_call_output"]
    assert body["input"][1]["call_id"] == body["input"][2]["call_id"] == use.id
    assert body["input"][2]["output"] == "hi"
    assert body["tools"][0]["type"] == "function" and body["tools"][0]["name"] == "exec_command"


async def test_messages_reasoning_round_trip(proxy: str, fake: FakeUpstream) -> None:
    """Thinking asks for reasoning; the reasoning summary streams as a thinking block whose
    signature brings the exact encrypted_content back on the next turn."""
    items = [reasoning("Considering the command.", ENCRYPTED), function_call("exec_command", {"cmd": "ls"})]
    fake.queue(Stream(stream_events(items)), Stream(stream_events([message("Done.")])))
    client = claude(proxy)
    thinking: Any = {"type": "enabled", "budget_tokens": 2048}
    question: list[Any] = [{"role": "user", "content": "list files"}]
    async with client.messages.stream(
        model=MODEL, max_tokens=4096, thinking=thinking, messages=question, tools=TOOLS
    ) as stream:
        first = await stream.get_final_message()
    block = first.content[0]
    assert block.type == "thinking" and block.thinking == "Considering the command."
    body = sent(fake, 0)
    assert body["reasoning"]["effort"] and body["include"] == ["reasoning.encrypted_content"]
    use = next(b for b in first.content if b.type == "tool_use")
    follow_up = [
        *question,
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "a b"}]},
    ]
    async with client.messages.stream(
        model=MODEL, max_tokens=4096, thinking=thinking, messages=follow_up, tools=TOOLS
    ) as stream:
        assert await stream.get_final_text() == "Done."
    restored = sent(fake)["input"][1]
    assert restored["type"] == "reasoning" and restored["id"] == "rs_1"
    assert restored["encrypted_content"] == ENCRYPTED


async def test_a_model_without_reasoning_gets_no_reasoning_controls(proxy: str, fake: FakeUpstream) -> None:
    """gpt-4.1 refuses `reasoning`: thinking is left out for it, as on the Chat path."""
    fake.default = Stream(stream_events([message("ok")], model="gpt-4.1"))
    async with claude(proxy).messages.stream(
        model="gpt-4.1",
        max_tokens=64000,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        assert await stream.get_final_text() == "ok"
    body = sent(fake)
    assert "reasoning" not in body and "include" not in body
    assert body["max_output_tokens"] == 32768  # the preset's limit for gpt-4.1


async def test_messages_error_before_the_first_byte(proxy: str, fake: FakeUpstream) -> None:
    """The provider's 429 reaches the Anthropic SDK as RateLimitError, in the Anthropic shape."""
    error = {"error": {"message": "Rate limit reached for gpt-5", "type": "requests", "code": "rate_limit_exceeded"}}
    fake.default = Reply(status=429, body=orjson.dumps(error))
    with pytest.raises(anthropic.RateLimitError) as caught:
        await claude(proxy).messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert "Rate limit reached for gpt-5" in str(caught.value)


async def test_messages_response_failed_midstream_is_an_error_event(proxy: str, fake: FakeUpstream) -> None:
    """response.failed after text began ends the Anthropic stream with an error event the SDK raises."""
    events = stream_events([message("partial answer")])[:5]
    fake.default = Stream([*events, failed_event(len(events))])
    with pytest.raises(anthropic.APIStatusError, match="The model broke down"):
        async with claude(proxy).messages.stream(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            async for _ in stream:
                pass


async def test_messages_stream_cut_is_an_error_not_a_short_answer(proxy: str, fake: FakeUpstream) -> None:
    """A provider that drops the stream before response.completed: the SDK raises, never a partial message."""
    fake.default = Stream(stream_events([message("partial answer")]), drop_after=5)
    with pytest.raises(anthropic.APIError):
        async with claude(proxy).messages.stream(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            await stream.get_final_message()


# -- an OpenAI Chat client -------------------------------------------------------------------


async def test_chat_create_text(proxy: str, fake: FakeUpstream) -> None:
    """chat.completions.create gets a chat.completion with the provider's text and usage."""
    fake.default = Reply(body=orjson.dumps(response([message("Chat via Responses.")])))
    answer = await chat(proxy).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Chat via Responses."
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.prompt_tokens == 120
    assert sent(fake)["input"][0]["content"][0]["text"] == "hi"


async def test_chat_stream_tool_round_trip(proxy: str, fake: FakeUpstream) -> None:
    """A streamed function_call arrives as tool_calls chunks; the tool message goes back as its output."""
    call = function_call("exec_command", {"cmd": "date"}, call_id="call_xyz")
    fake.queue(Stream(stream_events([call])), Stream(stream_events([message("It is today.")])))
    client = chat(proxy)
    question: list[Any] = [{"role": "user", "content": "what date?"}]
    stream = await client.chat.completions.create(
        model=MODEL, messages=question, tools=CHAT_TOOLS, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    arguments = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    assert calls[0].function is not None and calls[0].function.name == "exec_command"
    assert orjson.loads(arguments) == {"cmd": "date"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 30
    call_id = calls[0].id
    assert call_id
    follow_up = [
        *question,
        {
            "role": "assistant",
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "exec_command", "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "Sun Nov 29"},
    ]
    again = await client.chat.completions.create(model=MODEL, messages=follow_up, tools=CHAT_TOOLS, stream=True)
    assert "".join([c.choices[0].delta.content or "" async for c in again if c.choices]) == "It is today."
    body = sent(fake)
    assert [item.get("type", "message") for item in body["input"]][-2:] == ["function_call", "function_call_output"]
    assert body["input"][-1]["output"] == "Sun Nov 29"


async def test_chat_reasoning(proxy: str, fake: FakeUpstream) -> None:
    """reasoning_effort goes up as reasoning.effort; the answer's text comes back without the reasoning."""
    fake.default = Stream(stream_events([reasoning("Thinking it over.", ENCRYPTED), message("Forty-two.")]))
    stream = await chat(proxy).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "answer?"}], reasoning_effort="high", stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Forty-two."
    assert sent(fake)["reasoning"]["effort"] == "high"


async def test_chat_errors(proxy: str, fake: FakeUpstream) -> None:
    """A 400 before the stream is an OpenAI BadRequestError; response.failed midstream is an error chunk."""
    error = {"error": {"message": "Unsupported value: 'x'", "type": "invalid_request_error", "code": None}}
    fake.queue(Reply(status=400, body=orjson.dumps(error)))
    client = chat(proxy)
    with pytest.raises(openai.BadRequestError, match="Unsupported value"):
        await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    events = stream_events([message("partial")])[:5]
    fake.queue(Stream([*events, failed_event(len(events))]))
    with pytest.raises(openai.APIError, match="The model broke down"):
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for _ in stream:
            pass


async def test_the_response_id_becomes_the_message_id(proxy: str, fake: FakeUpstream) -> None:
    """Streamed and whole answers name the same message, derived from the provider's response id."""
    fake.queue(Reply(body=orjson.dumps(response([message("a")]))), Stream(stream_events([message("a")])))
    client = claude(proxy)
    whole = await client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    async with client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        streamed = await stream.get_final_message()
    assert whole.id == streamed.id and RESPONSE_ID.removeprefix("resp_") in whole.id


async def test_translated_events_are_sent_while_the_provider_is_paused(proxy: str, fake: FakeUpstream) -> None:
    """No buffering on the translated path: the text so far reaches the client before the provider goes on."""
    events = stream_events([message("first half, then the rest")])
    fake.default = Stream(events, pause_after=5, pause=1.0)  # created .. the first text delta
    async with claude(proxy).messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        first = [event async for event in stream if event.type == "text" and fake.events_sent == 5]
        assert first and first[0].snapshot == "first half, ", "the first delta arrived while the provider was paused"
        assert await stream.get_final_text() == "first half, then the rest"


@pytest.mark.parametrize("recording", ["tool-bash-echo-0002", "interactive-tui-0003", "model-haiku-0001"])
async def test_claude_code_requests_reach_a_responses_provider_valid(
    proxy: str, fake: FakeUpstream, recording: str
) -> None:
    """Recorded Claude Code requests (tools, adaptive thinking, tool loops, cache_control) become valid
    Responses requests, and the streamed answer reaches Claude Code as Anthropic events."""
    doc = orjson.loads((FIXTURES / "claude-code" / f"{recording}.json").read_bytes())
    headers = {k: v for k, v in doc["headers"] if k.lower() in ("anthropic-version", "anthropic-beta", "user-agent")}
    fake.default = Stream(stream_events([message("ok")]))
    body = {**doc["body"], "model": MODEL, "stream": True}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{proxy}/v1/messages", json=body, headers=headers) as r:
            raw = await r.read()
            assert r.status == 200, raw[:500]
    assert raw.startswith(b"event: message_start") and b"event: message_stop" in raw
    sent(fake)  # valid against the spec
