"""Moving an upstream answer to the client: the byte pump and the event pump.

Both write each piece the moment it is complete and never wait for the end of a stream. The
client's response starts only when the provider's first body bytes are in hand: a provider that
dies right after its headers, or whose stream opens with an error event, has then sent the
client nothing, so the request can still fail over (`AttemptFailed`). Once the client has bytes,
a failure ends the stream with an error in the client's own dialect, since a status code can no
longer be sent. When the client goes away, aiohttp cancels the handler (the server runs
with `handler_cancellation=True`); the `finally` blocks then close the upstream response, which
closes its connection, so the provider sees the cancellation at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

import aiohttp
import orjson
from aiohttp import web

from ccproxy_core.core.errors import AttemptFailed, ProxyError, UpstreamError, UpstreamUnreachable, anthropic_body
from ccproxy_core.core.headers import STREAM_HEADERS, client_response_headers
from ccproxy_core.core.sse import SSEDecoder, SSEEvent, anthropic_event
from ccproxy_core.server.upstream import Upstream
from ccproxy_core.translate.chat_response import in_band_error

log = logging.getLogger("ccproxy.relay")

Encoder = Callable[[ProxyError], bytes]

# What a translated Anthropic stream sends after each silence of `limits.keepalive_interval`.
PING = anthropic_event("ping", {"type": "ping"})


def anthropic_stream_error(err: ProxyError) -> bytes:
    return anthropic_event("error", anthropic_body(err))


def stream_headers(upstream: aiohttp.ClientResponse | None, extra: dict[str, str]) -> dict[str, str]:
    headers = client_response_headers(upstream.headers.items()) if upstream is not None else {}
    headers.update(STREAM_HEADERS)
    headers.update(extra)
    return headers


def _midstream_error(upstream: Upstream, exc: BaseException, *, started: bool = True) -> ProxyError:
    if isinstance(exc, TimeoutError):
        return upstream.timed_out(True, started=started)
    return UpstreamUnreachable(f"provider {upstream.name!r} broke off the stream: {exc or type(exc).__name__}")


async def first_chunk(source: aiohttp.ClientResponse, upstream: Upstream) -> bytes:
    """The first bytes of a stream's body, read before the client has been sent anything."""
    try:
        chunk = await source.content.readany()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise AttemptFailed(_midstream_error(upstream, exc, started=False), retryable=True) from exc
    if not chunk:
        raise AttemptFailed(
            UpstreamUnreachable(f"provider {upstream.name!r} ended the stream before sending anything"), retryable=True
        )
    if chunk.startswith((b"event: error", b'data: {"error"', b'data:{"error"')):
        raise AttemptFailed(_opening_error(chunk, upstream), retryable=True)
    return chunk


def _opening_error(chunk: bytes, upstream: Upstream) -> ProxyError:
    """The error a stream opened with: Anthropic's `event: error` or an OpenAI `{"error": ...}`."""
    for event in SSEDecoder().feed(chunk + b"\n\n"):
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            break
        if event.event == "error":
            return UpstreamError.from_anthropic(529 if "overloaded" in event.data else 500, payload)
        return in_band_error(payload)
    return UpstreamUnreachable(f"provider {upstream.name!r} opened its stream with an error")


async def pump_bytes(
    request: web.Request,
    source: aiohttp.ClientResponse,
    upstream: Upstream,
    extra_headers: dict[str, str],
    on_error: Encoder = anthropic_stream_error,
) -> web.StreamResponse:
    """Forward an SSE body byte for byte, as it arrives."""
    first = await first_chunk(source, upstream)
    response = web.StreamResponse(status=source.status, headers=stream_headers(source, extra_headers))
    await response.prepare(request)
    await response.write(first)
    tail = first[-2:]
    try:
        async for chunk in source.content.iter_any():
            await response.write(chunk)
            tail = (tail + chunk)[-2:] if len(chunk) < 2 else chunk[-2:]
    except (aiohttp.ClientError, TimeoutError) as exc:
        err = _midstream_error(upstream, exc)
        log.warning("%s", err.message)
        # An error event must start on an event boundary, whatever the provider left half sent.
        await response.write((b"" if tail == b"\n\n" else b"\n\n") + on_error(err))
    finally:
        source.close()
    await response.write_eof()
    return response


Translate = Callable[[SSEEvent], Iterable[bytes]]


class _Writer:
    """Writes whole events to the client; with a keep-alive, also a ping after each silence."""

    def __init__(self, response: web.StreamResponse, keepalive: bytes | None, interval: float) -> None:
        self.response = response
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._task = (
            self._loop.create_task(self._pings(keepalive, interval), name="sse-keepalive")
            if keepalive and interval > 0
            else None
        )

    async def write(self, pieces: Iterable[bytes]) -> None:
        data = b"".join(pieces)
        if data:
            self._last = self._loop.time()
            await self.response.write(data)

    async def _pings(self, ping: bytes, interval: float) -> None:
        # Each write is one whole event, so a ping can never land inside another event.
        while True:
            await asyncio.sleep(self._last + interval - self._loop.time())
            if self._loop.time() - self._last >= interval:
                await self.write((ping,))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def pump_events(
    request: web.Request,
    source: aiohttp.ClientResponse,
    upstream: Upstream,
    *,
    extra_headers: dict[str, str],
    first: Iterable[bytes],
    translate: Translate,
    finish: Callable[[], Iterable[bytes]],
    fail: Callable[[ProxyError], Iterable[bytes]],
    keepalive: bytes | None = None,
    keepalive_interval: float = 0.0,
) -> web.StreamResponse:
    """Decode the provider's SSE, translate each event, write what it gives at once."""
    opening = await first_chunk(source, upstream)
    response = web.StreamResponse(status=200, headers=stream_headers(None, extra_headers))
    await response.prepare(request)
    decoder = SSEDecoder()
    out = _Writer(response, keepalive, keepalive_interval)
    try:
        await out.write(first)
        try:
            for event in decoder.feed(opening):
                await out.write(translate(event))
            async for chunk in source.content.iter_any():
                for event in decoder.feed(chunk):
                    await out.write(translate(event))
            for event in decoder.flush():
                await out.write(translate(event))
            await out.write(finish())
        except ProxyError as err:
            await out.write(fail(err))
        except (aiohttp.ClientError, TimeoutError) as exc:
            broken = _midstream_error(upstream, exc)
            log.warning("%s", broken.message)
            await out.write(fail(broken))
    finally:
        await out.close()
        source.close()
    await response.write_eof()
    return response
