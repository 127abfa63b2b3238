"""Chat Completions answer -> Anthropic Message (reference §4)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccproxy_core.core.errors import UpstreamError
from ccproxy_core.translate.chat_request import SYNTHETIC_SIGNATURE_PREFIX
from ccproxy_core.translate.chat_response import (
    anthropic_usage,
    chat_to_message,
    close_json_object,
    parse_tool_arguments,
    stop_reason_for,
)
from ccproxy_core.translate.tool_names import ToolNames, safe_tool_name

OPENAI = Path(__file__).parents[2] / "fixtures" / "recorded" / "openai"
NO_NAMES = ToolNames()


def completion(
    message: dict[str, Any], finish_reason: str | None = "stop", usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4.1",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def call(call_id: str | None, name: str, arguments: Any) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def translate(resp: dict[str, Any], names: ToolNames = NO_NAMES) -> dict[str, Any]:
    return chat_to_message(resp, model="claude-sonnet-4-5", names=names)


def test_recorded_parallel_tool_calls() -> None:
    """The recorded two-call answer becomes two tool_use blocks with parsed input and stop_reason tool_use."""
    message = translate(orjson.loads((OPENAI / "completion_parallel_tool_calls.json").read_bytes()))
    assert message["content"] == [
        {"type": "tool_use", "id": "call_jYdIdRZHxZTn5bWCq5jlMrJi", "name": "delete_file", "input": {"path": ".env"}},
        {
            "type": "tool_use",
            "id": "call_TmlTVWQbzrXCZ4jNsCVNbNqu",
            "name": "create_file",
            "input": {"path": "test.txt"},
        },
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {
        "input_tokens": 71,
        "output_tokens": 46,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_recorded_reasoning_model_answer() -> None:
    """The recorded o3-mini answer is one text block with the envelope Anthropic clients expect."""
    message = translate(orjson.loads((OPENAI / "completion_reasoning_o3_mini.json").read_bytes()))
    assert message["content"] == [
        {
            "type": "text",
            "text": (
                "The capital of Mexico is Mexico City. It is not only the seat of the federal government but also "
                "a major cultural, political, and economic center in the country."
            ),
        }
    ]
    assert re.fullmatch(r"msg_[0-9a-f]{24}", message["id"])
    assert (message["type"], message["role"]) == ("message", "assistant")
    assert message["model"] == "claude-sonnet-4-5"  # the name the client asked for
    assert (message["stop_reason"], message["stop_sequence"]) == ("end_turn", None)
    assert message["usage"]["output_tokens"] == 238


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_becomes_a_signed_thinking_block_first(field: str) -> None:
    """Reasoning (DeepSeek's or OpenRouter's field) is a thinking block first, signed by ccproxy."""
    message = translate(
        completion({field: "let me think", "content": "answer", "tool_calls": [call("c1", "Bash", '{"command":"ls"}')]})
    )
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["content"][0]["thinking"] == "let me think"
    assert message["content"][0]["signature"].startswith(SYNTHETIC_SIGNATURE_PREFIX)


def test_empty_text_is_skipped_next_to_tool_calls() -> None:
    """An empty content string does not become a text block when tools were called."""
    message = translate(completion({"content": "", "tool_calls": [call("c1", "Bash", "{}")]}, "tool_calls"))
    assert [b["type"] for b in message["content"]] == ["tool_use"]


def test_there_is_always_a_content_block() -> None:
    """An answer with nothing in it still has one (empty) text block."""
    assert translate(completion({"content": None}))["content"] == [{"type": "text", "text": ""}]


def test_tool_ids_are_made_safe_and_names_restored() -> None:
    """Kimi ids are cleaned, missing ids generated, and shortened names mapped back."""
    long_name = "mcp__server__" + "x" * 70
    names = ToolNames.of([long_name])
    message = translate(
        completion(
            {
                "content": None,
                "tool_calls": [call("functions.Bash:0", "Bash", "{}"), call(None, safe_tool_name(long_name), "{}")],
            }
        ),
        names,
    )
    first, second = message["content"]
    assert first["id"] == "functions_Bash_0"
    assert re.fullmatch(r"toolu_[0-9a-f]{24}", second["id"])
    assert second["name"] == long_name


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ({"a": 1}, {"a": 1}),  # already an object (some providers)
        ("", {}),
        (None, {}),
        ('{"a": 1,}', {"a": 1}),  # trailing comma
        ('{"a": {"b": [1, 2,],},}', {"a": {"b": [1, 2]}}),
        ('{"path": "/tmp/x', {"path": "/tmp/x"}),  # cut off
        ('{"a": [1, {"b": tr', {"a": [1, {"b": True}]}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('"{\\"a\\": 1}"', {"a": 1}),  # double-encoded
        ("[1, 2]", {}),  # not an object
        ("not json", {}),
    ],
)
def test_tool_arguments_are_parsed_repaired_or_empty(arguments: Any, expected: dict[str, Any]) -> None:
    """Arguments parse strictly, else are repaired, else become {}; input is never a string."""
    assert parse_tool_arguments(arguments) == expected


@pytest.mark.parametrize(
    ("prefix", "suffix"),
    [
        ('{"a": 1}', ""),
        ("", "{}"),
        ("  ", "{}"),
        ('{"a": "x', '"}'),
        ('{"a": [1, 2', "]}"),
        ('{"a":', "null}"),
        ('{"a"', ":null}"),
        ('{"a": 1,', None),  # a sent comma cannot be taken back
        ("[1]", None),
    ],
)
def test_close_json_object_only_appends(prefix: str, suffix: str | None) -> None:
    """What a stream may append to sent arguments to make them an object, or None when nothing can."""
    assert close_json_object(prefix) == suffix


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(deadline=None)
@given(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4), st.data())
def test_any_cut_of_valid_arguments_closes_to_an_object(value: dict[str, Any], data: st.DataObject) -> None:
    """Arguments cut anywhere either close by appending or are reported as not closable, never wrongly."""
    raw = orjson.dumps(value).decode()
    prefix = raw[: data.draw(st.integers(0, len(raw)))]
    suffix = close_json_object(prefix)
    if suffix is not None:
        assert isinstance(orjson.loads(prefix + suffix), dict)
    assert isinstance(parse_tool_arguments(prefix), dict)


@pytest.mark.parametrize(
    ("finish_reason", "has_tool", "stop_reason"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("function_call", True, "tool_use"),
        ("content_filter", False, "end_turn"),
        ("stop", True, "tool_use"),  # provider said stop after calling tools
        ("length", True, "max_tokens"),  # cut-off calls must not run
        (None, False, "end_turn"),
        ("something_new", False, "end_turn"),
    ],
)
def test_stop_reason(finish_reason: str | None, has_tool: bool, stop_reason: str) -> None:
    """finish_reason maps to stop_reason, with tool_use winning whenever tools were called."""
    assert stop_reason_for(finish_reason, has_tool) == stop_reason


def counts(input_tokens: int, output: int, written: int, read: int) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
    }


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {"prompt_tokens": 100, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 60}},
            counts(40, 7, 0, 60),
        ),
        (
            {
                "prompt_tokens": 100,
                "completion_tokens": 7,
                "prompt_cache_hit_tokens": 30,
                "prompt_cache_miss_tokens": 70,
            },
            counts(70, 7, 0, 30),
        ),  # DeepSeek
        (
            {
                "prompt_tokens": 100,
                "completion_tokens": 1,
                "prompt_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 20},
            },
            counts(70, 1, 20, 10),
        ),  # OpenRouter
        (
            {"prompt_tokens": 5, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 9}},
            counts(0, 1, 0, 9),
        ),
        (None, counts(0, 0, 0, 0)),
    ],
)
def test_usage_mapping(usage: dict[str, Any] | None, expected: dict[str, int]) -> None:
    """OpenAI, DeepSeek and OpenRouter cache counters map to Anthropic's; input never goes negative."""
    assert anthropic_usage(usage) == expected


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "upstream exploded", "code": 500}},
        {"id": "x", "choices": []},
        {"id": "x"},
    ],
)
def test_a_200_without_an_answer_is_an_upstream_error(body: dict[str, Any]) -> None:
    """A 200 body with an error or no choices raises UpstreamError instead of an empty message."""
    with pytest.raises(UpstreamError):
        translate(body)


def test_openrouter_error_code_becomes_the_status() -> None:
    """An in-band error carrying an HTTP code keeps it (429 stays a rate limit)."""
    with pytest.raises(UpstreamError) as caught:
        translate({"error": {"message": "slow down", "code": 429}})
    assert caught.value.http_status == 429
    assert caught.value.type == "rate_limit_error"


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(obj=st.dictionaries(st.text(max_size=4), _json_values, max_size=4), cut=st.integers(0, 300), ascii=st.booleans())
def test_any_cut_of_an_object_closes_to_an_object(obj: dict[str, Any], cut: int, ascii: bool) -> None:
    """Whatever a stream cut off, appending the suffix gives an object; the whole text parses as itself."""
    text = json.dumps(obj, ensure_ascii=ascii)
    prefix = text[:cut]
    suffix = close_json_object(prefix)
    if suffix is not None:
        assert isinstance(orjson.loads(prefix + suffix), dict)
    assert isinstance(parse_tool_arguments(prefix), dict)
    assert parse_tool_arguments(text) == obj
