"""OpenAI Chat Completions chunks -> Anthropic Messages stream events, as a state machine.

One `ChatStreamTranslator` per stream; nothing is shared between streams. The message moves
through five phases, and only the transitions in `_TRANSITIONS` exist:

    NEW --start--> STREAMING --finish_reason--> HELD --usage--> ENDED
     |                 |                          |               |
     +-----------------+------- end / fail -------+---------------+--> CLOSED

HELD exists because OpenAI sends `finish_reason` one chunk before the usage totals: the
`message_delta` (which must carry the final usage) waits for the usage chunk or the end.

Inside STREAMING at most one content block is open (Anthropic blocks never overlap) and every
delta goes to the open block of its own type:

- reasoning opens a thinking block; anything else closes it with a `signature_delta` first;
- text opens a text block, even after a tool call (a new block, never the tool's index);
- a tool call opens its block only once its name (and its id, or a second fragment without
  one) is known, because `content_block_start` cannot be edited later. Until then, and
  while another tool's block is open, its argument fragments wait in the call. The open
  tool keeps the block until its arguments form a complete JSON object (then no valid
  fragment can follow) or until text, reasoning or the finish arrive; so parallel calls
  whose fragments interleave (0,1,0,1) still land whole in their own blocks, and no delta
  is ever sent to a closed block. A fragment that arrives for a call whose block was
  already closed by text or reasoning has nowhere to go and is dropped.

When a tool block closes, whatever its arguments lack to be a JSON object is appended when
that is possible (`close_json_object`): `{}` for a call without arguments, closing quotes and
brackets for arguments cut off by the token limit.
"""

from __future__ import annotations

import enum

import orjson

from ccproxy_core.core.errors import ProxyError, UpstreamError
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.chat_response import (
    anthropic_usage,
    close_json_object,
    in_band_error,
    new_message_id,
    stop_reason_for,
    synthetic_signature,
)
from ccproxy_core.translate.tool_names import ToolNames, safe_tool_use_id

Event = tuple[str, JSON]


class Phase(enum.Enum):
    NEW = "new"  # nothing sent yet
    STREAMING = "streaming"  # message_start sent; content may arrive
    HELD = "held"  # finish_reason seen and every block closed; message_delta waits for usage
    ENDED = "ended"  # message_delta sent; only message_stop is left
    CLOSED = "closed"  # message_stop or error sent; nothing more goes out


_TRANSITIONS: dict[tuple[Phase, str], Phase] = {
    (Phase.NEW, "start"): Phase.STREAMING,
    (Phase.STREAMING, "finish_reason"): Phase.HELD,
    (Phase.HELD, "usage"): Phase.ENDED,
    **{(phase, "end"): Phase.CLOSED for phase in (Phase.STREAMING, Phase.HELD, Phase.ENDED)},
    **{(phase, "fail"): Phase.CLOSED for phase in Phase if phase is not Phase.CLOSED},
}


class Block(enum.Enum):
    TEXT = "text"
    THINKING = "thinking"
    TOOL = "tool_use"


class CallState(enum.Enum):
    WAITING = "waiting"  # no block yet: name (or id) unknown, or another tool holds the slot
    OPEN = "open"  # its block is the open one; fragments go straight out
    CLOSED = "closed"  # its block was stopped


class _ToolCall:
    """One OpenAI tool call as its fragments arrive."""

    __slots__ = ("args", "checked", "complete", "fragments", "id", "name", "sent", "state")

    def __init__(self) -> None:
        self.state = CallState.WAITING
        self.id: str | None = None
        self.name: str | None = None
        self.args: list[str] = []
        self.sent = 0  # fragments of `args` already sent as input_json_delta
        self.fragments = 0  # fragments seen, to stop waiting for an id that never comes
        self.checked = -1  # len(args) when completeness was last tested
        self.complete = False

    def ready(self) -> bool:
        return self.name is not None and (self.id is not None or self.fragments > 1)


class ChatStreamTranslator:
    """Feed it parsed `data:` chunks; it returns the Anthropic events to send, in order."""

    __slots__ = (
        "_calls",
        "_finish_reason",
        "_has_tool_use",
        "_id",
        "_input",
        "_model",
        "_names",
        "_next_index",
        "_open",
        "_open_index",
        "_open_tool",
        "_out_chars",
        "_phase",
        "_usage",
        "_waiting",
    )

    def __init__(self, *, model: str, names: ToolNames, input_tokens: int = 0) -> None:
        self._model = model
        self._names = names
        self._input = input_tokens
        self._id = new_message_id()
        self._phase = Phase.NEW
        self._open: Block | None = None
        self._open_index = -1
        self._open_tool: _ToolCall | None = None
        self._next_index = 0
        self._calls: dict[int, _ToolCall] = {}  # by OpenAI tool_calls[].index
        self._waiting: list[_ToolCall] = []  # calls whose block has not started, in arrival order
        self._finish_reason: str | None = None
        self._has_tool_use = False
        self._usage: JSON | None = None
        self._out_chars = 0  # for an output estimate when no usage chunk comes

    @property
    def phase(self) -> Phase:
        return self._phase

    def _move(self, event: str) -> None:
        self._phase = _TRANSITIONS[(self._phase, event)]

    def start(self) -> list[Event]:
        """`message_start`; call it on the upstream's 200. Returns [] once started."""
        if self._phase is not Phase.NEW:
            return []
        self._move("start")
        return [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": self._id,
                        "type": "message",
                        "role": "assistant",
                        "content": [],
                        "model": self._model,
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": self._input,
                            "output_tokens": 0,
                            "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0,
                        },
                    },
                },
            )
        ]

    def feed(self, chunk: JSON) -> list[Event]:
        """Translate one parsed `data:` chunk (not `[DONE]`: call `finish` for that)."""
        phase = self._phase
        if phase is Phase.CLOSED:
            return []
        events = self.start() if phase is Phase.NEW else []
        if chunk.get("error"):
            return events + self.fail(in_band_error(chunk))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        choices = chunk.get("choices")
        if not choices:
            # the usage chunk (`choices` empty, null or absent) releases the held message_delta;
            # later extras such as `moderation` find the message ENDED and are ignored
            if self._phase is Phase.HELD and self._usage is not None:
                events.append(self._message_delta())
                self._move("usage")
            return events
        if self._phase is not Phase.STREAMING:
            return events  # content after finish_reason has no place in the message
        choice = choices[0]
        delta = choice.get("delta")
        if delta:
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning and isinstance(reasoning, str):
                self._thinking(reasoning, events)
            content = delta.get("content")
            if content and isinstance(content, str):
                self._text(content, events)
            calls = delta.get("tool_calls")
            if calls and isinstance(calls, list):
                for fragment in calls:
                    if isinstance(fragment, dict):
                        self._tool_fragment(fragment, events)
        reason = choice.get("finish_reason")
        if reason:
            if reason == "error":  # OpenRouter: the provider failed mid-answer
                err = choice.get("error")
                failure = (
                    in_band_error({"error": err})
                    if isinstance(err, dict)
                    else UpstreamError(502, "api_error", "upstream ended the answer with an error")
                )
                return events + self.fail(failure)
            self._end_content(events)
            self._finish_reason = reason
            self._move("finish_reason")
        return events

    @property
    def complete(self) -> bool:
        """The provider finished its answer (a finish_reason, `[DONE]`, or an error was seen):
        a body that ends before this was cut short, and the shell ends it with `fail`."""
        return self._phase not in (Phase.NEW, Phase.STREAMING)

    def finish(self) -> list[Event]:
        """The upstream ended (`[DONE]` or EOF): close everything and stop the message."""
        if self._phase is Phase.CLOSED:
            return []
        events = self.start()
        if self._phase is Phase.STREAMING:
            self._end_content(events)
        if self._phase is not Phase.ENDED:
            events.append(self._message_delta())
        events.append(("message_stop", {"type": "message_stop"}))
        self._move("end")
        return events

    def fail(self, err: ProxyError) -> list[Event]:
        """End the stream with an `error` event (no message_stop follows, nothing after it)."""
        if self._phase is Phase.CLOSED:
            return []
        events: list[Event] = []
        self._close_open(events)
        events.append(("error", {"type": "error", "error": {"type": err.type, "message": err.message}}))
        self._move("fail")
        return events

    # -- blocks -----------------------------------------------------------------------------

    def _open_block(self, kind: Block, content_block: JSON, events: list[Event]) -> int:
        index = self._next_index
        self._next_index = index + 1
        self._open, self._open_index = kind, index
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": content_block})
        )
        return index

    def _close_open(self, events: list[Event]) -> None:
        kind, index = self._open, self._open_index
        if kind is None:
            return
        if kind is Block.THINKING:
            events.append(
                _delta(index, {"type": "signature_delta", "signature": synthetic_signature(f"{self._id}:{index}")})
            )
        elif kind is Block.TOOL and self._open_tool is not None:
            suffix = close_json_object("".join(self._open_tool.args))
            if suffix:
                events.append(_delta(index, {"type": "input_json_delta", "partial_json": suffix}))
            self._open_tool.state = CallState.CLOSED
            self._open_tool = None
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        self._open = None

    def _end_content(self, events: list[Event]) -> None:
        """finish_reason or end of stream: every block is closed, nameless calls are dropped."""
        self._close_open(events)
        self._flush_waiting(events)
        self._waiting.clear()
        if self._next_index == 0:  # a message needs at least one block
            self._open_block(Block.TEXT, {"type": "text", "text": ""}, events)
            self._close_open(events)

    def _flush_waiting(self, events: list[Event]) -> None:
        """Show every named call that is still waiting, each as a whole block."""
        for call in [c for c in self._waiting if c.name is not None]:
            self._start_tool(call, events)
            self._close_open(events)

    def _thinking(self, text: str, events: list[Event]) -> None:
        if self._open is not Block.THINKING:
            self._close_open(events)
            self._flush_waiting(events)
            self._open_block(Block.THINKING, {"type": "thinking", "thinking": "", "signature": ""}, events)
        self._out_chars += len(text)
        events.append(_delta(self._open_index, {"type": "thinking_delta", "thinking": text}))

    def _text(self, text: str, events: list[Event]) -> None:
        if self._open is not Block.TEXT:
            self._close_open(events)
            self._flush_waiting(events)
            self._open_block(Block.TEXT, {"type": "text", "text": ""}, events)
        self._out_chars += len(text)
        events.append(_delta(self._open_index, {"type": "text_delta", "text": text}))

    # -- tool calls -------------------------------------------------------------------------

    def _tool_fragment(self, fragment: JSON, events: list[Event]) -> None:
        key = fragment.get("index")
        if not isinstance(key, int):
            key = 0  # some providers leave it out for a single call
        function = fragment.get("function")
        if not isinstance(function, dict):
            function = {}
        call_id, name, args = fragment.get("id"), function.get("name"), function.get("arguments")
        call = self._calls.get(key)
        if call is None or (call_id and name and call.id and call_id != call.id):
            # a new call; a fresh id + name on a known index means the provider reuses indexes
            call = _ToolCall()
            self._calls[key] = call
            self._waiting.append(call)
        elif call.state is CallState.CLOSED:
            return  # nowhere to put it: Anthropic blocks cannot be reopened
        if call.id is None and isinstance(call_id, str) and call_id:
            call.id = call_id
        if call.name is None and isinstance(name, str) and name:
            call.name = name
        call.fragments += 1
        if args:
            if not isinstance(args, str):
                args = orjson.dumps(args).decode()
            call.args.append(args)
            self._out_chars += len(args)
        if call.state is CallState.OPEN:
            if args:  # the common case: straight out, nothing buffered
                events.append(_delta(self._open_index, {"type": "input_json_delta", "partial_json": args}))
                call.sent = len(call.args)
        elif call.ready() and self._slot_free():
            self._close_open(events)
            self._start_tool(call, events)

    def _slot_free(self) -> bool:
        """Whether a tool call may take the block slot now."""
        if self._open is not Block.TOOL or self._open_tool is None:
            return True
        tool = self._open_tool
        if len(tool.args) != tool.checked:  # test once per new fragment, not per chunk
            tool.checked = len(tool.args)
            tool.complete = close_json_object("".join(tool.args)) == ""
        return tool.complete

    def _start_tool(self, call: _ToolCall, events: list[Event]) -> None:
        self._waiting.remove(call)
        self._has_tool_use = True
        self._open_block(
            Block.TOOL,
            {
                "type": "tool_use",
                "id": safe_tool_use_id(call.id),
                "name": self._names.to_client(call.name or ""),
                "input": {},
            },
            events,
        )
        self._open_tool = call
        call.state = CallState.OPEN
        self._send_args(call, events)

    def _send_args(self, call: _ToolCall, events: list[Event]) -> None:
        index = self._open_index
        for piece in call.args[call.sent :]:
            events.append(_delta(index, {"type": "input_json_delta", "partial_json": piece}))
        call.sent = len(call.args)

    def _message_delta(self) -> Event:
        usage = anthropic_usage(self._usage, input_estimate=self._input, output_estimate=(self._out_chars + 3) // 4)
        return (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": stop_reason_for(self._finish_reason, self._has_tool_use),
                    "stop_sequence": None,
                },
                "usage": usage,
            },
        )


def _delta(index: int, delta: JSON) -> Event:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
