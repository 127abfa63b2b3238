"""OpenAI Responses stream events -> Anthropic Messages stream events, as a state machine.

One `ResponsesToMessagesStream(model=, names=, input_tokens=)` per stream, driven like
`chat_stream.ChatStreamTranslator`: `start()` on the upstream's 200 (optional: without it the
message starts at the first event, with its id derived from the response id as
`response_to_message` derives it), `feed(event)` with each parsed `data:` payload (its `type`
names the event), `finish()` when the body ends, `fail(err)`, and `complete` to tell a
finished answer from a cut one (`finish()` if complete, else `fail(truncated)`).

    NEW --start--> STREAMING --response.completed / .incomplete--> CLOSED
     |                 |
     +-----------------+------- finish / fail / failed / error -----> CLOSED

Responses streams one output item at a time, and each becomes Anthropic blocks the same way
`responses_upstream.output_blocks` turns the finished item into blocks, so the streamed
message equals the non-streamed one:

    reasoning      thinking block, opened at its first summary (or reasoning_text) delta;
                   summary parts are joined by a blank line; `response.output_item.done`
                   carries `encrypted_content`, so the signature_delta is sent then. A
                   reasoning item with neither text nor encrypted content sends nothing.
    message        one text block per non-empty content part (output_text or refusal);
                   a part that arrives only whole (in `.done`) is sent whole.
    function_call  tool_use block opened at `output_item.added` (name and call id are known
                   there), argument deltas as input_json_delta; at the end whatever the
                   arguments lack to be a JSON object is appended (`close_json_object`).
    anything else  hosted tool calls: nothing (the client has nothing to run).

At most one block is open. `response.completed` / `.incomplete` give the stop reason and usage
(`message_delta`) and end the message; `response.failed` and `error` end it with an `error`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from attrs import define, field, setters

from ccproxy_core.core.errors import ProxyError, UpstreamError
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.chat_response import anthropic_usage as estimated_usage
from ccproxy_core.translate.chat_response import close_json_object, new_message_id
from ccproxy_core.translate.responses_upstream import (
    anthropic_usage,
    message_id,
    output_blocks,
    part_text,
    reasoning_text,
    response_error,
    stop_reason,
)
from ccproxy_core.translate.responses_upstream_input import reasoning_signature
from ccproxy_core.translate.tool_names import ToolNames, safe_tool_use_id

Event = tuple[str, JSON]


class Phase(enum.Enum):
    NEW = "new"  # nothing sent yet
    STREAMING = "streaming"  # message_start sent; blocks may come
    CLOSED = "closed"  # message_stop or error sent; nothing more goes out


_TRANSITIONS: dict[tuple[Phase, str], Phase] = {
    (Phase.NEW, "start"): Phase.STREAMING,
    (Phase.STREAMING, "end"): Phase.CLOSED,
    (Phase.NEW, "fail"): Phase.CLOSED,
    (Phase.STREAMING, "fail"): Phase.CLOSED,
}


class Block(enum.Enum):
    TEXT = "text"
    THINKING = "thinking"
    TOOL = "tool_use"


@define(slots=True)
class _Item:
    """One upstream output item as its events arrive."""

    kind: str
    sent: bool = False  # some of its content went out (for a call: its block was opened)
    parts: list[str] = field(factory=list)  # argument fragments (function_call)
    source: str = ""  # reasoning: "summary" or "content", whichever streamed first
    shown: set[int] = field(factory=set)  # message: content parts that went out
    summary_index: int = -1


def _names(value: ToolNames | None) -> ToolNames:
    return value or ToolNames()


@define(kw_only=True, on_setattr=setters.NO_OP)  # no hook on the hot path: `names` converts at init only
class ResponsesToMessagesStream:
    """Feed it parsed Responses events; it returns the Anthropic events to send, in order."""

    model: str
    names: ToolNames = field(factory=ToolNames, converter=_names)
    input_tokens: int = 0  # the estimate message_start carries; the real count comes at the end
    _id: str = field(default="", init=False)
    _phase: Phase = field(default=Phase.NEW, init=False)
    _items: dict[int, _Item] = field(factory=dict, init=False)  # by output_index
    _open: Block | None = field(default=None, init=False)
    _open_index: int = field(default=-1, init=False)
    _open_key: tuple[int, int] = field(default=(-1, -1), init=False)  # (output_index, content_index)
    _next_index: int = field(default=0, init=False)
    _has_tool_use: bool = field(default=False, init=False)
    _out_chars: int = field(default=0, init=False)  # for an output estimate when no usage comes

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def complete(self) -> bool:
        """The answer was ended (completed, failed, or finished by the shell): a body that ends
        while this is False was cut short, and the shell ends it with `fail`."""
        return self._phase is Phase.CLOSED

    def _move(self, event: str) -> None:
        self._phase = _TRANSITIONS[(self._phase, event)]

    def start(self) -> list[Event]:
        """`message_start`; returns [] once started."""
        if self._phase is not Phase.NEW:
            return []
        self._move("start")
        self._id = self._id or new_message_id()
        message: JSON = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self.model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": estimated_usage(None, input_estimate=self.input_tokens),
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def feed(self, event: JSON) -> list[Event]:
        """Translate one parsed Responses event."""
        if self._phase is Phase.CLOSED:
            return []
        kind = event.get("type")
        if self._phase is Phase.NEW:
            resp = event.get("response")
            if isinstance(resp, dict) and resp.get("id"):
                self._id = message_id(resp["id"])
            if kind in ("response.failed", "error"):
                return self.fail(_error_of(event))  # nothing was sent: the error is the whole answer
        out = self.start()
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is not None:
            handler(self, event, out)
        return out

    def finish(self) -> list[Event]:
        """The upstream body ended: close everything and stop the message."""
        if self._phase is Phase.CLOSED:
            return []
        out = self.start()
        self._end(out, "tool_use" if self._has_tool_use else "end_turn", None)
        return out

    def fail(self, err: ProxyError) -> list[Event]:
        """End the stream with an `error` event (no message_stop follows, nothing after it)."""
        if self._phase is Phase.CLOSED:
            return []
        out: list[Event] = []
        self._close(out)
        out.append(("error", {"type": "error", "error": {"type": err.type, "message": err.message}}))
        self._move("fail")
        return out

    # -- events ---------------------------------------------------------------------------

    def _on_failed(self, event: JSON, out: list[Event]) -> None:
        out.extend(self.fail(_error_of(event)))

    def _on_item_added(self, event: JSON, out: list[Event]) -> None:
        item, index = event.get("item"), event.get("output_index")
        if not isinstance(item, dict) or not isinstance(index, int):
            return
        record = _Item(str(item.get("type")))
        self._items[index] = record
        if record.kind == "function_call" and isinstance(item.get("name"), str):
            self._open_tool(index, item, out)
            if isinstance(item.get("arguments"), str):  # some servers send them whole, here
                self._arguments(index, record, item["arguments"], out)

    def _on_text_delta(self, event: JSON, out: list[Event]) -> None:
        delta, index, part = event.get("delta"), event.get("output_index"), event.get("content_index", 0)
        if not isinstance(index, int) or not isinstance(part, int) or not isinstance(delta, str) or not delta:
            return
        record = self._items.get(index)
        if record is None:
            return
        if self._open is not Block.TEXT or self._open_key != (index, part):
            self._close(out)
            self._open_block(Block.TEXT, {"type": "text", "text": ""}, (index, part), out)
        record.sent = True
        record.shown.add(part)
        self._out_chars += len(delta)
        out.append(_delta(self._open_index, {"type": "text_delta", "text": delta}))

    def _on_part_done(self, event: JSON, out: list[Event]) -> None:
        index, part = event.get("output_index"), event.get("content_index", 0)
        if not isinstance(index, int) or not isinstance(part, int):
            return
        if self._open is Block.TEXT and self._open_key == (index, part):
            self._close(out)
            return
        record = self._items.get(index)
        text = part_text(event.get("part"))
        if record is not None and record.kind == "message" and text and part not in record.shown:
            record.shown.add(part)
            self._whole_text(index, record, text, out)  # sent whole, never as deltas

    def _on_reasoning_delta(self, event: JSON, out: list[Event]) -> None:
        delta, index = event.get("delta"), event.get("output_index")
        if not isinstance(index, int) or not isinstance(delta, str) or not delta:
            return
        record = self._items.get(index)
        if record is None or record.kind != "reasoning":
            return
        source = "summary" if event.get("type") == "response.reasoning_summary_text.delta" else "content"
        if record.source and record.source != source:
            return  # the output item holds one of them as its text (summary first)
        record.source = source
        part = event.get("summary_index", event.get("content_index", 0))
        if self._open is not Block.THINKING or self._open_key[0] != index:
            self._close(out)
            self._open_block(Block.THINKING, {"type": "thinking", "thinking": "", "signature": ""}, (index, 0), out)
        if isinstance(part, int) and part != record.summary_index:
            if record.sent:
                delta = "\n\n" + delta
            record.summary_index = part
        record.sent = True
        self._out_chars += len(delta)
        out.append(_delta(self._open_index, {"type": "thinking_delta", "thinking": delta}))

    def _on_arguments(self, event: JSON, out: list[Event]) -> None:
        index = event.get("output_index")
        record = self._items.get(index) if isinstance(index, int) else None
        if record is None or not isinstance(index, int):
            return
        if event.get("type") == "response.function_call_arguments.delta":
            fragment = event.get("delta")
        else:  # .done: only arguments that never came as deltas
            fragment = None if record.parts else event.get("arguments")
        if isinstance(fragment, str):
            self._arguments(index, record, fragment, out)

    def _on_item_done(self, event: JSON, out: list[Event]) -> None:
        item, index = event.get("item"), event.get("output_index")
        if not isinstance(item, dict) or not isinstance(index, int):
            return
        record = self._items.setdefault(index, _Item(str(item.get("type"))))
        if record.kind == "function_call":
            if self._open is not Block.TOOL or self._open_key[0] != index:
                if record.sent or not isinstance(item.get("name"), str):
                    return  # its block was closed by another item (it cannot be reopened), or it has no name
                self._open_tool(index, item, out)
            if not record.parts and isinstance(item.get("arguments"), str) and item["arguments"]:
                self._arguments(index, record, item["arguments"], out)
            self._close(out)
        elif record.kind == "reasoning":
            self._end_reasoning(index, record, item, out)
        elif record.kind == "message":
            if self._open is Block.TEXT and self._open_key[0] == index:
                self._close(out)
            if not record.sent:
                for block in output_blocks(item, self.names):
                    self._whole_text(index, record, block["text"], out)

    def _on_done(self, event: JSON, out: list[Event]) -> None:
        resp = event.get("response")
        resp = resp if isinstance(resp, dict) else {}
        self._end(out, stop_reason(resp, self._has_tool_use), resp.get("usage"))

    # -- blocks ---------------------------------------------------------------------------

    def _open_block(self, kind: Block, content_block: JSON, key: tuple[int, int], out: list[Event]) -> None:
        index = self._next_index
        self._next_index = index + 1
        self._open, self._open_index, self._open_key = kind, index, key
        out.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": content_block})
        )

    def _close(self, out: list[Event], signature: str | None = None) -> None:
        kind, index = self._open, self._open_index
        if kind is None:
            return
        if kind is Block.THINKING:  # cut before its item was done: signed without encrypted content
            seal = signature or reasoning_signature({"id": ""})
            out.append(_delta(index, {"type": "signature_delta", "signature": seal}))
        elif kind is Block.TOOL:
            record = self._items.get(self._open_key[0])
            suffix = close_json_object("".join(record.parts)) if record is not None else ""
            if suffix:
                out.append(_delta(index, {"type": "input_json_delta", "partial_json": suffix}))
        out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        self._open = None

    def _open_tool(self, index: int, item: JSON, out: list[Event]) -> None:
        self._close(out)
        self._items[index].sent = True
        self._has_tool_use = True
        content_block = {
            "type": "tool_use",
            "id": safe_tool_use_id(item.get("call_id")),
            "name": self.names.to_client(item["name"]),
            "input": {},
        }
        self._open_block(Block.TOOL, content_block, (index, 0), out)

    def _arguments(self, index: int, record: _Item, fragment: str, out: list[Event]) -> None:
        if not fragment or self._open is not Block.TOOL or self._open_key[0] != index:
            return  # its block was closed: Anthropic blocks cannot be reopened
        record.parts.append(fragment)
        self._out_chars += len(fragment)
        out.append(_delta(self._open_index, {"type": "input_json_delta", "partial_json": fragment}))

    def _whole_text(self, index: int, record: _Item, text: str, out: list[Event]) -> None:
        self._close(out)
        self._open_block(Block.TEXT, {"type": "text", "text": ""}, (index, -1), out)
        out.append(_delta(self._open_index, {"type": "text_delta", "text": text}))
        self._out_chars += len(text)
        self._close(out)
        record.sent = True

    def _end_reasoning(self, index: int, record: _Item, item: JSON, out: list[Event]) -> None:
        signature = reasoning_signature(item)
        if self._open is Block.THINKING and self._open_key[0] == index:
            self._close(out, signature)
            return
        if record.sent:
            return  # its block was closed by another item: the signature has no place left
        text = reasoning_text(item)
        if not text and not item.get("encrypted_content"):
            return  # nothing to show and nothing to replay
        self._close(out)
        self._open_block(Block.THINKING, {"type": "thinking", "thinking": "", "signature": ""}, (index, 0), out)
        if text:
            out.append(_delta(self._open_index, {"type": "thinking_delta", "thinking": text}))
        self._close(out, signature)
        record.sent = True

    def _end(self, out: list[Event], reason: str, usage: Any) -> None:
        self._close(out)
        if self._next_index == 0:  # a message needs at least one block
            self._open_block(Block.TEXT, {"type": "text", "text": ""}, (-1, -1), out)
            self._close(out)
        if isinstance(usage, dict):
            counted = anthropic_usage(usage)
        else:  # no response.completed: estimates, as the Chat stream makes them
            counted = estimated_usage(
                None, input_estimate=self.input_tokens, output_estimate=(self._out_chars + 3) // 4
            )
        delta = {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None}, "usage": counted}
        out.append(("message_delta", delta))
        out.append(("message_stop", {"type": "message_stop"}))
        self._move("end")


def _error_of(event: JSON) -> UpstreamError:
    """The error a `response.failed` (in its response) or an `error` event (flat or nested) carries."""
    if event.get("type") == "response.failed":
        resp = event.get("response")
        return response_error(resp.get("error") if isinstance(resp, dict) else None)
    nested = event.get("error")
    return response_error(nested if isinstance(nested, dict) else event)


def _delta(index: int, delta: JSON) -> Event:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


_Handler = Callable[[ResponsesToMessagesStream, JSON, list[Event]], None]

_HANDLERS: dict[str, _Handler] = {
    "response.output_item.added": ResponsesToMessagesStream._on_item_added,
    "response.output_text.delta": ResponsesToMessagesStream._on_text_delta,
    "response.refusal.delta": ResponsesToMessagesStream._on_text_delta,
    "response.content_part.done": ResponsesToMessagesStream._on_part_done,
    "response.reasoning_summary_text.delta": ResponsesToMessagesStream._on_reasoning_delta,
    "response.reasoning_text.delta": ResponsesToMessagesStream._on_reasoning_delta,
    "response.function_call_arguments.delta": ResponsesToMessagesStream._on_arguments,
    "response.function_call_arguments.done": ResponsesToMessagesStream._on_arguments,
    "response.output_item.done": ResponsesToMessagesStream._on_item_done,
    "response.completed": ResponsesToMessagesStream._on_done,
    "response.incomplete": ResponsesToMessagesStream._on_done,
    "response.failed": ResponsesToMessagesStream._on_failed,
    "error": ResponsesToMessagesStream._on_failed,
}
