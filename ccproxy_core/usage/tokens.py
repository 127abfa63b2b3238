"""What the provider said a request used, read from its answer as it passes: pure, sans I/O.

`UsageMeter` is fed the provider's raw answer (whole JSON bodies, or SSE bytes in whatever
chunks they arrive) or already decoded events, and keeps the latest usage the provider
reported, in Anthropic's sense: `input` excludes cached tokens. From Anthropic that is
`message_start`'s usage, updated by each `message_delta` (whose counts are cumulative); from an
OpenAI-compatible provider it is the `usage` object of the JSON answer or of the final stream
chunk, with `input = prompt_tokens - cached_tokens` and `cache_read = cached_tokens`.

The byte path is built to cost almost nothing on a stream: it never decodes SSE in general. It
keeps only the current partial line and looks for the bytes `"usage":` followed by an object
in complete lines (a `"usage"` inside model text is escaped as `\\"usage\\"`, so it cannot
match, and OpenAI's `"usage":null` on every chunk is passed over); only a line that holds one is
parsed as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ccproxy_core.core.pricing import TokenCounts

_MARK = b'"usage":'
_OBJECT_MARKS = (b'"usage":{', b'"usage": {')  # compact JSON, and JSON written with a space
MAX_PARTIAL = 4 * 1024 * 1024  # a "line" longer than this is not SSE: stop carrying it


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def from_anthropic(usage: Mapping[str, Any]) -> dict[str, int]:
    """The fields an Anthropic `usage` object carries (absent ones are left out: deltas are partial)."""
    out: dict[str, int] = {}
    if "input_tokens" in usage:
        out["input"] = _int(usage["input_tokens"])
    if "output_tokens" in usage:
        out["output"] = _int(usage["output_tokens"])
    if "cache_read_input_tokens" in usage:
        out["cache_read"] = _int(usage["cache_read_input_tokens"])
    if "cache_creation_input_tokens" in usage:
        out["cache_creation"] = _int(usage["cache_creation_input_tokens"])
    breakdown = usage.get("cache_creation")
    if isinstance(breakdown, dict) and "ephemeral_1h_input_tokens" in breakdown:
        out["cache_creation_1h"] = _int(breakdown["ephemeral_1h_input_tokens"])
    return out


def from_openai(usage: Mapping[str, Any]) -> dict[str, int]:
    """An OpenAI `usage` object in Anthropic's sense: cached prompt tokens are cache reads, not input."""
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    if not cached:  # DeepSeek names its cache hits differently
        cached = _int(usage.get("prompt_cache_hit_tokens"))
    prompt = _int(usage.get("prompt_tokens"))
    return {
        "input": max(prompt - cached, 0),
        "output": _int(usage.get("completion_tokens")),
        "cache_read": cached,
        "cache_creation": 0,
    }


class UsageMeter:
    """The latest usage seen in one provider answer; `seen` says whether any was reported."""

    __slots__ = ("_counts", "_partial", "seen")

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._partial = b""
        self.seen = False

    @property
    def counts(self) -> TokenCounts:
        return TokenCounts(**self._counts)

    # --- decoded payloads ---------------------------------------------------------------------

    def feed_event(self, payload: Mapping[str, Any]) -> None:
        """One decoded JSON payload: an Anthropic message or stream event, or an OpenAI answer or chunk."""
        kind = payload.get("type")
        if kind == "message_start":
            message = payload.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
        else:
            usage = payload.get("usage")
        if not isinstance(usage, dict):  # parsed JSON: `dict`, whose isinstance is ~10x cheaper than Mapping's
            return
        if "prompt_tokens" in usage or "completion_tokens" in usage:
            self._counts = from_openai(usage)
        elif kind == "message_start":
            self._counts = from_anthropic(usage)
        else:  # message_delta or a whole message: cumulative counts, each field as given
            self._counts.update(from_anthropic(usage))
        self.seen = True

    def feed_body(self, body: bytes) -> None:
        """A whole (non-streaming) JSON answer."""
        if body.find(_MARK) < 0:  # (find, not `in`: see core/sse.py)
            return
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if isinstance(payload, dict):
            self.feed_event(payload)

    # --- raw SSE bytes ------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        """A piece of an SSE body as it came off the wire (any split)."""
        buf = self._partial + chunk if self._partial else chunk
        end = buf.rfind(b"\n") + 1
        if end == 0:
            self._partial = buf if len(buf) <= MAX_PARTIAL else b""
            return
        self._partial = buf[end:] if end < len(buf) else b""
        for mark in _OBJECT_MARKS:  # `"usage":null` (on every OpenAI chunk) is passed over
            pos = buf.find(mark, 0, end)
            while pos != -1:
                stop = buf.find(b"\n", pos, end)
                self._line(buf[buf.rfind(b"\n", 0, pos) + 1 : stop])
                pos = buf.find(mark, stop, end)

    def flush(self) -> None:
        """The stream ended: a last line with no line end still counts."""
        if self._partial:
            partial, self._partial = self._partial, b""
            if _MARK in partial:
                self._line(partial)

    def _line(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        if not line.startswith(b"data:"):
            return
        try:
            payload = orjson.loads(line[5:])
        except orjson.JSONDecodeError:
            return
        if isinstance(payload, dict):
            self.feed_event(payload)
