"""Moving an upstream answer to the client: the byte pump and the event pump.

Both write each piece the moment it is complete and never wait for the end of a stream. The
client's response starts only when the provider's first body bytes are in hand: a provider that
dies right after its headers, whose stream opens with an error event, or that answers a
streaming request with something that is not an event stream, has then sent the client nothing,
so the request can still fail over (`AttemptFailed`).

Once the client has bytes, a status code can no longer be sent, so every failure (a broken or
stalled provider, a stream cut before its final event, data that does not decode, or an
exception of ccproxy's own) ends the stream with exactly one well-formed error in the client's
own dialect, then the chunked terminator, and the connection is closed. A stream is never
reported complete when the provider did not finish it: the SDKs then raise instead of returning
a silently partial message.

When the client goes away, aiohttp cancels the handler (the server runs with
`handler_cancellation=True`); the `finally` blocks then close the upstream answer, which closes
its connection, so the provider sees the cancellation at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

import orjson
from aiohttp import web
from multidict import CIMultiDict

from ccproxy_core.core.errors import (
    AttemptFailed,
    ProxyError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
    status_for_anthropic_type,
)
from ccproxy_core.core.headers import STREAM_HEADERS, client_response_headers
from ccproxy_core.core.outcome import classify, no_answer
from ccproxy_core.core.redaction import Redactor
from ccproxy_core.core.sse import SSEDecoder, SSEEvent, anthropic_event
from ccproxy_core.server import reqlog
from ccproxy_core.server.state import STATE
from ccproxy_core.server.upstream import Answer
from ccproxy_core.translate.chat_response import in_band_error

log = logging.getLogger("ccproxy.relay")

Encoder = Callable[[ProxyError], bytes]

# What a translated Anthropic stream sends after each silence of `limits.keepalive_interval`.
PING = anthropic_event("ping", {"type": "ping"})

# How an event says it is an error, in either dialect (each starts a line: an SSE field).
ERROR_LINES = (b"event: error", b'data: {"error"', b'data:{"error"')
# How a passthrough stream says it is finished, per dialect: markers that start a line, and JSON
# fragments that only occur as structure (inside a JSON string a quote is escaped).
ANTHROPIC_END = ((b"event: message_stop", ERROR_LINES[0]), (b'"type":"message_stop"', b'"type": "message_stop"'))
OPENAI_END = ((b"data: [DONE]", b"data:[DONE]", *ERROR_LINES[1:]), (b'"finish_reason":"', b'"finish_reason": "'))
EndMarkers = tuple[tuple[bytes, ...], tuple[bytes, ...]]
_ERRORS: EndMarkers = (ERROR_LINES, ())


def anthropic_stream_error(err: ProxyError) -> bytes:
    return anthropic_event("error", {"type": "error", "error": {"type": err.type, "message": err.message}})


def stream_headers(upstream: Answer | None, extra: dict[str, str]) -> CIMultiDict[str]:
    headers = client_response_headers(upstream.headers) if upstream is not None else CIMultiDict()
    headers.update(STREAM_HEADERS)
    headers.update(extra)
    return headers


def truncated(provider: str) -> UpstreamError:
    return UpstreamError(
        502, "api_error", f"provider {provider!r} ended the stream before its final event; the answer is incomplete"
    )


async def first_chunk(answer: Answer, provider: str) -> bytes:
    """The first bytes of a stream's body, read before the client has been sent anything."""
    if answer.content_type != "text/event-stream":
        body = b""
        with contextlib.suppress(ProxyError):
            body = await answer.read()
        error = UpstreamError(
            502,
            "api_error",
            f"provider {provider!r} answered a streaming request with {answer.content_type or 'no content type'} "
            f"instead of an event stream: {body[:200].decode('utf-8', 'replace').strip()}",
        )
        raise AttemptFailed(error, outcome=classify(502, {}, b""))
    try:
        chunk = await answer.readany()
    except (UpstreamUnreachable, UpstreamTimeout) as exc:
        raise AttemptFailed(exc, outcome=no_answer(exc.message)) from exc
    if not chunk:
        silent = UpstreamUnreachable(f"provider {provider!r} ended the stream before sending anything")
        raise AttemptFailed(silent, outcome=no_answer(silent.message))
    if chunk.startswith(ERROR_LINES):
        opening = _opening_error(chunk, provider)
        raise AttemptFailed(opening, outcome=classify(opening.http_status, {}, chunk))
    reqlog.upstream(chunk)
    return chunk


def _opening_error(chunk: bytes, provider: str) -> ProxyError:
    """The error a stream opened with: Anthropic's `event: error` or an OpenAI `{"error": ...}`."""
    for event in SSEDecoder().feed(chunk + b"\n\n"):
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            break
        if event.event == "error":
            error = payload.get("error") if isinstance(payload, dict) else None
            etype = error.get("type") if isinstance(error, dict) else None
            status = status_for_anthropic_type(etype) if isinstance(etype, str) else 500
            return UpstreamError.from_anthropic(status, payload)
        return in_band_error(payload)
    return UpstreamUnreachable(f"provider {provider!r} opened its stream with an error")


def _boundary(data: bytes) -> int:
    """Where the last whole SSE event in `data` ends (0: none ends in it)."""
    if data.endswith((b"\n\n", b"\r\n\r\n")):  # the usual chunk: whole events, nothing to search
        return len(data)
    lf = data.rfind(b"\n\n")
    crlf = data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


def _ends(data: bytes, markers: EndMarkers) -> bool:
    """Whether these whole events hold the stream's final event."""
    lines, fragments = markers
    for marker in lines:
        at = data.find(marker)
        while at >= 0:
            if at == 0 or data[at - 1] in b"\r\n":
                return True
            at = data.find(marker, at + 1)
    for fragment in fragments:  # noqa: SIM110 (a loop, not any(): no generator per chunk)
        if data.find(fragment) >= 0:  # (find, not `in`: see core/sse.py)
            return True
    return False


async def _end_with_error(response: web.StreamResponse, error: bytes) -> None:
    """The last word of a broken stream; the connection closes after the chunked terminator."""
    response.force_close()
    with contextlib.suppress(ConnectionError):
        await response.write(error)


async def pump_bytes(
    request: web.Request,
    answer: Answer,
    provider: str,
    extra_headers: dict[str, str],
    *,
    end: EndMarkers = ANTHROPIC_END,
    on_error: Encoder = anthropic_stream_error,
) -> web.StreamResponse:
    """Forward an SSE body byte for byte, event by event, as it arrives.

    Only whole events are forwarded; an incomplete trailing event is held until it completes,
    and dropped if the stream breaks, so an appended error always starts on an event boundary."""
    first = await first_chunk(answer, provider)
    redactor = request.app[STATE].redactor
    response = web.StreamResponse(status=answer.status, headers=stream_headers(answer, extra_headers))
    await response.prepare(request)
    pending = b""
    finished = False
    failure: ProxyError | None = None
    try:
        data = first
        feed = reqlog.feeder()
        while True:
            cut = _boundary(data)
            if cut:
                whole = data[:cut] if cut < len(data) else data
                if not finished:
                    finished = _ends(whole, end)
                if whole.find(b"error") >= 0 and _ends(whole, _ERRORS):
                    whole = redactor.scrub_bytes(whole)  # a provider quoting a key in its error
                await response.write(whole)
                pending = data[cut:]
            else:
                pending = data
            chunk = await answer.readany()  # a coroutine per chunk: cheaper than an async generator
            feed(chunk)
            if not chunk:
                break
            data = pending + chunk if pending else chunk
        if not finished:
            failure = truncated(provider)
        elif pending.strip():
            await response.write(pending)
    except ProxyError as err:
        failure = err
    except ConnectionError:
        raise  # the client went away: nobody is left to tell
    except Exception:
        log.exception("forwarding the stream of provider %r failed", provider)
        failure = ProxyError("internal error in ccproxy while forwarding the stream; the details are in its log")
    finally:
        answer.close()
    if failure is not None:
        failure.message = redactor.scrub(failure.message)
        log.warning("%s", failure.message)
        await _end_with_error(response, on_error(failure))
    await response.write_eof()
    return response


Translate = Callable[[SSEEvent], Iterable[bytes]]


class _Writer:
    """Writes whole events to the client; with a keep-alive, also a ping after each silence.

    The silence is watched by a timer, not a task per stream: a task costs about 10 µs of CPU to
    make, start and cancel, a timer about 2, and most streams never go quiet for long enough."""

    def __init__(
        self, response: web.StreamResponse, keepalive: bytes | None, interval: float, redactor: Redactor
    ) -> None:
        self.response = response
        self._redactor = redactor
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._ping, self._interval = keepalive, interval
        self._timer = self._loop.call_at(self._last + interval, self._due) if keepalive and interval > 0 else None
        self._pinging: asyncio.Task[None] | None = None

    async def write(self, pieces: Iterable[bytes]) -> None:
        data = b"".join(pieces)
        if data:
            if data.find(b'"error"') >= 0:  # an error the provider sent in-band may quote a secret
                data = self._redactor.scrub_bytes(data)
            self._last = self._loop.time()
            await self.response.write(data)

    def _due(self) -> None:
        if self._loop.time() - self._last >= self._interval:
            # Each write is one whole event, so a ping can never land inside another event.
            self._pinging = self._loop.create_task(self._send_ping(), name="sse-keepalive")
        else:
            self._timer = self._loop.call_at(self._last + self._interval, self._due)

    async def _send_ping(self) -> None:
        assert self._ping is not None
        with contextlib.suppress(ConnectionError):  # the client left: the pump finds out on its next write
            await self.write((self._ping,))
        self._pinging = None
        self._timer = self._loop.call_at(self._last + self._interval, self._due)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._pinging is not None:
            self._pinging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinging


async def _translated(
    out: _Writer, events: Iterable[SSEEvent], translate: Translate, head: Iterable[bytes] = ()
) -> list[bytes]:
    """What the events of one chunk translate to, for one write: events that arrived together go
    out together. If one of them cannot be translated, what the earlier ones gave is written
    first, so the client has every event the translator believes it sent before the error."""
    pieces = list(head)
    try:
        for event in events:
            pieces.extend(translate(event))
    except Exception:  # translate is synchronous: nothing but its own errors can arrive here
        await out.write(pieces)
        raise
    return pieces


async def pump_events(
    request: web.Request,
    answer: Answer,
    provider: str,
    *,
    extra_headers: dict[str, str],
    first: Iterable[bytes],
    translate: Translate,
    finish: Callable[[], Iterable[bytes]],
    fail: Callable[[ProxyError], Iterable[bytes]],
    on_error: Encoder,
    keepalive: bytes | None = None,
    keepalive_interval: float = 0.0,
    done: Callable[[], bool] | None = None,
) -> web.StreamResponse:
    """Decode the provider's SSE, translate each event, write what it gives at once.

    `finish` is called when the provider's body ends (the handler knows from its translator
    whether the provider finished the answer, and ends it with an error if not); `fail` turns
    an error into the client's closing events. `on_error` is the last resort when the
    translator itself cannot be trusted any more: one bare error event in the client's dialect.
    `done`, when given, says the client has its whole answer: the pump stops reading there, and a
    client that hangs up from then on (Codex does, right after `response.completed`) is no fault."""
    opening = await first_chunk(answer, provider)
    response = web.StreamResponse(status=200, headers=stream_headers(None, extra_headers))
    await response.prepare(request)
    decoder = SSEDecoder()
    out = _Writer(response, keepalive, keepalive_interval, request.app[STATE].redactor)
    failure: ProxyError | None = None
    broken = False
    try:
        await out.write(await _translated(out, decoder.feed(opening), translate, head=first))
        feed = reqlog.feeder()
        finished = done is not None and done()
        while not finished and (chunk := await answer.readany()):
            feed(chunk)
            await out.write(await _translated(out, decoder.feed(chunk), translate))
            finished = done is not None and done()
        if not finished:
            for event in decoder.flush():
                await out.write(translate(event))
            await out.write(finish())
    except ProxyError as err:
        failure = err
    except ConnectionError:
        raise  # the client went away: nobody is left to tell
    except Exception:
        log.exception("translating the stream of provider %r failed", provider)
        failure = ProxyError("internal error in ccproxy while translating the stream; the details are in its log")
        broken = True
    finally:
        await out.close()
        answer.close()
    if failure is not None:
        failure.message = request.app[STATE].redactor.scrub(failure.message)
        log.warning("%s", failure.message)
        closing = b""
        if not broken:
            try:
                closing = b"".join(fail(failure))
            except Exception:
                log.exception("ending the stream of provider %r failed", provider)
                broken = True
        if broken:  # only then: `on_error` may share the translator's state (the Responses one does)
            closing = on_error(failure)
        response.force_close()
        if closing:
            with contextlib.suppress(ConnectionError):
                await response.write(closing)
    try:
        await response.write_eof()
    except ConnectionError:
        if done is None or not done():
            raise  # the client left before its answer was whole
    return response
