"""The HTTP edge: requests aiohttp cannot parse are answered in the client's dialect, in one log line.

A request with bad framing (a bad or doubled Content-Length, broken chunked encoding, no
Host, a header line past the limit, a request line too long) never reaches the application:
aiohttp's protocol answers it from `RequestHandler.handle_error`, by default with a text/plain
page and an ERROR record carrying a traceback. `ProxyRequestHandler` overrides that method:
the answer is a JSON error (in the dialect of the endpoint named by the request line, when it
can be read; otherwise a body both SDKs can parse) and the log gets one WARNING line. An HTTP
error aiohttp raises before the middlewares run (an unknown `Expect` on a path without a route)
is rendered the same way as it goes out (`finish_response`).

aiohttp builds its protocol objects inside `web.Server`, and offers no setting to choose their
class, so `ProxyRunner` (an `AppRunner`) hands out a `web.Server` whose protocol is ours, and
`run_app` serves with that runner (aiohttp's `web.run_app` always makes a plain `AppRunner`).
Tests serve the app the same way through `ProxyRunner`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import HttpVersion11, web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from ccproxy_core.core.errors import InvalidRequest, ProxyError, UpstreamTimeout, anthropic_type_for_status
from ccproxy_core.core.headers import ANTHROPIC_VERSION
from ccproxy_core.server.replies import is_openai_dialect, openai_dialect, render_error

log = logging.getLogger("ccproxy")

_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ (/[^ ?#\r\n]*)")
_SNIFF = 8192  # bytes of a connection's latest chunk kept: a request line and the headers that follow
_LINE_END_WITHIN = 65536  # how far a long request line's end is looked for
_SHOWN = 200  # characters of aiohttp's parse message kept in the answer and the log


def sniffed(data: bytes) -> bytes:
    """What naming the dialect needs of a chunk, in at most `_SNIFF` bytes: its start (a request
    line's method and path) and, after a request line too long for that, the headers that follow
    it, where `anthropic-version` may be."""
    if len(data) <= _SNIFF:
        return data  # (no copy)
    eol = data.find(b"\r\n", 0, _LINE_END_WITHIN)
    half = _SNIFF // 2
    if eol <= half:
        return data[:_SNIFF]
    return data[:half] + data[eol : eol + half]


def dialect_of(data: bytes) -> bool | None:
    """Whether the request starting `data` speaks OpenAI; None when no request line can be read."""
    match = _REQUEST_LINE.match(data)
    if match is None:
        return None
    path = match.group(1).decode("latin-1")
    return openai_dialect(path, b"\n" + ANTHROPIC_VERSION.encode() + b":" in data.lower())


# aiohttp quotes the offending header line; a credential in it goes neither to the log nor back.
_CREDENTIAL = re.compile(r"(?i)\b((?:proxy-)?authorization|x-api-key|cookie)(\s*:\s*)[^'\"]*")


def framing_error(exc: BaseException | None, message: str | None) -> ProxyError:
    why = " ".join((message or getattr(exc, "message", "") or "malformed HTTP request").split())
    why = _CREDENTIAL.sub(r"\1\2[redacted]", why)[:_SHOWN]
    return InvalidRequest(f"malformed HTTP request: {why}")


class ProxyRequestHandler(RequestHandler):
    """aiohttp's HTTP protocol, with ccproxy's answers for requests that never reach the app."""

    _last_data: bytes = b""

    def data_received(self, data: bytes) -> None:
        # Kept for naming the dialect if this chunk's request fails to parse; a bounded copy, so
        # an idle keep-alive connection holds no large buffer.
        self._last_data = sniffed(data)
        super().data_received(data)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # part of an answer is out: only closing is left
            return super().handle_error(request, status, exc, message)
        openai: bool | None
        if isinstance(exc, HttpProcessingError):  # the request could not be parsed
            err = framing_error(exc, message)
            # Non-HTTP bytes as a connection's first request are scanners and TLS probes: not news.
            quiet = isinstance(exc, BadHttpMethod) and self._request_count == 1
            log.log(logging.DEBUG if quiet else logging.WARNING, "refused %s from %s", err.message, request.remote)
            openai = dialect_of(self._last_data)
        else:
            if status == 504:
                err = UpstreamTimeout("ccproxy took too long to answer; try again")
            else:  # an exception outside the middlewares: a ccproxy bug, logged with its traceback
                self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
                err = ProxyError("internal error in ccproxy; the details are in its log")
            openai = is_openai_dialect(request)
        response = render_error(err, openai=openai)
        response.force_close()
        return response

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        if resp.status >= 400 and isinstance(resp, web.HTTPException):  # (an ABC's isinstance: only for errors)
            # Raised before the middlewares could render it (`Expect` on a path without a route).
            err = EscapedHttpError(resp.status, resp.text or resp.reason)
            resp = render_error(err, openai=is_openai_dialect(request))
        return await super().finish_response(request, resp, start_time)


class EscapedHttpError(ProxyError):
    """An aiohttp HTTP error that reached the protocol without passing the `guard` middleware."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self._status = status

    @property
    def http_status(self) -> int:
        return self._status

    @property
    def type(self) -> str:
        return anthropic_type_for_status(self._status)


ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def with_expect_handler(routes: Iterable[web.AbstractRouteDef], expect: ExpectHandler) -> list[web.AbstractRouteDef]:
    """`routes`, each answering `Expect:` with `expect` (a route table keeps its literal form)."""
    return [
        web.RouteDef(r.method, r.path, r.handler, {"expect_handler": expect, **r.kwargs})
        if isinstance(r, web.RouteDef)
        else r
        for r in routes
    ]


async def send_continue(request: web.Request) -> None:
    """Tell an HTTP/1.1 client that sent `Expect: 100-continue` to send its body."""
    if request.version == HttpVersion11:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the interim answer is not the answer: errors may still be sent


class ProxyRunner(web.AppRunner):
    """An `AppRunner` whose connections use `ProxyRequestHandler`."""

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return _ProxyServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            **plain._kwargs,
        )


class _ProxyServer(web.Server):
    def __call__(self) -> RequestHandler:
        return ProxyRequestHandler(self, loop=self._loop, **self._kwargs)


def run_app(
    app: web.Application,
    *,
    host: str,
    port: int,
    print: Callable[[str], None],  # the name web.run_app gives it
    shutdown_timeout: float,
    reuse_port: bool = False,
    **runner_args: Any,
) -> None:
    """Serve `app` until SIGINT/SIGTERM, then drain requests in flight (web.run_app, with our protocol).

    `reuse_port`: SO_REUSEPORT, so the workers of `serve --workers N` share one port (cli/workers.py)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(app, host, port, print, shutdown_timeout, runner_args, reuse_port))


async def _serve(
    app: web.Application,
    host: str,
    port: int,
    listening: Callable[[str], None],
    shutdown_timeout: float,
    runner_args: dict[str, Any],
    reuse_port: bool = False,
) -> None:
    runner = ProxyRunner(app, shutdown_timeout=shutdown_timeout, **runner_args)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
        listening(f"http://{host}:{port}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C arrives as KeyboardInterrupt
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
