"""Anthropic Messages SSE events -> OpenAI Responses `response.*` events, one state machine per stream.

The shell decodes the upstream bytes, parses each event and calls `feed(name, payload)`; each
returned dict is written as `event: <type>` + `data: <json>`. At the end of the upstream body
it calls `finish()`, on a failure `fail(err)`. A Chat Completions upstream reaches this through
`ChatStreamTranslator` first, which makes Anthropic events of its chunks.

One `Phase`, and only the moves in `_TRANSITIONS` exist:

    NEW ──message_start──> OPEN ──content_block_start──> LEADING | TEXT | THINKING
                            ^                            | CALL | CUSTOM | JSON | SKIP
                            └────────content_block_stop───┘
    LEADING ──non-blank text──> TEXT        (a blank block 0 is dropped, as `message_to_chat` does)
    OPEN ──message_delta──> STOPPED ──message_stop / finish()──> CLOSED (completed or incomplete)
    any phase but CLOSED ──error event / fail()──> CLOSED (response.failed)

What each block becomes:

    text        output_item.added(message), content_part.added, output_text.delta*,
                output_text.done, content_part.done, output_item.done
    thinking    output_item.added(reasoning), reasoning_summary_part.added and
                reasoning_summary_text.delta* (from the first thinking text), ...done,
                output_item.done with `encrypted_content` (the block, signature and all)
    tool_use    output_item.added(function_call), function_call_arguments.delta*, .done,
                output_item.done; a custom tool's input is one string inside the JSON
                `{"input": ...}`, so CUSTOM holds the fragments and sends the string whole
                (custom_tool_call_input.delta / .done) when the block stops
    JSON tool   (text.format) a message item whose text is the tool's input, as it streams
    others      nothing (server tools and their results); redacted thinking is one
                reasoning item, added and done at once

Every event carries `sequence_number`, counting from 0. `response.created` and
`response.in_progress` open the stream; the last event is `response.completed`,
`response.incomplete` (max tokens, refusal) or `response.failed`, each carrying the whole
response, as the openai SDK and Codex CLI build their result from it. An event that makes no
sense in the current phase (a delta with no open block, a second `message_start`) is
ignored: Anthropic may add event types, and compatible upstreams are not always strict.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import orjson
from attrs import define, field

from ccproxy_core.core.errors import ProxyError, UpstreamError, UpstreamUnreachable
from ccproxy_core.core.ids import new_id
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.chat_response import parse_tool_arguments
from ccproxy_core.translate.messages_response import dumps_compact
from ccproxy_core.translate.responses_response import (
    CallTarget,
    ResponsesPlan,
    call_item,
    custom_input,
    encode_thinking,
    item_id,
    message_item,
    output_text,
    reasoning_item,
    response_id,
    response_object,
    responses_usage,
    status_for,
)


class Phase(enum.Enum):
    NEW = "new"  # nothing sent yet
    OPEN = "open"  # response.created sent; no block open
    LEADING = "leading"  # block 0 is text holding only whitespace so far: nothing sent for it
    TEXT = "text"  # a message item is open
    THINKING = "thinking"  # a reasoning item is open
    CALL = "call"  # a function_call item is open
    CUSTOM = "custom"  # a custom_tool_call item is open; its input waits for the block's end
    JSON = "json"  # the JSON-mode tool, streamed as a message item's text
    SKIP = "skip"  # a block with nothing to stream
    STOPPED = "stopped"  # message_delta seen; the final event waits for message_stop
    CLOSED = "closed"  # completed, incomplete or failed sent; nothing more goes out


_BLOCKS = frozenset({Phase.LEADING, Phase.TEXT, Phase.THINKING, Phase.CALL, Phase.CUSTOM, Phase.JSON, Phase.SKIP})

_TRANSITIONS: dict[tuple[Phase, str], Phase] = {
    (Phase.NEW, "message_start"): Phase.OPEN,
    **{(Phase.OPEN, block.value): block for block in _BLOCKS},
    (Phase.LEADING, "text"): Phase.TEXT,
    **{(block, "block_stop"): Phase.OPEN for block in _BLOCKS},
    (Phase.OPEN, "message_delta"): Phase.STOPPED,
    (Phase.STOPPED, "message_delta"): Phase.STOPPED,
    (Phase.OPEN, "message_stop"): Phase.CLOSED,
    (Phase.STOPPED, "message_stop"): Phase.CLOSED,
    **{(phase, "fail"): Phase.CLOSED for phase in Phase if phase is not Phase.CLOSED},
}

# An Anthropic error type -> the Responses `error.code` (the spec's ResponseErrorCode values).
_ERROR_CODES: dict[str, str] = {
    "rate_limit_error": "rate_limit_exceeded",
    "invalid_request_error": "invalid_prompt",
}


def failed_error(err: ProxyError) -> JSON:
    """The `error` of a failed `response` object (code and message) for a ccproxy error."""
    return {"code": _ERROR_CODES.get(err.type, "server_error"), "message": err.message}


@define(slots=True)
class _Item:
    """The output item being streamed."""

    id: str
    index: int
    parts: list[str] = field(factory=list)  # text, thinking or argument fragments
    call_id: str = ""
    target: CallTarget | None = None
    signature: str = ""
    summary_open: bool = False

    def ids(self, **extra: int) -> JSON:
        """The fields that place an event: its item, and `content_index` / `summary_index` where given."""
        return {"item_id": self.id, "output_index": self.index, **extra}


@define(kw_only=True)
class ResponsesStreamTranslator:
    model: str
    plan: ResponsesPlan
    created_at: int
    _phase: Phase = field(default=Phase.NEW, init=False)
    _seq: int = field(default=0, init=False)
    _id: str = field(default="", init=False)
    _item: _Item | None = field(default=None, init=False)
    _output: list[JSON] = field(factory=list, init=False)  # finished items, for the final response
    _next_index: int = field(default=0, init=False)
    _usage: dict[str, Any] = field(factory=dict, init=False)
    _stop_reason: Any = field(default=None, init=False)
    _held: str = field(default="", init=False)  # whitespace of a LEADING block

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def done(self) -> bool:
        """The final event went out: the client has its answer, and may hang up."""
        return self._phase is Phase.CLOSED

    def feed(self, event: str, payload: JSON) -> list[JSON]:
        """One upstream SSE event (its name and parsed data) -> the events to send now."""
        handler = _EVENTS.get(event or str(payload.get("type", "")))
        if handler is None or self._phase is Phase.CLOSED:
            return []  # `ping` and event types newer than this code
        out: list[JSON] = []
        handler(self, payload, out)
        return out

    def finish(self) -> list[JSON]:
        """The upstream body ended: the final event, or `response.failed` for a cut-off answer."""
        if self._phase is Phase.CLOSED:
            return []
        if self._phase is Phase.STOPPED:
            out: list[JSON] = []
            self._on_message_stop({}, out)
            return out
        return self.fail(UpstreamUnreachable("the provider ended the stream before the answer was complete"))

    def fail(self, err: ProxyError) -> list[JSON]:
        """End the stream with `response.failed` (Codex ignores a bare `error` event)."""
        if self._phase is Phase.CLOSED:
            return []
        out: list[JSON] = []
        if self._phase is Phase.NEW:
            self._open(None, out)
        self._phase = _TRANSITIONS[(self._phase, "fail")]
        self._emit(out, "response.failed", response=self._response("failed", error=failed_error(err)))
        return out

    # -- plumbing -------------------------------------------------------------------------

    def _move(self, event: str) -> None:
        self._phase = _TRANSITIONS[(self._phase, event)]

    def _emit(self, out: list[JSON], kind: str, **fields: Any) -> None:
        out.append({"type": kind, **fields, "sequence_number": self._seq})
        self._seq += 1

    def _response(self, status: str, **extra: Any) -> JSON:
        return response_object(
            resp_id=self._id,
            created_at=self.created_at,
            model=self.model,
            status=status,
            output=list(self._output),
            echo=self.plan.echo,
            **extra,
        )

    def _open(self, message_id: Any, out: list[JSON]) -> None:
        self._id = response_id(message_id) if message_id else new_id("resp_")
        self._move("message_start")
        snapshot = self._response("in_progress")
        self._emit(out, "response.created", response=snapshot)
        self._emit(out, "response.in_progress", response=snapshot)

    def _new_item(self, prefix: str, **extra: Any) -> _Item:
        item = _Item(item_id(prefix, self._id, self._next_index), self._next_index, **extra)
        self._next_index += 1
        return item

    def _added(self, out: list[JSON], item: _Item, payload: JSON) -> None:
        self._item = item
        self._emit(out, "response.output_item.added", output_index=item.index, item=payload)

    def _item_done(self, out: list[JSON], item: _Item, payload: JSON) -> None:
        self._emit(out, "response.output_item.done", output_index=item.index, item=payload)
        self._output.append(payload)
        self._item = None

    # -- message events -----------------------------------------------------------------

    def _on_message_start(self, payload: JSON, out: list[JSON]) -> None:
        if self._phase is not Phase.NEW:
            return
        message = payload.get("message")
        message = message if isinstance(message, dict) else {}
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage.update(usage)
        self._open(message.get("id"), out)

    def _on_message_delta(self, payload: JSON, out: list[JSON]) -> None:
        if self._phase is Phase.NEW:
            self._open(None, out)
        self._end_block(out)
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self._usage.update(usage)  # cumulative; older streams send only output_tokens
        delta = payload.get("delta")
        if isinstance(delta, dict) and delta.get("stop_reason"):
            self._stop_reason = delta["stop_reason"]
        self._move("message_delta")

    def _on_message_stop(self, payload: JSON, out: list[JSON]) -> None:
        if self._phase is Phase.NEW:
            self._open(None, out)
        self._end_block(out)
        status, incomplete = status_for(self._stop_reason)
        self._move("message_stop")
        response = self._response(status, usage=responses_usage(self._usage), incomplete=incomplete)
        self._emit(out, f"response.{status}", response=response)

    def _on_error(self, payload: JSON, out: list[JSON]) -> None:
        # The status is unknown in-band and does not matter here: the code comes from the type.
        out.extend(self.fail(UpstreamError.from_anthropic(500, payload)))

    # -- content blocks -----------------------------------------------------------------

    def _on_block_start(self, payload: JSON, out: list[JSON]) -> None:
        if self._phase is Phase.NEW:
            self._open(None, out)
        elif self._phase is Phase.STOPPED:
            return
        self._end_block(out)  # tolerate a missing content_block_stop
        block = payload.get("content_block")
        block = block if isinstance(block, dict) else {}
        kind = block.get("type")
        if kind == "text":
            self._move("leading" if payload.get("index") == 0 else "text")
            if self._phase is Phase.TEXT:
                self._start_message(out)
            self._on_text({"text": block.get("text")}, out)  # compatible upstreams may start with text
        elif kind == "thinking":
            self._move("thinking")
            item = self._new_item("rs")
            self._added(out, item, reasoning_item(item.id, "", None))
            self._on_thinking({"thinking": block.get("thinking")}, out)
        elif kind == "redacted_thinking":
            self._move("skip")
            item = self._new_item("rs")
            whole = reasoning_item(item.id, "", encode_thinking(block))
            self._added(out, item, whole)
            self._item_done(out, item, whole)
        elif kind == "tool_use":
            self._start_tool(block, out)
        else:
            self._move("skip")  # server tools and their results: nothing a Responses client runs

    def _start_message(self, out: list[JSON]) -> None:
        item = self._new_item("msg")
        self._added(out, item, message_item(item.id, None, "in_progress"))
        self._emit(out, "response.content_part.added", **item.ids(content_index=0), part=output_text(""))

    def _start_tool(self, block: JSON, out: list[JSON]) -> None:
        name = str(block.get("name") or "")
        given = block.get("input")
        first = dumps_compact(given) if isinstance(given, dict) and given else ""
        if self.plan.is_json_tool(name):
            self._move("json")
            self._start_message(out)
            self._on_text({"text": first}, out)
            return
        target = self.plan.target(name)
        custom = target.kind == "custom"
        self._move("custom" if custom else "call")
        item = self._new_item("ctc" if custom else "fc", call_id=str(block.get("id") or ""), target=target)
        self._added(out, item, call_item(item.id, target, item.call_id, "", "in_progress"))
        if first:
            self._on_arguments({"partial_json": first}, out)

    def _on_block_delta(self, payload: JSON, out: list[JSON]) -> None:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return
        handler = _DELTAS.get(self._phase, {}).get(str(delta.get("type", "")))
        if handler is not None:
            handler(self, delta, out)

    def _on_block_stop(self, payload: JSON, out: list[JSON]) -> None:
        self._end_block(out)

    def _end_block(self, out: list[JSON]) -> None:
        phase, item = self._phase, self._item
        if phase not in _BLOCKS:
            return
        self._move("block_stop")
        self._held = ""
        if item is None:
            return  # LEADING that stayed blank, SKIP
        text = "".join(item.parts)
        if phase in (Phase.TEXT, Phase.JSON):
            if phase is Phase.JSON and not text:
                text = "{}"
                self._text_delta(out, item, text)
            ids = item.ids(content_index=0)
            self._emit(out, "response.output_text.done", **ids, text=text, logprobs=[])
            self._emit(out, "response.content_part.done", **ids, part=output_text(text))
            self._item_done(out, item, message_item(item.id, text, "completed"))
        elif phase is Phase.THINKING:
            if item.summary_open:
                ids = item.ids(summary_index=0)
                self._emit(out, "response.reasoning_summary_text.done", **ids, text=text)
                part = {"type": "summary_text", "text": text}
                self._emit(out, "response.reasoning_summary_part.done", **ids, part=part)
            block = {"type": "thinking", "thinking": text, "signature": item.signature}
            encrypted = encode_thinking(block) if item.signature else None  # unsigned: nothing to restore
            self._item_done(out, item, reasoning_item(item.id, text, encrypted))
        elif item.target is not None:
            self._end_call(phase, item, text, out)

    def _end_call(self, phase: Phase, item: _Item, text: str, out: list[JSON]) -> None:
        assert item.target is not None
        ids = item.ids()
        if phase is Phase.CUSTOM:
            value = custom_input(parse_tool_arguments(text))
            if value:
                self._emit(out, "response.custom_tool_call_input.delta", **ids, delta=value)
            self._emit(out, "response.custom_tool_call_input.done", **ids, input=value)
            self._item_done(out, item, call_item(item.id, item.target, item.call_id, value, "completed"))
            return
        if not text:  # clients choke on "" arguments
            text = "{}"
            self._emit(out, "response.function_call_arguments.delta", **ids, delta=text)
        self._emit(out, "response.function_call_arguments.done", **ids, name=item.target.name, arguments=text)
        self._item_done(out, item, call_item(item.id, item.target, item.call_id, text, "completed"))

    # -- deltas, by phase ---------------------------------------------------------------

    def _on_text(self, delta: JSON, out: list[JSON]) -> None:
        text = delta.get("text") if "text" in delta else delta.get("partial_json")
        if not isinstance(text, str) or not text:
            return
        if self._phase is Phase.LEADING:
            if text.isspace():
                self._held += text
                return
            self._move("text")
            self._start_message(out)
            text, self._held = self._held + text, ""
        item = self._item
        assert item is not None
        item.parts.append(text)
        self._text_delta(out, item, text)

    def _text_delta(self, out: list[JSON], item: _Item, text: str) -> None:
        # The hot path of every stream: built directly rather than through `_emit`.
        out.append(
            {
                "type": "response.output_text.delta",
                "item_id": item.id,
                "output_index": item.index,
                "content_index": 0,
                "delta": text,
                "logprobs": [],
                "sequence_number": self._seq,
            }
        )
        self._seq += 1

    def _on_thinking(self, delta: JSON, out: list[JSON]) -> None:
        thought = delta.get("thinking")
        item = self._item
        if not isinstance(thought, str) or not thought or item is None:
            return
        ids = item.ids(summary_index=0)
        if not item.summary_open:
            item.summary_open = True
            self._emit(out, "response.reasoning_summary_part.added", **ids, part={"type": "summary_text", "text": ""})
        item.parts.append(thought)
        self._emit(out, "response.reasoning_summary_text.delta", **ids, delta=thought)

    def _on_signature(self, delta: JSON, out: list[JSON]) -> None:
        signature = delta.get("signature")
        if self._item is not None and isinstance(signature, str):
            self._item.signature += signature

    def _on_arguments(self, delta: JSON, out: list[JSON]) -> None:
        fragment = delta.get("partial_json")
        item = self._item
        if not isinstance(fragment, str) or not fragment or item is None:
            return  # the first fragment is usually ""
        item.parts.append(fragment)
        if self._phase is Phase.CALL:
            self._emit(out, "response.function_call_arguments.delta", **item.ids(), delta=fragment)


_Handler = Callable[[ResponsesStreamTranslator, Any, list[JSON]], None]

_EVENTS: dict[str, _Handler] = {
    "message_start": ResponsesStreamTranslator._on_message_start,
    "content_block_start": ResponsesStreamTranslator._on_block_start,
    "content_block_delta": ResponsesStreamTranslator._on_block_delta,
    "content_block_stop": ResponsesStreamTranslator._on_block_stop,
    "message_delta": ResponsesStreamTranslator._on_message_delta,
    "message_stop": ResponsesStreamTranslator._on_message_stop,
    "error": ResponsesStreamTranslator._on_error,
}

# The transition table for deltas: phase -> delta type -> handler. A pair not listed (a
# citations_delta, a text_delta inside a tool block) sends nothing.
_DELTAS: dict[Phase, dict[str, _Handler]] = {
    Phase.LEADING: {"text_delta": ResponsesStreamTranslator._on_text},
    Phase.TEXT: {"text_delta": ResponsesStreamTranslator._on_text},
    Phase.THINKING: {
        "thinking_delta": ResponsesStreamTranslator._on_thinking,
        "signature_delta": ResponsesStreamTranslator._on_signature,
    },
    Phase.CALL: {"input_json_delta": ResponsesStreamTranslator._on_arguments},
    Phase.CUSTOM: {"input_json_delta": ResponsesStreamTranslator._on_arguments},
    Phase.JSON: {"input_json_delta": ResponsesStreamTranslator._on_text},
}


def encode_event(event: JSON) -> bytes:
    """One Responses SSE event: `event: <type>` and the JSON, then a blank line."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
