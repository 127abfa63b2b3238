"""Anthropic Message -> OpenAI chat.completion: what the openai SDK parses, and what the stream agrees on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletion

from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.messages_response import chat_usage, finish_reason, message_to_chat
from tests.grammar import assert_anthropic_stream_grammar
from tests.specs import validator
from tests.unit.translate.test_translate_messages_stream import (
    CREATED,
    MODEL,
    RECORDINGS,
    accumulate,
    events_of,
    reasoning,
    replay,
)

ANTHROPIC = Path(__file__).parents[2] / "fixtures" / "recorded" / "anthropic"


def message(*content: JSON, stop_reason: str = "end_turn", **usage: int) -> JSON:
    return {
        "id": "msg_01xyz",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": list(content),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


def text(value: str) -> JSON:
    return {"type": "text", "text": value}


def tool_use(name: str, tool_input: JSON, tool_id: str = "toolu_1") -> JSON:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


def translate(msg: JSON, **options: Any) -> JSON:
    chat = message_to_chat(msg, model=MODEL, created=CREATED, **options)
    validator("openai", "CreateChatCompletionResponse", nullable_as_union=True).validate(chat)
    ChatCompletion.model_validate(chat)
    return chat


def test_the_recorded_tool_use_message() -> None:
    """message_tool_use.json: one tool call with compact JSON arguments, null content, full usage."""
    chat = translate(orjson.loads((ANTHROPIC / "message_tool_use.json").read_bytes()))
    assert chat["id"] == "chatcmpl-01QCEBW49MBPHFuFwMDoFtPP"
    assert (chat["object"], chat["model"], chat["created"]) == ("chat.completion", MODEL, CREATED)
    (choice,) = chat["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "id": "toolu_01GHndag5wQmbzNihYmV2UBj",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location":"San Francisco, CA","units":"c"}'},
            }
        ],
    }
    assert chat["usage"] == {
        "prompt_tokens": 659,
        "completion_tokens": 74,
        "total_tokens": 733,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
    }


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
        ("something_new", "stop"),
        (None, "stop"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop_reason: Any, expected: str) -> None:
    """Each Anthropic stop_reason has its OpenAI finish_reason; unknown ones read as stop."""
    assert finish_reason(stop_reason) == expected
    assert translate(message(text("x"), stop_reason=stop_reason))["choices"][0]["finish_reason"] == expected


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"input_tokens": 3, "output_tokens": 4}, (3, 4, 7, 0)),
        (
            {"input_tokens": 3, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20, "output_tokens": 4},
            (123, 4, 127, 100),
        ),
        ({"output_tokens": 65}, (0, 65, 65, 0)),
        ({}, (0, 0, 0, 0)),
    ],
)
def test_usage_counts_cached_input_as_prompt(usage: JSON, expected: tuple[int, int, int, int]) -> None:
    """prompt_tokens = input + cache reads + cache writes; cached_tokens = cache reads; fields optional."""
    out = chat_usage(usage)
    assert (
        out["prompt_tokens"],
        out["completion_tokens"],
        out["total_tokens"],
        out["prompt_tokens_details"]["cached_tokens"],
    ) == expected


def test_thinking_tokens_become_reasoning_tokens() -> None:
    """`output_tokens_details.thinking_tokens` is reported as completion reasoning_tokens."""
    out = chat_usage({"output_tokens": 92, "output_tokens_details": {"thinking_tokens": 53}})
    assert out["completion_tokens_details"] == {"reasoning_tokens": 53}


def test_text_blocks_join_and_thinking_goes_to_reasoning_content() -> None:
    """Text blocks join in order; thinking text and its signed block sit beside the content."""
    msg = message(
        {"type": "thinking", "thinking": "Hmm.", "signature": "sig1"},
        text("Hello"),
        {"type": "redacted_thinking", "data": "enc"},
        text(", world"),
    )
    result = translate(msg)["choices"][0]["message"]
    assert result["content"] == "Hello, world"
    assert result["reasoning_content"] == "Hmm."
    assert result["thinking_blocks"] == [
        {"type": "thinking", "thinking": "Hmm.", "signature": "sig1"},
        {"type": "redacted_thinking", "data": "enc"},
    ]


def test_text_and_tool_calls_together() -> None:
    """Text stays content next to tool calls; a tool with no input gets arguments "{}"."""
    msg = message(
        text("Let me look."), tool_use("a", {}), tool_use("b", {"x": [1, 2]}, "toolu_2"), stop_reason="tool_use"
    )
    result = translate(msg)["choices"][0]["message"]
    assert result["content"] == "Let me look."
    assert [c["function"]["arguments"] for c in result["tool_calls"]] == ["{}", '{"x":[1,2]}']


def test_a_blank_leading_block_is_dropped_like_the_stream_does() -> None:
    """Adaptive thinking's "\\n\\n" block 0 does not start the content."""
    msg = message(text("\n\n"), {"type": "thinking", "thinking": "t", "signature": "s"}, text("Answer"))
    assert translate(msg)["choices"][0]["message"]["content"] == "Answer"


def test_server_tool_blocks_are_left_out() -> None:
    """Web search calls and results have no Chat Completions form; the text around them stays."""
    search = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}}
    found = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
    result = translate(message(text("Searching."), search, found, text(" Done.")))["choices"][0]["message"]
    assert result["content"] == "Searching. Done."
    assert "tool_calls" not in result


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([tool_use("json_tool_call", {"name": "Ada", "age": 36})], '{"name":"Ada","age":36}'),
        ([text("Here: "), tool_use("json_tool_call", {})], "Here: {}"),
    ],
)
def test_json_mode_unwraps_the_json_tool_into_content(content: list[JSON], expected: str) -> None:
    """json_tool_call's input is the answer: content, no tool_calls, finish_reason stop."""
    chat = translate(message(*content, stop_reason="tool_use"), json_mode=True)
    (choice,) = chat["choices"]
    assert choice["message"]["content"] == expected
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


def test_without_json_mode_the_json_tool_is_an_ordinary_tool() -> None:
    """A tool that happens to be named json_tool_call is only unwrapped in json mode."""
    chat = translate(message(tool_use("json_tool_call", {}), stop_reason="tool_use"))
    assert chat["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "json_tool_call"


def test_a_message_without_id_or_usage_still_translates() -> None:
    """Missing optional fields give a fixed id and zero usage rather than an error."""
    chat = translate({"content": [text("hi")]})
    assert chat["id"] == "chatcmpl-ccproxy"
    assert chat["usage"]["total_tokens"] == 0


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_the_stream_and_the_whole_message_say_the_same(path: Path) -> None:
    """For every recording, translating the assembled Message equals accumulating the translated stream."""
    assembled = assert_anthropic_stream_grammar(events_of(path.read_bytes()))
    whole = translate(assembled)["choices"][0]
    chunks = replay(path.name)
    streamed = accumulate(chunks).choices[0]
    assert (whole["message"]["content"] or "") == streamed.message.content
    assert whole["finish_reason"] == streamed.finish_reason
    assert whole["message"].get("reasoning_content", "") == reasoning(chunks)
    calls = [
        (c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"]))
        for c in whole["message"].get("tool_calls", [])
    ]
    assert calls == [
        (c.id, c.function.name, orjson.loads(c.function.arguments))
        for c in streamed.message.tool_calls or []
        if c.type == "function"
    ]
    assert translate(assembled)["usage"] == chunks[-1]["usage"]
