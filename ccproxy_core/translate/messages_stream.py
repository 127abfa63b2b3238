"""Anthropic Messages SSE events -> OpenAI `chat.completion.chunk` dicts, one state machine per stream.

The shell decodes the upstream bytes with `SSEDecoder`, parses each `data:` with orjson and
calls `feed(event, payload)`; every returned dict is written as one `data:` line. At the end
of the upstream body it calls `finish()` and writes `data: [DONE]`; on a failure it calls
`fail(err)` and closes.

States (one `_State`; the block states say what the open content block turns into). Only the
transitions in `_TRANSITIONS` exist, and every state change goes through `_move`:

    IDLE ──start──> OPEN ──content_block_start──> LEADING | TEXT | THINKING | TOOL(_EMPTY)
                     ^                            | JSON(_EMPTY) | SKIP
                     └───────block_stop───────────┘
    TOOL_EMPTY ──arguments──> TOOL     (a non-empty input_json_delta; a tool left empty gets "{}")
    JSON_EMPTY ──arguments──> JSON     (json mode: the arguments become content)
    LEADING    ──text───────> TEXT     (non-blank text; a blank block 0 is dropped, see below)
    OPEN ──stop (message_delta)──> STOPPED ──close (message_stop, finish())──> CLOSED
    any state not ended ──fail (error event, fail())──> FAILED

A `message_delta` or `content_block_start` with no `message_start` before it opens the message
first; one that arrives inside a block closes that block first.

`tool_index` counts tool calls only: OpenAI's `tool_calls[].index` is not Anthropic's block
index (a text or thinking block before the tool would shift it).

LEADING exists for adaptive thinking on claude-opus-4-6, whose block 0 is a text block holding
only "\\n\\n" before the thinking block: whitespace in a text block at index 0 is held back and
dropped if the block ends blank, and `message_to_chat` drops the same block, so streamed and
non-streamed content agree.

Events that make no sense in the current state (a delta with no open block, a second
`message_start`) are ignored rather than failing the client's stream: the Anthropic docs ask
clients to tolerate new event types, and compatible upstreams are not always strict.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from ccproxy_core.core.errors import (
    ProxyError,
    UpstreamError,
    openai_status_and_body,
    status_for_anthropic_type,
)
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.messages_response import (
    JSON_TOOL_NAME,
    chat_id,
    chat_usage,
    dumps_compact,
    finish_reason,
)


class _State(enum.Enum):
    IDLE = enum.auto()
    OPEN = enum.auto()
    LEADING = enum.auto()
    TEXT = enum.auto()
    THINKING = enum.auto()
    TOOL_EMPTY = enum.auto()
    TOOL = enum.auto()
    JSON_EMPTY = enum.auto()
    JSON = enum.auto()
    SKIP = enum.auto()
    STOPPED = enum.auto()
    CLOSED = enum.auto()
    FAILED = enum.auto()  # ended by an error: no finish chunk, no usage, no [DONE]


_ENDED = frozenset({_State.CLOSED, _State.FAILED})
_NOTHING_TO_FINISH = _ENDED | {_State.IDLE}
_COMPLETE = _ENDED | {_State.STOPPED}

_BLOCK_STATES = frozenset(
    {
        _State.LEADING,
        _State.TEXT,
        _State.THINKING,
        _State.TOOL_EMPTY,
        _State.TOOL,
        _State.JSON_EMPTY,
        _State.JSON,
        _State.SKIP,
    }
)

# The block a content_block_start opens, by the event `_on_block_start` moves with.
_OPENED_BY: dict[str, _State] = {
    "leading_text": _State.LEADING,
    "text": _State.TEXT,
    "thinking": _State.THINKING,
    "tool_empty": _State.TOOL_EMPTY,
    "tool": _State.TOOL,
    "json_empty": _State.JSON_EMPTY,
    "json": _State.JSON,
    "skip": _State.SKIP,
}

_TRANSITIONS: dict[tuple[_State, str], _State] = {
    (_State.IDLE, "start"): _State.OPEN,
    **{(_State.OPEN, opened): state for opened, state in _OPENED_BY.items()},
    **{(state, "block_stop"): _State.OPEN for state in _BLOCK_STATES},
    (_State.LEADING, "text"): _State.TEXT,
    (_State.TOOL_EMPTY, "arguments"): _State.TOOL,
    (_State.TOOL, "arguments"): _State.TOOL,
    (_State.JSON_EMPTY, "arguments"): _State.JSON,
    (_State.JSON, "arguments"): _State.JSON,
    (_State.OPEN, "stop"): _State.STOPPED,
    (_State.STOPPED, "close"): _State.CLOSED,
    **{(state, "fail"): _State.FAILED for state in _State if state not in _ENDED},
}


class MessagesStreamTranslator:
    """One Anthropic stream as Chat Completions chunks. A plain class, not attrs: it is compiled
    by mypyc (pyproject.toml, [tool.ccproxy] compiled), which builds its own native classes."""

    __slots__ = ("_held", "_state", "_thought", "_tool_index", "_usage", "chunk_id", "created", "include_usage",
                 "json_mode", "model")  # fmt: skip

    def __init__(
        self, *, model: str, include_usage: bool, created: int, json_mode: bool = False, chunk_id: str | None = None
    ) -> None:
        self.model = model
        self.include_usage = include_usage
        self.json_mode = json_mode
        self.created = created
        self.chunk_id = chunk_id
        self._state = _State.IDLE
        self._tool_index = -1
        self._usage: dict[str, Any] = {}
        self._held = ""  # blank text of a LEADING block
        self._thought: list[str] = []  # thinking text of the open block

    def feed(self, event: str, payload: JSON) -> list[JSON]:
        """One upstream SSE event (its name and parsed data) -> the chunks to send now."""
        handler = _EVENTS.get(event or payload.get("type", ""))
        if handler is None or self._state in _ENDED:
            return []  # `ping` and event types newer than this code
        return handler(self, payload)

    def finish(self) -> list[JSON]:
        """The upstream body ended: close the message (finish_reason, usage) if still open.

        A body that ended before `message_delta` is closed with finish_reason "stop"; the shell
        checks `complete` first and calls `fail` for a body that was cut short.
        """
        if self._state in _NOTHING_TO_FINISH:
            return []
        return self._on_message_stop({})

    @property
    def complete(self) -> bool:
        """The provider finished its answer (`message_delta` with its stop reason, `message_stop`,
        or an error): a body that ends before this was cut short, and the shell calls `fail`."""
        return self._state in _COMPLETE

    @property
    def failed(self) -> bool:
        """The stream ended with an error chunk; the shell must not send `[DONE]` after it."""
        return self._state is _State.FAILED

    def fail(self, err: ProxyError) -> list[JSON]:
        """The stream cannot go on: one OpenAI error object, then nothing more."""
        if self._state in _ENDED:
            return []
        self._move("fail")
        return [openai_status_and_body(err)[1]]

    def _move(self, event: str) -> None:
        self._state = _TRANSITIONS[(self._state, event)]

    # -- chunk builders ---------------------------------------------------------------

    def _chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        chunk: JSON = {
            "id": self.chunk_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if self.include_usage:
            chunk["usage"] = None  # as OpenAI does: null on every chunk but the last
        return chunk

    def _tool_args(self, arguments: str) -> JSON:
        call = {"index": self._tool_index, "function": {"arguments": arguments}}
        return self._chunk({"tool_calls": [call]})

    def _open(self, message_id: Any = None) -> list[JSON]:
        if self.chunk_id is None:
            self.chunk_id = chat_id(message_id)
        self._move("start")
        return [self._chunk({"role": "assistant", "content": ""})]

    # -- message events -----------------------------------------------------------------

    def _on_message_start(self, payload: JSON) -> list[JSON]:
        if self._state is not _State.IDLE:
            return []
        message = payload.get("message")
        if not isinstance(message, dict):
            message = {}
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage.update(usage)
        return self._open(message.get("id"))

    def _on_message_delta(self, payload: JSON) -> list[JSON]:
        out = self._open() if self._state is _State.IDLE else self._end_block()
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self._usage.update(usage)  # cumulative, and older streams send only output_tokens
        if self._state is _State.OPEN:
            delta = payload.get("delta")
            reason = delta.get("stop_reason") if isinstance(delta, dict) else None
            json_only = self.json_mode and self._tool_index < 0
            out.append(self._chunk({}, finish_reason(reason, json_only=json_only)))
            self._move("stop")
        return out

    def _on_message_stop(self, payload: JSON) -> list[JSON]:
        out = [] if self._state is _State.STOPPED else self._on_message_delta({})
        if self.include_usage:
            out.append(
                {
                    "id": self.chunk_id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": chat_usage(self._usage),
                }
            )
        self._move("close")
        return out

    def _on_error(self, payload: JSON) -> list[JSON]:
        # The in-band `error` event carries no status; its type says which one it stands for.
        err = payload.get("error")
        etype = err.get("type") if isinstance(err, dict) else None
        status = status_for_anthropic_type(etype) if isinstance(etype, str) else 500
        return self.fail(UpstreamError.from_anthropic(status, payload))

    # -- content blocks -----------------------------------------------------------------

    def _on_block_start(self, payload: JSON) -> list[JSON]:
        if self._state is _State.IDLE:
            out = self._open()
        elif self._state is _State.STOPPED:
            return []
        else:
            out = self._end_block()  # tolerate a missing content_block_stop
        block = payload.get("content_block")
        if not isinstance(block, dict):
            block = {}
        kind = block.get("type")
        if kind == "text":
            self._move("leading_text" if payload.get("index") == 0 else "text")
            text = block.get("text")
            if isinstance(text, str) and text:  # compatible upstreams may start with text
                out += _DELTAS[self._state]["text_delta"](self, {"text": text})
        elif kind == "tool_use":
            out += self._start_tool(block)
        elif kind == "thinking":
            self._move("thinking")
            self._thought = []
            thought = block.get("thinking")
            if isinstance(thought, str) and thought:
                out += self._thinking_delta({"thinking": thought})
        elif kind == "redacted_thinking":
            self._move("skip")
            redacted = {"type": "redacted_thinking", "data": block.get("data", "")}
            out.append(self._chunk({"thinking_blocks": [redacted]}))
        else:
            self._move("skip")  # server tools and their results: nothing for Chat Completions
        return out

    def _start_tool(self, block: JSON) -> list[JSON]:
        given = block.get("input")
        arguments = dumps_compact(given) if isinstance(given, dict) and given else ""
        if self.json_mode and block.get("name") == JSON_TOOL_NAME:
            self._move("json" if arguments else "json_empty")
            return [self._chunk({"content": arguments})] if arguments else []
        self._tool_index += 1
        self._move("tool" if arguments else "tool_empty")
        call = {
            "index": self._tool_index,
            "id": str(block.get("id") or ""),
            "type": "function",
            "function": {"name": str(block.get("name") or ""), "arguments": arguments},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _on_block_delta(self, payload: JSON) -> list[JSON]:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return []
        handler = _DELTAS.get(self._state, _NO_DELTAS).get(delta.get("type", ""))
        return handler(self, delta) if handler is not None else []

    def _on_block_stop(self, payload: JSON) -> list[JSON]:
        return self._end_block()

    def _end_block(self) -> list[JSON]:
        state = self._state
        if state not in _BLOCK_STATES:
            return []
        self._move("block_stop")
        if state is _State.TOOL_EMPTY:
            return [self._tool_args("{}")]  # clients choke on "" (LiteLLM check_empty_tool_call_args)
        if state is _State.JSON_EMPTY:
            return [self._chunk({"content": "{}"})]
        self._held = ""
        return []

    # -- deltas, by state ---------------------------------------------------------------

    def _text_delta(self, delta: JSON) -> list[JSON]:
        text = delta.get("text")
        return [self._chunk({"content": text})] if isinstance(text, str) and text else []

    def _leading_text_delta(self, delta: JSON) -> list[JSON]:
        text = delta.get("text")
        if not isinstance(text, str) or not text:
            return []
        if text.isspace():
            self._held += text
            return []
        self._move("text")
        text, self._held = self._held + text, ""
        return [self._chunk({"content": text})]

    def _thinking_delta(self, delta: JSON) -> list[JSON]:
        thought = delta.get("thinking")
        if not isinstance(thought, str) or not thought:
            return []
        self._thought.append(thought)
        return [self._chunk({"reasoning_content": thought})]

    def _signature_delta(self, delta: JSON) -> list[JSON]:
        # The signed block, whole, so a client can echo it back (see messages_response).
        thought = "".join(self._thought)
        block = {"type": "thinking", "thinking": thought, "signature": delta.get("signature", "")}
        self._thought = []
        return [self._chunk({"thinking_blocks": [block]})]

    def _tool_json_delta(self, delta: JSON) -> list[JSON]:
        fragment = delta.get("partial_json")
        if not isinstance(fragment, str) or not fragment:
            return []  # the first fragment is usually ""
        self._move("arguments")
        return [self._tool_args(fragment)]

    def _json_mode_delta(self, delta: JSON) -> list[JSON]:
        fragment = delta.get("partial_json")
        if not isinstance(fragment, str) or not fragment:
            return []
        self._move("arguments")
        return [self._chunk({"content": fragment})]


_Handler = Callable[[MessagesStreamTranslator, Any], list[JSON]]

_EVENTS: dict[str, _Handler] = {
    "message_start": MessagesStreamTranslator._on_message_start,
    "content_block_start": MessagesStreamTranslator._on_block_start,
    "content_block_delta": MessagesStreamTranslator._on_block_delta,
    "content_block_stop": MessagesStreamTranslator._on_block_stop,
    "message_delta": MessagesStreamTranslator._on_message_delta,
    "message_stop": MessagesStreamTranslator._on_message_stop,
    "error": MessagesStreamTranslator._on_error,
}

# The transition table for deltas: state -> delta type -> handler. A pair not listed
# (a citations_delta, a text_delta inside a tool block) sends nothing.
_DELTAS: dict[_State, dict[str, _Handler]] = {
    _State.LEADING: {"text_delta": MessagesStreamTranslator._leading_text_delta},
    _State.TEXT: {"text_delta": MessagesStreamTranslator._text_delta},
    _State.THINKING: {
        "thinking_delta": MessagesStreamTranslator._thinking_delta,
        "signature_delta": MessagesStreamTranslator._signature_delta,
    },
    _State.TOOL_EMPTY: {"input_json_delta": MessagesStreamTranslator._tool_json_delta},
    _State.TOOL: {"input_json_delta": MessagesStreamTranslator._tool_json_delta},
    _State.JSON_EMPTY: {"input_json_delta": MessagesStreamTranslator._json_mode_delta},
    _State.JSON: {"input_json_delta": MessagesStreamTranslator._json_mode_delta},
}
_NO_DELTAS: dict[str, _Handler] = {}
