"""The Anthropic Messages stream grammar, as one assertion any stream test can reuse.

`assert_anthropic_stream_grammar(events)` checks a list of `(event name, payload)` pairs the
way Claude Code's client consumes them (a delta for a block that is not open, or of the
wrong type, crashes it with "Content block not found" / "Content block is not a ... block"),
and returns the Message the events add up to, so a test can go on to compare content.

Rules:
- exactly one `message_start`, first; `message_stop` last, after at least one
  `message_delta`, unless the stream ends in an `error` event (which may then be the only
  event, for a failure before anything was sent);
- every payload's `type` equals its event name; `ping` may appear anywhere;
- block indexes are dense 0..n-1 in order, blocks never overlap, every started block is stopped;
- each delta targets the open block, of the matching type: text_delta -> text,
  input_json_delta -> tool_use, thinking_delta / signature_delta -> thinking; a thinking
  block ends with exactly one signature_delta;
- the input_json_delta fragments of a tool_use join to a JSON object (an empty join is `{}`,
  as Anthropic itself sends for a tool without arguments);
- no block event after `message_delta`.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

JSON = dict[str, Any]

_DELTA_FOR = {
    "text_delta": "text",
    "input_json_delta": "tool_use",
    "thinking_delta": "thinking",
    "signature_delta": "thinking",
}
_STOP_REASONS = {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"}
_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")


def assert_anthropic_stream_grammar(events: list[tuple[str, JSON]]) -> JSON:
    """Assert the stream is well formed; return the Message it builds."""
    assert events, "empty stream"
    for name, payload in events:
        assert payload.get("type") == name, f"payload type {payload.get('type')!r} under event {name!r}"
    names = [name for name, _ in events]
    failed = names[-1] == "error"
    assert names.count("error") == int(failed), "an error event may only come last"
    if failed and len(events) == 1:
        return {"content": [], "error": events[0][1]["error"]}
    assert names[0] == "message_start", f"first event is {names[0]}"
    assert names.count("message_start") == 1, "more than one message_start"
    if not failed:
        assert names[-1] == "message_stop", f"last event is {names[-1]}"
        assert names.count("message_stop") == 1, "more than one message_stop"
        assert "message_delta" in names, "no message_delta"

    message: JSON = {**events[0][1]["message"], "content": []}
    open_block: JSON | None = None
    pieces: list[str] = []
    signed = False
    after_delta = False
    for position, (name, payload) in enumerate(events[1:], start=1):
        where = f"event {position} ({name})"
        if name == "content_block_start":
            assert not after_delta, f"{where}: block after message_delta"
            assert open_block is None, f"{where}: block {open_block} still open"
            assert payload["index"] == len(message["content"]), f"{where}: index not dense"
            block = dict(payload["content_block"])
            _check_start(block, where)
            open_block, pieces, signed = block, [], False
            message["content"].append(block)
        elif name == "content_block_delta":
            assert open_block is not None, f"{where}: delta with no open block (Content block not found)"
            assert payload["index"] == len(message["content"]) - 1, f"{where}: delta to a block not open"
            delta = payload["delta"]
            wanted = _DELTA_FOR.get(delta["type"])
            kind = open_block["type"]
            assert wanted == kind, f"{where}: {delta['type']} sent to a {kind} block"
            assert not signed, f"{where}: delta after signature_delta"
            if delta["type"] == "text_delta":
                open_block["text"] += _str(delta["text"], where)
            elif delta["type"] == "thinking_delta":
                open_block["thinking"] += _str(delta["thinking"], where)
            elif delta["type"] == "signature_delta":
                open_block["signature"] = _str(delta["signature"], where)
                signed = True
            else:
                pieces.append(_str(delta["partial_json"], where))
        elif name == "content_block_stop":
            assert open_block is not None, f"{where}: stop with no open block"
            assert payload["index"] == len(message["content"]) - 1, f"{where}: stop for a block not open"
            if open_block["type"] == "thinking":
                assert signed, f"{where}: thinking block closed without signature_delta"
            if open_block["type"] == "tool_use":
                joined = "".join(pieces)
                value = orjson.loads(joined) if joined.strip() else {}
                assert isinstance(value, dict), f"{where}: tool input {joined!r} is not a JSON object"
                open_block["input"] = value
            open_block = None
        elif name == "message_delta":
            assert open_block is None, f"{where}: message_delta while block {open_block} is open"
            stop_reason = payload["delta"]["stop_reason"]
            assert stop_reason in _STOP_REASONS, f"{where}: stop_reason {stop_reason!r}"
            usage = payload["usage"]
            assert isinstance(usage.get("output_tokens"), int), f"{where}: usage without output_tokens"
            message["stop_reason"] = stop_reason
            message["usage"] = {**message["usage"], **usage}
            after_delta = True
        elif name == "message_start":
            raise AssertionError(f"{where}: second message_start")
        elif name == "error":
            assert set(payload["error"]) >= {"type", "message"}, f"{where}: error without type/message"
            message["error"] = payload["error"]
        else:
            assert name in ("ping", "message_stop"), f"{where}: unknown event"
    assert open_block is None, f"block {open_block} never stopped"
    return message


def _check_start(block: JSON, where: str) -> None:
    kind = block.get("type")
    if kind == "text":
        assert block.get("text") == "", f"{where}: text block must start empty"
    elif kind == "thinking":
        assert block.get("thinking") == "", f"{where}: thinking must start empty"
        assert block.get("signature") == "", f"{where}: thinking must start unsigned"
    elif kind == "tool_use":
        tool_id = block.get("id")
        assert isinstance(tool_id, str), f"{where}: tool without id"
        assert _TOOL_ID.fullmatch(tool_id), f"{where}: bad tool id {tool_id!r}"
        assert isinstance(block.get("name"), str), f"{where}: tool without name"
        assert block["name"], f"{where}: tool with an empty name"
        assert block.get("input") == {}, f"{where}: tool_use must start with input {{}}"
    else:
        raise AssertionError(f"{where}: unexpected block type {kind!r}")


def _str(value: Any, where: str) -> str:
    assert isinstance(value, str), f"{where}: expected a string, got {value!r}"
    return value
