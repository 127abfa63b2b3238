"""Server-sent events, sans I/O: bytes in, events out; events in, bytes out.

`SSEDecoder` follows the WHATWG event-stream rules: lines end in CRLF, LF or CR (a CR at the
end of one chunk and an LF at the start of the next are one line end), `:` starts a comment,
one space after the colon is dropped, several `data:` lines join with a newline, and an event
is dispatched by a blank line. A partial line is carried to the next `feed`. Lines are split
on bytes and decoded only when complete, so a multi-byte character split across chunks
survives.

On the stream path a byte string is searched with `data.find(x) >= 0`, not `x in data`: CPython
3.11's `in` first tries `x` as an integer, raising and clearing a TypeError, about 2,000
instructions a test (callgrind), which was 4 % of a translated stream's whole cost.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

from ccproxy_core.core.errors import UpstreamError
from ccproxy_core.core.wire import JSON

DONE = b"data: [DONE]\n\n"


class SSEEvent(NamedTuple):
    event: str  # "" when the stream gave no `event:` field
    data: str


_new = tuple.__new__  # SSEEvent without the Python-level __new__ a NamedTuple adds: half the cost


class SSEDecoder:
    __slots__ = ("_data", "_event", "_partial", "_skip_lf")

    def __init__(self) -> None:
        self._partial = b""
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF belongs to it
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not (self._partial or self._data or self._event) and chunk.endswith(b"\n\n") and chunk.find(b"\r") < 0:
            if chunk.startswith(b"data: ") and chunk.find(b"\n") == len(chunk) - 2:  # one event, as it was sent
                self._skip_lf = False
                return [_new(SSEEvent, ("", chunk[6:-2].decode("utf-8", "replace")))]
            events = _whole_events(chunk)  # several, as they pile up under load
            if events is not None:
                self._skip_lf = False
                return events
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        if not chunk:
            return []
        buf = self._partial + chunk if self._partial else chunk
        if buf.find(b"\r") >= 0:  # rare: CR or CRLF line ends, split by the general rule
            lines = buf.splitlines(keepends=True)
            last = lines[-1]
            if last.endswith(b"\n"):
                self._partial = b""
            elif last.endswith(b"\r"):
                self._partial = b""
                self._skip_lf = True
            else:
                self._partial = lines.pop()
            lines = [raw.rstrip(b"\r\n") for raw in lines]
        else:  # the usual stream: LF only; what follows the last LF is the partial line
            lines = buf.split(b"\n")
            self._partial = lines.pop()
        return self._lines(lines)

    def _lines(self, lines: list[bytes]) -> list[SSEEvent]:
        """Whole lines, their ends removed, in order. One loop rather than a call per line: this
        runs for every event of every translated stream."""
        events: list[SSEEvent] = []
        data, event = self._data, self._event
        for line in lines:
            if not line:  # a blank line dispatches the event
                if data:
                    events.append(SSEEvent(event, "\n".join(data)))
                    data = []
                event = ""
                continue
            if line[0] == 58:  # b":" starts a comment
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data.append(value.decode("utf-8", "replace"))
            elif name == b"event":
                event = value.decode("utf-8", "replace")
            # `id` and `retry` mean nothing to a proxy; unknown fields are ignored by the spec.
        self._data, self._event = data, event
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: a final event not followed by a blank line is still dispatched."""
        partial, self._partial = self._partial, b""
        return self._lines([partial, b""] if partial else [b""])


def _whole_events(chunk: bytes) -> list[SSEEvent] | None:
    """The events of a chunk of whole events as providers send them (LF line ends, each event a
    `data: ` line, alone or after an `event: ` line); None for any other chunk, which then takes
    the general path. Under load a read brings a stream's events many at a time, so this runs
    once for dozens of them: one split, and a test and a slice per event."""
    events: list[SSEEvent] = []
    for part in chunk[:-2].split(b"\n\n"):
        if part.startswith(b"data: "):
            if part.find(b"\n") >= 0:
                return None
            events.append(_new(SSEEvent, ("", part[6:].decode("utf-8", "replace"))))
        elif part.startswith(b"event: "):
            split = part.find(b"\n")
            if split < 0 or not part.startswith(b"data: ", split + 1) or part.find(b"\n", split + 1) >= 0:
                return None
            name, data = part[7:split].decode("utf-8", "replace"), part[split + 7 :].decode("utf-8", "replace")
            events.append(_new(SSEEvent, (name, data)))
        else:
            return None
    return events


def anthropic_event(name: str, payload: Any) -> bytes:
    """One Anthropic SSE event: `event: NAME` and the JSON payload, then a blank line."""
    head = _HEADS.get(name)
    if head is None:
        head = b"event: " + name.encode() + b"\ndata: "
    return head + orjson.dumps(payload) + b"\n\n"


# The lines before the payload of each Anthropic event, made once rather than per event.
_HEADS = {
    name: b"event: " + name.encode() + b"\ndata: "
    for name in (
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    )
}


def data_event(payload: Any) -> bytes:
    """One OpenAI-style SSE event: a `data:` line only."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def anthropic_events(events: Iterable[tuple[str, Any]]) -> list[bytes]:
    """A translator's (name, payload) events, each as `anthropic_event` writes it."""
    return [anthropic_event(name, payload) for name, payload in events]


def data_events(payloads: Iterable[Any]) -> list[bytes]:
    """A translator's chunks, each as `data_event` writes it."""
    return [data_event(payload) for payload in payloads]


def event_payload(event: SSEEvent, provider: str) -> JSON | None:
    """An event's data as a JSON object; None for an empty keep-alive. Data that is not a JSON
    object is the provider's fault, and ends the stream rather than being skipped unseen."""
    data = event.data
    if not data or data.isspace():  # (not `strip()`, which copies every event's data to test it)
        return None
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        raise UpstreamError(
            502, "api_error", f"provider {provider!r} sent an event that is not a JSON object: {event.data[:200]!r}"
        )
    return payload
