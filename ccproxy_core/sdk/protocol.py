"""Claude Code stream-json output -> one Anthropic Messages stream, as a state machine.

The CLI (run with `--include-partial-messages`) prints one JSON object per line:

    system     init / status lines                                   ignored
    stream_event  the raw Messages SSE event of each API call        text and thinking, as they come
    assistant  each finished content block of an API call            tool_use (as text); text the
                                                                     stream did not carry (an API
                                                                     error's wording is skipped)
    user       tool_result blocks of the tools Claude Code ran       a short result (as text)
    result     the end of the turn: usage, cost, errors              message_delta + message_stop
    (anything with parent_tool_use_id set belongs to a subagent and is skipped)

One run of the CLI may make several API calls (a tool loop); the client sees them as one
assistant message, with its own block indices. What Claude Code did with its own tools is
shown as text (`[Claude Code ran Bash: {...}]`, `[Bash result: ...]`): a client must never see a
`tool_use` block it would try to run itself.

Phases (one `CliTranslator` per run, nothing shared):

    NEW --first content--> OPEN --result--> CLOSED
     |                      |
     +------ fail ----------+-------------> CLOSED

Inside OPEN at most one block is open; a streamed block is tracked by the CLI's own index of the
API call in progress (`_streaming`), and every other piece is sent as a whole block.

A failure before anything was sent is returned as an error (`failure`) so the shell can answer
with a proper status; after that it becomes an `error` event.
"""

from __future__ import annotations

import enum
from typing import Any

import orjson
from attrs import define, field, frozen

from ccproxy_core.core.errors import ProxyError, UpstreamError, anthropic_body, anthropic_type_for_status
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.chat_response import new_message_id

Event = tuple[str, JSON]

TOOL_INPUT_LIMIT = 600  # characters of a tool's input shown to the client
TOOL_RESULT_LIMIT = 1500  # characters of a tool's result shown to the client


class Phase(enum.Enum):
    NEW = "new"  # nothing sent yet
    OPEN = "open"  # message_start sent
    CLOSED = "closed"  # message_stop or error sent


class Block(enum.Enum):
    TEXT = "text"
    THINKING = "thinking"


@frozen
class RunUsage:
    """What one CLI turn cost, from its `result` line: the record the usage ledger takes."""

    model: str  # the model the CLI ran (`sonnet` resolved to a full name)
    session_id: str  # the CLI's session UUID
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float = 0.0
    duration_ms: int = 0
    num_turns: int = 0  # API calls the CLI made for this turn

    def anthropic(self) -> JSON:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def run_usage(result: JSON, *, model: str, previous_cost: float = 0.0) -> RunUsage:
    """The usage record of one `result` line.

    `total_cost_usd` is the whole CLI session's cost so far; this turn's share comes from
    `model_usage_since_last_result` when the CLI reports it, else from the difference with the
    previous result of the same process (`previous_cost`).
    """
    raw_usage = result.get("usage")
    usage: JSON = raw_usage if isinstance(raw_usage, dict) else {}
    since = result.get("model_usage_since_last_result")
    total = result.get("total_cost_usd")
    if isinstance(since, dict) and since:
        cost = sum(float(v.get("costUSD") or 0.0) for v in since.values() if isinstance(v, dict))
    elif isinstance(total, (int, float)):
        cost = max(0.0, float(total) - previous_cost)
    else:
        cost = 0.0
    return RunUsage(
        model=model,
        session_id=str(result.get("session_id") or ""),
        input_tokens=_int(usage.get("input_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        cache_creation_input_tokens=_int(usage.get("cache_creation_input_tokens")),
        cache_read_input_tokens=_int(usage.get("cache_read_input_tokens")),
        cost_usd=cost,
        duration_ms=_int(result.get("duration_ms")),
        num_turns=_int(result.get("num_turns")),
    )


def result_error(result: JSON) -> ProxyError | None:
    """The error a `result` line reports, in ccproxy's terms; None for a successful turn."""
    if result.get("subtype") == "success" and not result.get("is_error"):
        return None
    status = result.get("api_error_status")
    status = status if isinstance(status, int) and 400 <= status < 600 else 500
    text = result.get("result")
    if not isinstance(text, str) or not text:
        errors = result.get("errors")
        text = "; ".join(str(e) for e in errors) if isinstance(errors, list) and errors else ""
    detail = text or f"the run ended with {result.get('subtype') or 'an error'}"
    return UpstreamError(status, anthropic_type_for_status(status), f"Claude Code: {detail}")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters]"


def tool_use_text(block: JSON) -> str:
    """How a tool call Claude Code made itself reads in the answer."""
    shown = _clip(orjson.dumps(block.get("input") or {}).decode(), TOOL_INPUT_LIMIT)
    return f"\n[Claude Code ran {block.get('name') or 'a tool'}: {shown}]\n"


def tool_result_text(block: JSON, tool_name: str) -> str:
    """How that call's result reads in the answer: short, and marked when it failed."""
    content = block.get("content")
    if isinstance(content, list):
        text = "\n".join(str(b.get("text") or "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    else:
        text = str(content or "")
    label = "error" if block.get("is_error") else "result"
    return f"[{tool_name} {label}: {_clip(text.strip(), TOOL_RESULT_LIMIT)}]\n"


@define
class CliTranslator:
    """CLI messages in, Anthropic stream events out (see the module docstring)."""

    model: str  # the name the client asked for, echoed back
    message_id: str = field(factory=new_message_id)
    usage: RunUsage | None = field(default=None, init=False)  # set by the `result` line
    failure: ProxyError | None = field(default=None, init=False)  # an error before anything was sent
    _phase: Phase = field(default=Phase.NEW, init=False)
    _index: int = field(default=-1, init=False)  # the client's index of the last block opened
    _open: Block | None = field(default=None, init=False)
    _streaming: int | None = field(default=None, init=False)  # the CLI's index of the open streamed block
    _streamed_ids: set[str] = field(factory=set, init=False)  # API messages whose text came as stream events
    _tool_names: dict[str, str] = field(factory=dict, init=False)
    _stop_reason: str = field(default="end_turn", init=False)
    _cli_model: str = field(default="", init=False)  # the model the CLI resolved the request's to

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def done(self) -> bool:
        return self._phase is Phase.CLOSED or self.failure is not None

    def feed(self, message: JSON, *, previous_cost: float = 0.0) -> list[Event]:
        """One CLI output line (parsed) -> the events to send now."""
        if self.done or message.get("parent_tool_use_id"):
            return []
        kind = message.get("type")
        if kind == "stream_event":
            event = message.get("event")
            return self._stream_event(event, message) if isinstance(event, dict) else []
        if kind == "assistant":
            if message.get("is_api_error_message"):
                return []  # the CLI's wording of an API error; the result line carries it as an error
            return self._assistant(message.get("message"))
        if kind == "user":
            return self._user(message.get("message"))
        if kind == "result":
            return self._result(message, previous_cost)
        if kind == "system" and message.get("subtype") == "init" and isinstance(message.get("model"), str):
            self._cli_model = message["model"]
        return []

    def fail(self, err: ProxyError) -> list[Event]:
        """The run cannot go on: an error event if the client has bytes, else `failure`."""
        if self.done:
            return []
        if self._phase is Phase.NEW:
            self.failure = err
            return []
        self._phase = Phase.CLOSED
        return [("error", anthropic_body(err))]

    # -- the message frame ------------------------------------------------------------

    def _start(self, events: list[Event]) -> None:
        if self._phase is Phase.NEW:
            self._phase = Phase.OPEN
            events.append(
                (
                    "message_start",
                    {
                        "type": "message_start",
                        "message": {
                            "id": self.message_id,
                            "type": "message",
                            "role": "assistant",
                            "model": self.model,
                            "content": [],
                            "stop_reason": None,
                            "stop_sequence": None,
                            "usage": {"input_tokens": 0, "output_tokens": 0},
                        },
                    },
                )
            )

    def _open_block(self, kind: Block, events: list[Event]) -> None:
        self._close_block(events)
        self._start(events)
        self._index += 1
        self._open = kind
        start: JSON = (
            {"type": "text", "text": ""}
            if kind is Block.TEXT
            else {"type": "thinking", "thinking": "", "signature": ""}
        )
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": self._index, "content_block": start})
        )

    def _close_block(self, events: list[Event]) -> None:
        if self._open is not None:
            events.append(("content_block_stop", {"type": "content_block_stop", "index": self._index}))
        self._open = None
        self._streaming = None

    def _delta(self, delta: JSON, events: list[Event]) -> None:
        events.append(("content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}))

    def _whole_text(self, text: str, events: list[Event]) -> None:
        if text:
            self._open_block(Block.TEXT, events)
            self._delta({"type": "text_delta", "text": text}, events)
            self._close_block(events)

    # -- CLI messages -----------------------------------------------------------------

    def _stream_event(self, event: JSON, message: JSON) -> list[Event]:
        events: list[Event] = []
        kind = event.get("type")
        index = event.get("index")
        if kind == "content_block_start":
            block = event.get("content_block")
            block_type = block.get("type") if isinstance(block, dict) else None
            if block_type in ("text", "thinking"):
                self._streamed_ids.add(str(message.get("api_message_id") or ""))
                self._open_block(Block.TEXT if block_type == "text" else Block.THINKING, events)
                self._streaming = index if isinstance(index, int) else None
        elif kind == "content_block_delta" and index == self._streaming and self._open is not None:
            delta = event.get("delta")
            if isinstance(delta, dict) and delta.get("type") in ("text_delta", "thinking_delta", "signature_delta"):
                self._delta(delta, events)
        elif kind == "content_block_stop" and index == self._streaming:
            self._close_block(events)
        elif kind == "message_delta":
            delta = event.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("stop_reason"), str):
                self._stop_reason = delta["stop_reason"]
        return events

    def _assistant(self, msg: Any) -> list[Event]:
        if not isinstance(msg, dict) or not isinstance(msg.get("content"), list):
            return []
        events: list[Event] = []
        streamed = str(msg.get("id") or "") in self._streamed_ids
        for block in msg["content"]:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "tool_use":
                self._tool_names[str(block.get("id") or "")] = str(block.get("name") or "tool")
                self._whole_text(tool_use_text(block), events)
            elif kind == "text" and not streamed:
                self._whole_text(str(block.get("text") or ""), events)
            elif kind == "thinking" and not streamed and block.get("thinking"):
                self._open_block(Block.THINKING, events)
                self._delta({"type": "thinking_delta", "thinking": str(block["thinking"])}, events)
                self._delta({"type": "signature_delta", "signature": str(block.get("signature") or "")}, events)
                self._close_block(events)
        return events

    def _user(self, msg: Any) -> list[Event]:
        content = msg.get("content") if isinstance(msg, dict) else None
        if not isinstance(content, list):
            return []
        events: list[Event] = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                name = self._tool_names.get(str(block.get("tool_use_id") or ""), "tool")
                self._whole_text(tool_result_text(block, name), events)
        return events

    def _result(self, result: JSON, previous_cost: float) -> list[Event]:
        self.usage = run_usage(result, model=self._cli_model or self.model, previous_cost=previous_cost)
        err = result_error(result)
        if err is not None:
            events: list[Event] = []
            self._close_block(events)
            return events + self.fail(err)
        events = []
        self._start(events)
        self._close_block(events)
        stop = result.get("stop_reason")
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": stop if isinstance(stop, str) else self._stop_reason,
                        "stop_sequence": None,
                    },
                    "usage": self.usage.anthropic(),
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        self._phase = Phase.CLOSED
        return events


def fold_message(events: list[Event]) -> JSON:
    """The Anthropic `Message` the events describe: the non-streaming answer."""
    message: JSON = {}
    blocks: list[JSON] = []
    for name, payload in events:
        if name == "message_start":
            message = dict(payload["message"])
        elif name == "content_block_start":
            blocks.append(dict(payload["content_block"]))
        elif name == "content_block_delta" and blocks:
            delta, block = payload["delta"], blocks[-1]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] += delta["signature"]
        elif name == "message_delta":
            message.update(payload["delta"])
            message["usage"] = payload["usage"]
    message["content"] = blocks
    return message
