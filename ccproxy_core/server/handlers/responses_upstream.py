"""A provider that speaks the Responses API itself (`kind: "responses"`; a codex pool too).

A Responses client routed to it is passed through: the body goes as the client sent it but for
`model` (spliced into the raw bytes, `core/splice.py`), with the client's own headers and the
provider's credential, and the answer, JSON or SSE, comes back unchanged, event by event as it
arrives (`relay.pump_bytes`). An error before the first byte is the provider's own OpenAI error
answer (or ccproxy's, OpenAI-shaped); once streaming, a broken or cut stream ends in
`response.failed` carrying the provider's response id and the next sequence number, since Codex
ignores a bare `error` event.

The entry point is `passthrough(request, candidate, raw, body, stream=, echo=, headers=)`; the
credential comes from the candidate's provider pool exactly as for the Messages passthrough
(`calls.responses_call` walks it), so any provider whose preset has a `responses_path` plugs in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from multidict import CIMultiDictProxy

from ccproxy_core.core.errors import ProxyError
from ccproxy_core.core.ids import new_id
from ccproxy_core.core.splice import with_string_field
from ccproxy_core.core.wire import JSON
from ccproxy_core.server import calls, dispatch
from ccproxy_core.server.relay import pump_bytes
from ccproxy_core.server.upstream import Answer
from ccproxy_core.translate.responses_response import response_object
from ccproxy_core.translate.responses_stream import encode_event, failed_error

# Provider kinds whose upstream speaks Responses: a Responses client's body passes straight through.
PASSTHROUGH_KINDS = frozenset({"responses", "codex"})

# How a Responses stream says it is finished: its final event. A bare `error` event is not one
# (Codex ignores it): a stream that ends after it gets ccproxy's `response.failed`.
_FINAL = (b"response.completed", b"response.failed", b"response.incomplete")
RESPONSES_END = (
    tuple(b"event: " + name for name in _FINAL),
    tuple(f'"type"{sep}"{name.decode()}"'.encode() for name in _FINAL for sep in (":", ": ")),
)

_RESPONSE_ID = re.compile(rb'"id"[ \t]*:[ \t]*"(resp_[^"\\]*)"')
_SEQUENCE = b'"sequence_number"'
_NUMBER = re.compile(rb"[ \t]*:[ \t]*(\d+)")


async def passthrough(
    request: web.Request,
    candidate: dispatch.Candidate,
    raw: bytes,
    body: JSON,
    *,
    stream: bool,
    echo: Mapping[str, Any],
    headers: dict[str, str],
) -> web.StreamResponse:
    """The client's Responses request to the candidate's Responses endpoint, its answer back unchanged."""
    payload = with_string_field(raw, body, "model", candidate.model)
    async with calls.responses_call(request, candidate, payload, stream=stream) as upstream:
        if not stream:
            return await upstream.whole_reply(headers)
        watched = _Watched(upstream.answer)
        failed = _Failed(watched, model=str(body.get("model") or candidate.model), echo=echo)
        return await pump_bytes(
            request, watched, candidate.provider.name, headers, end=RESPONSES_END, on_error=failed.event
        )


class _Watched:
    """The provider's answer, read through: notes the response id and the last sequence number
    seen, so a `response.failed` ccproxy has to write continues the provider's own stream."""

    __slots__ = ("_inner", "response_id", "sequence")

    def __init__(self, inner: Answer) -> None:
        self._inner = inner
        self.response_id = ""
        self.sequence = -1

    @property
    def status(self) -> int:
        return self._inner.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self._inner.headers

    @property
    def content_type(self) -> str:
        return self._inner.content_type

    def _note(self, chunk: bytes) -> None:
        if not self.response_id and (found := _RESPONSE_ID.search(chunk)):
            self.response_id = found.group(1).decode()
        at = chunk.rfind(_SEQUENCE)
        if at >= 0 and (number := _NUMBER.match(chunk, at + len(_SEQUENCE))):
            self.sequence = int(number.group(1))

    async def read(self) -> bytes:
        return await self._inner.read()

    async def readany(self) -> bytes:
        chunk = await self._inner.readany()
        self._note(chunk)
        return chunk

    def close(self) -> None:
        self._inner.close()

    def release(self) -> None:
        self._inner.release()


class _Failed:
    """The `response.failed` that ends a passthrough stream ccproxy had to cut."""

    def __init__(self, watched: _Watched, *, model: str, echo: Mapping[str, Any]) -> None:
        self._watched = watched
        self._model = model
        self._echo = echo

    def event(self, err: ProxyError) -> bytes:
        watched = self._watched
        response = response_object(
            resp_id=watched.response_id or new_id("resp_"),
            created_at=int(time.time()),
            model=self._model,
            status="failed",
            output=[],
            echo=self._echo,
            error=failed_error(err),
        )
        return encode_event({"type": "response.failed", "response": response, "sequence_number": watched.sequence + 1})
