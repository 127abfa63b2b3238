"""Anthropic SSE -> Responses events: the state machine, event in -> events out, and every recording replayed.

A replayed recording must give valid `ResponseStreamEvent`s numbered from 0, which the openai
SDK's own stream accumulator turns into the same `response` as `message_to_response` makes of
the whole Message (streamed and non-streamed answers agree).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai import omit
from openai._models import construct_type
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from ccproxy_core.core.errors import RateLimited
from ccproxy_core.core.sse import SSEDecoder
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.responses_request import responses_to_messages
from ccproxy_core.translate.responses_response import ResponsesPlan, decode_thinking, message_to_response
from ccproxy_core.translate.responses_stream import Phase, ResponsesStreamTranslator
from tests.specs import validator

FIXTURES = Path(__file__).parents[2] / "fixtures"
ANTHROPIC = FIXTURES / "recorded" / "anthropic"
RECORDINGS = sorted(ANTHROPIC.glob("*.sse"))
CREATED = 1_700_000_000
MODEL = "claude-via-proxy"
TOOLS = [
    {"type": "function", "name": name, "parameters": {"type": "object", "properties": {}}}
    for name in ("get_weather", "pelican_name_generator", "fixed_version", "calculate_distance", "get_capital")
]
PLAN = responses_to_messages({"model": MODEL, "input": "hi", "tools": TOOLS}, model=MODEL)[1]


def events_of(raw: bytes, cuts: list[int] | None = None) -> list[tuple[str, JSON]]:
    decoder = SSEDecoder()
    edges = [0, *(cuts or []), len(raw)]
    events = [e for a, b in itertools.pairwise(edges) for e in decoder.feed(raw[a:b])]
    return [(e.event, orjson.loads(e.data)) for e in events + decoder.flush()]


def translate(events: list[tuple[str, JSON]], plan: ResponsesPlan = PLAN) -> list[JSON]:
    translator = ResponsesStreamTranslator(model=MODEL, plan=plan, created_at=CREATED)
    out = [e for name, payload in events for e in translator.feed(name, payload)]
    return out + translator.finish()


def final_response(events: list[JSON]) -> Any:
    """What the openai SDK's own accumulator makes of the events."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(construct_type(type_=ResponseStreamEvent, value=event))  # type: ignore[arg-type]
    assert state._completed_response is not None
    return state._completed_response


def whole_message(events: list[tuple[str, JSON]]) -> JSON:
    """The Message a recorded stream adds up to (what a non-streaming call would have answered)."""
    message: JSON = {}
    blocks: list[JSON] = []
    partial: dict[int, str] = {}
    for name, payload in events:
        if name == "message_start":
            message = dict(payload["message"])
        elif name == "content_block_start":
            blocks.append(dict(payload["content_block"]))
        elif name == "content_block_delta":
            block, delta = blocks[payload["index"]], payload["delta"]
            kind = delta["type"]
            if kind == "text_delta":
                block["text"] += delta["text"]
            elif kind == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif kind == "signature_delta":
                block["signature"] += delta["signature"]
            elif kind == "input_json_delta":
                partial[payload["index"]] = partial.get(payload["index"], "") + delta["partial_json"]
        elif name == "message_delta":
            message["stop_reason"] = payload["delta"]["stop_reason"]
            message["usage"] = {**message["usage"], **payload["usage"]}
    for index, raw in partial.items():
        blocks[index]["input"] = orjson.loads(raw or "{}")
    return {**message, "content": blocks}


def meaning(output: list[JSON]) -> list[JSON]:
    """Output items with arguments parsed: the stream passes the provider's own JSON spacing on."""
    return [{**item, "arguments": orjson.loads(item["arguments"])} if "arguments" in item else item for item in output]


def types(events: list[JSON]) -> list[str]:
    return [e["type"].removeprefix("response.") for e in events]


# -- every recording ----------------------------------------------------------------------


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_recorded_stream_gives_valid_numbered_events(path: Path) -> None:
    """Each event validates against the OpenAI spec, sequence numbers count from 0, one final event ends it."""
    events = translate(events_of(path.read_bytes()))
    check = validator("openai", "ResponseStreamEvent", nullable_as_union=True)
    for event in events:
        assert check.is_valid(event), (event["type"], next(iter(check.iter_errors(event))).message)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert types(events)[:2] == ["created", "in_progress"]
    assert types(events)[-1] in ("completed", "incomplete")


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_streamed_and_whole_answers_agree(path: Path) -> None:
    """The SDK's accumulated stream equals message_to_response of the whole Message, item for item."""
    events = events_of(path.read_bytes())
    streamed = final_response(translate(events)).model_dump(exclude_none=True)
    whole = message_to_response(whole_message(events), model=MODEL, plan=PLAN, created_at=CREATED)
    assert meaning(orjson.loads(orjson.dumps(streamed["output"]))) == meaning(whole["output"])
    assert streamed["usage"] == whole["usage"] and streamed["status"] == whole["status"]


@given(cuts=st.lists(st.integers(min_value=1, max_value=5000), max_size=12))
def test_any_chunking_of_the_bytes_gives_the_same_events(cuts: list[int]) -> None:
    """However the upstream bytes are split, the translated events are the same."""
    raw = (ANTHROPIC / "stream_thinking_then_tool_use.sse").read_bytes()
    whole = translate(events_of(raw))
    assert translate(events_of(raw, sorted({c % len(raw) for c in cuts if c % len(raw)}))) == whole


# -- the state machine, event in -> events out ---------------------------------------------


def start(message_id: str = "msg_1") -> tuple[str, JSON]:
    return "message_start", {"type": "message_start", "message": {"id": message_id, "usage": {"input_tokens": 3}}}


def block(index: int, content_block: JSON) -> tuple[str, JSON]:
    return "content_block_start", {"type": "content_block_start", "index": index, "content_block": content_block}


def delta(index: int, **fields: Any) -> tuple[str, JSON]:
    return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": fields}


def stop(index: int) -> tuple[str, JSON]:
    return "content_block_stop", {"type": "content_block_stop", "index": index}


def end(reason: str = "end_turn") -> list[tuple[str, JSON]]:
    return [
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": reason}, "usage": {"output_tokens": 2}}),
        ("message_stop", {"type": "message_stop"}),
    ]


TEXT = {"type": "text", "text": ""}

TABLE: list[tuple[str, list[tuple[str, JSON]], list[str]]] = [
    (
        "text",
        [start(), block(0, TEXT), delta(0, type="text_delta", text="Hi"), stop(0), *end()],
        [
            "created",
            "in_progress",
            "output_item.added",
            "content_part.added",
            "output_text.delta",
            "output_text.done",
            "content_part.done",
            "output_item.done",
            "completed",
        ],
    ),
    (
        "a blank first block is dropped",
        [
            start(),
            block(0, TEXT),
            delta(0, type="text_delta", text="\n\n"),
            stop(0),
            block(1, TEXT),
            delta(1, type="text_delta", text="A"),
            stop(1),
            *end(),
        ],
        [
            "created",
            "in_progress",
            "output_item.added",
            "content_part.added",
            "output_text.delta",
            "output_text.done",
            "content_part.done",
            "output_item.done",
            "completed",
        ],
    ),
    (
        "thinking",
        [
            start(),
            block(0, {"type": "thinking", "thinking": "", "signature": ""}),
            delta(0, type="thinking_delta", thinking="Hmm"),
            delta(0, type="signature_delta", signature="S"),
            stop(0),
            *end(),
        ],
        [
            "created",
            "in_progress",
            "output_item.added",
            "reasoning_summary_part.added",
            "reasoning_summary_text.delta",
            "reasoning_summary_text.done",
            "reasoning_summary_part.done",
            "output_item.done",
            "completed",
        ],
    ),
    (
        "a tool without arguments gets {}",
        [
            start(),
            block(0, {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}),
            delta(0, type="input_json_delta", partial_json=""),
            stop(0),
            *end("tool_use"),
        ],
        [
            "created",
            "in_progress",
            "output_item.added",
            "function_call_arguments.delta",
            "function_call_arguments.done",
            "output_item.done",
            "completed",
        ],
    ),
    (
        "max_tokens is incomplete",
        [start(), block(0, TEXT), delta(0, type="text_delta", text="cut"), stop(0), *end("max_tokens")],
        [
            "created",
            "in_progress",
            "output_item.added",
            "content_part.added",
            "output_text.delta",
            "output_text.done",
            "content_part.done",
            "output_item.done",
            "incomplete",
        ],
    ),
    (
        "an error event fails the response",
        [
            start(),
            block(0, TEXT),
            delta(0, type="text_delta", text="a"),
            ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ],
        ["created", "in_progress", "output_item.added", "content_part.added", "output_text.delta", "failed"],
    ),
    (
        "pings and unknown events send nothing",
        [start(), ("ping", {"type": "ping"}), ("new_kind", {}), *end()],
        ["created", "in_progress", "completed"],
    ),
    (
        "a delta with no open block sends nothing",
        [start(), delta(0, type="text_delta", text="x"), *end()],
        ["created", "in_progress", "completed"],
    ),
]


@pytest.mark.parametrize(("events", "expected"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_events_in_events_out(events: list[tuple[str, JSON]], expected: list[str]) -> None:
    """Each Anthropic event sequence gives exactly these Responses events."""
    assert types(translate(events)) == expected


def test_thinking_comes_back_signed_in_encrypted_content() -> None:
    """The reasoning item carries the block, signature and all, for the next turn to restore."""
    events = translate(
        [
            start(),
            block(0, {"type": "thinking", "thinking": "", "signature": ""}),
            delta(0, type="thinking_delta", thinking="Hmm"),
            delta(0, type="signature_delta", signature="SIG"),
            stop(0),
            *end(),
        ]
    )
    item = events[-1]["response"]["output"][0]
    assert item["summary"] == [{"type": "summary_text", "text": "Hmm"}]
    assert decode_thinking(item["encrypted_content"]) == {"type": "thinking", "thinking": "Hmm", "signature": "SIG"}


def test_custom_and_namespaced_tools_come_back_as_the_client_named_them() -> None:
    """A custom tool's call is a custom_tool_call with its string; a namespaced function keeps its namespace."""
    body = {
        "model": MODEL,
        "input": "hi",
        "tools": [
            {"type": "custom", "name": "apply_patch", "description": "Patch files"},
            {
                "type": "namespace",
                "name": "agents",
                "description": "Agents",
                "tools": [{"type": "function", "name": "spawn", "parameters": {}}],
            },
        ],
    }
    plan = responses_to_messages(body, model=MODEL)[1]
    events = translate(
        [
            start(),
            block(0, {"type": "tool_use", "id": "t1", "name": "apply_patch", "input": {}}),
            delta(0, type="input_json_delta", partial_json='{"input": "*** Begin'),
            delta(0, type="input_json_delta", partial_json=' Patch"}'),
            stop(0),
            block(1, {"type": "tool_use", "id": "t2", "name": "agents__spawn", "input": {}}),
            delta(1, type="input_json_delta", partial_json="{}"),
            stop(1),
            *end("tool_use"),
        ],
        plan,
    )
    assert "custom_tool_call_input.done" in types(events)
    assert [item.type for item in final_response(events).output] == ["custom_tool_call", "function_call"]
    custom, spawn = events[-1]["response"]["output"]
    assert custom == {**custom, "type": "custom_tool_call", "name": "apply_patch", "input": "*** Begin Patch"}
    assert spawn == {**spawn, "type": "function_call", "name": "spawn", "namespace": "agents", "arguments": "{}"}


def test_json_mode_tool_streams_as_output_text() -> None:
    """With text.format json_schema, the JSON tool's input is the message text."""
    body = {
        "model": MODEL,
        "input": "hi",
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
    }
    plan = responses_to_messages(body, model=MODEL)[1]
    events = translate(
        [
            start(),
            block(0, {"type": "tool_use", "id": "t", "name": "json_tool_call", "input": {}}),
            delta(0, type="input_json_delta", partial_json='{"a":'),
            delta(0, type="input_json_delta", partial_json=" 1}"),
            stop(0),
            *end("tool_use"),
        ],
        plan,
    )
    assert final_response(events).output_text == '{"a": 1}'


def test_a_stream_cut_before_message_delta_fails() -> None:
    """An upstream that ends mid-answer gives response.failed, never a completed half answer."""
    events = translate([start(), block(0, TEXT), delta(0, type="text_delta", text="half")])
    assert types(events)[-1] == "failed" and events[-1]["response"]["status"] == "failed"


def test_fail_before_anything_still_opens_the_response() -> None:
    """A failure before message_start sends created first: the SDK needs it before any other event."""
    translator = ResponsesStreamTranslator(model=MODEL, plan=PLAN, created_at=CREATED)
    events = translator.fail(RateLimited("slow down"))
    assert types(events) == ["created", "in_progress", "failed"]
    assert events[-1]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "slow down"}
    assert translator.phase is Phase.CLOSED and translator.done and translator.finish() == []
