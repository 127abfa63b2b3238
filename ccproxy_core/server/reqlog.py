"""One request's log: what the request path learned about a request, filled in as it goes.

`observe` (the outermost middleware, observability.py) gives every request a `RequestLog`, at
`request[USAGE]` and as the current task's log, and when the request ends, however it ends,
turns it into the access-log line, the metrics and a ledger row. The request path only reports
facts, through these module functions (each a no-op outside a request, and cheap inside one):

    requested(model, stream)          handlers, after reading the body
    routed(provider, model, reason)   dispatch, for each candidate tried
    attempt(credential, status, hdrs) calls, for each upstream answer (status None: none came)
    upstream(chunk)                   relay, each body chunk of a streamed answer (or, cheaper,
                                      `feed = feeder()` once per stream, then `feed(chunk)`)
    upstream_body(data)               calls, a whole (JSON) answer

They find the log through a context variable, so the code between the handler and the upstream
call needs no `request` parameter. Everything else (status, error type, latency, time to first
byte, `x-request-id`) is read from the response itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ccproxy_core.usage.tokens import UsageMeter

if TYPE_CHECKING:
    from ccproxy_core.keys.model import ClientKey
    from ccproxy_core.server.observability import Observability

SESSION_HEADER = "X-Claude-Code-Session-Id"
RAW_LIMIT = 65536  # bytes of an answer kept for the raw HTTP log (which cuts there anyway)


class RequestLog:
    __slots__ = (
        "_obs",
        "client",
        "client_key",
        "credential",
        "endpoint",
        "first_byte",
        "meter",
        "model",
        "provider",
        "proxied",
        "raw",
        "reason",
        "request_id",
        "session_id",
        "started",
        "status",
        "stream",
        "streaming",
        "ts",
        "upstream_model",
    )

    def __init__(self, request_id: str, endpoint: str, obs: Observability | None = None) -> None:
        self._obs = obs
        self.request_id = request_id
        self.endpoint = endpoint
        self.ts = time.time()
        self.started = time.perf_counter()
        self.first_byte: float | None = None
        self.client = "anonymous"
        self.client_key: ClientKey | None = None  # the client key keyguard.identify accepted
        self.session_id = ""
        self.model = ""
        self.stream = False
        self.provider = ""
        self.upstream_model = ""
        self.reason = ""
        self.credential = ""
        self.status = 0
        self.proxied = False  # a proxied endpoint: metrics and a ledger row
        self.streaming = False  # a stream response is open (counted in streams_in_flight)
        self.meter = UsageMeter()
        self.raw: bytearray | None = None  # the answer's bytes, kept only for the raw HTTP log

    # --- the request path's calls ---------------------------------------------------------------

    def requested(self, model: str, stream: bool) -> None:
        self.model, self.stream = model, stream

    def routed(self, provider: str, model: str, reason: str) -> None:
        self.provider, self.upstream_model, self.reason = provider, model, reason
        self.credential = ""
        self.meter = UsageMeter()  # an earlier candidate's partial answer is not this one's usage

    def attempt(self, credential: str, status: int | None, headers: Any = None) -> None:
        """One upstream call ended with `status` (None: no answer); `headers` feed the utilization gauges."""
        self.credential = credential
        if self._obs is not None:
            self._obs.attempt(self.provider, credential, status, headers)

    def upstream(self, chunk: bytes) -> None:
        self.meter.feed(chunk)
        if self.raw is not None and len(self.raw) <= RAW_LIMIT:
            self.raw += chunk

    def upstream_body(self, data: bytes) -> None:
        self.meter.feed_body(data)
        if self.raw is not None and len(self.raw) <= RAW_LIMIT:
            self.raw += data

    def upstream_event(self, payload: dict[str, Any]) -> None:
        """A decoded upstream event, for a path that decodes before metering."""
        self.meter.feed_event(payload)

    # --- read by the middleware -----------------------------------------------------------------

    def elapsed_ms(self, at: float | None = None) -> float:
        return round(((time.perf_counter() if at is None else at) - self.started) * 1000.0, 3)


USAGE = web.RequestKey("ccproxy.usage", RequestLog)
CURRENT: ContextVar[RequestLog | None] = ContextVar("ccproxy_request_log", default=None)


def requested(model: str, stream: bool) -> None:
    if (log := CURRENT.get()) is not None:
        log.requested(model, stream)


def routed(provider: str, model: str, reason: str) -> None:
    if (log := CURRENT.get()) is not None:
        log.routed(provider, model, reason)


def attempt(credential: str, status: int | None, headers: Mapping[str, str] | None = None) -> None:
    if (log := CURRENT.get()) is not None:
        log.attempt(credential, status, headers)


def upstream(chunk: bytes) -> None:
    if (log := CURRENT.get()) is not None:
        log.upstream(chunk)


def _ignore(chunk: bytes) -> None:
    pass


def feeder() -> Callable[[bytes], None]:
    """What a stream pump calls with each chunk: looked up once per stream, not once per chunk."""
    log = CURRENT.get()
    if log is None:
        return _ignore
    return log.upstream if log.raw is not None else log.meter.feed


def upstream_body(data: bytes) -> None:
    if (log := CURRENT.get()) is not None:
        log.upstream_body(data)


def log_of(request: web.Request) -> RequestLog:
    """The request's log; a detached one (reported nowhere) when no `observe` middleware ran."""
    try:
        return request[USAGE]  # (not request.get: on a Request that is the Mapping ABC's, two calls)
    except KeyError:
        log = request[USAGE] = RequestLog("", request.path)
        return log
