"""Seeing what the proxy did: request ids, the access log, metrics, the ledger and the raw HTTP log.

`observe` is the outermost middleware. It gives each request an id and a `RequestLog`
(reqlog.py), lets the request run, and when it ends, normally, with an error answer, or by
the client going away (499), finishes the log once: one access-log line for every request, and
for the proxied endpoints (messages, count_tokens, chat, responses) a metrics update and one
ledger row. `on_prepare` runs as each response's headers go out: it stamps `x-request-id` (an
upstream's own id is kept as `x-upstream-request-id`) and takes the time to first byte.

Monitoring endpoints (`/health`, `/metrics`, `/usage`, `/status`, `/dashboard`) are logged at
debug level, so a dashboard polling every few seconds does not drown the log.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from ccproxy_core.core import pricing
from ccproxy_core.server.metrics import Metrics, credential_rows
from ccproxy_core.server.reqlog import CURRENT, SESSION_HEADER, USAGE, RequestLog
from ccproxy_core.server.state import STATE, State
from ccproxy_core.usage.ledger import Ledger, resolve_path
from ccproxy_core.usage.record import UsageRecord

if TYPE_CHECKING:
    from ccproxy_core.server.rawlog import RawHttpLog

access_log = logging.getLogger("ccproxy.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID = "x-request-id"
UPSTREAM_REQUEST_ID = "x-upstream-request-id"
# Route paths ending so are proxied requests (under /v1, /api/v1, /api/codex, /claude, /sdk alike).
PROXIED_SUFFIXES = ("/messages", "/messages/count_tokens", "/chat/completions", "/responses")
_QUIET_PREFIXES = ("/health", "/metrics", "/usage", "/status", "/dashboard")
_ERROR_BODY_LIMIT = 65536


# A request id is a random per-process prefix and a counter: unique across processes and
# restarts like a random id, without a system call per request.
_ID_PREFIX = secrets.token_hex(6)
_ids = itertools.count(1)


def new_request_id() -> str:
    return f"req_{_ID_PREFIX}{next(_ids):012x}"


def endpoint_of(request: web.Request) -> str:
    """The route's path (`/api/v1/messages` counts as `/v1/messages`); `other` for a path no route has."""
    route = request.match_info.route
    resource = route.resource
    path = resource.canonical if resource is not None else "other"
    return path[4:] if path.startswith("/api/v1/") else path


def error_type_of(body: Any) -> str:
    """The error type of an error answer in either dialect ("" when the body says none)."""
    if not isinstance(body, bytes) or not body or len(body) > _ERROR_BODY_LIMIT:
        return ""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    error = doc.get("error") if isinstance(doc, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else ""


class Observability:
    def __init__(self, state: State) -> None:
        config = state.config
        self._state = state
        self.ledger = (
            Ledger(resolve_path(config.usage.path), retention_days=config.usage.retention_days)
            if config.usage.enabled
            else None
        )
        self.metrics = Metrics(self._credential_view, self._breaker_view) if config.metrics.enabled else None
        self.raw: RawHttpLog | None = None
        if config.log.raw_http_dir:  # a debugging aid: its module (and logging.handlers) only when asked for
            from ccproxy_core.server.rawlog import RawHttpLog

            self.raw = RawHttpLog(config.log.raw_http_dir, self._secrets, max_bytes=config.log.raw_http_max_bytes)
        self._prices: dict[str, pricing.Price | None] = {}
        self._price_source: object = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def lifecycle(self, _: web.Application) -> AsyncIterator[None]:
        # The ledger's writer starts with its first row or read, not here: an idle server has not loaded SQLite.
        if self.raw is not None:
            self.raw.start()
        yield
        if self.ledger is not None:
            await asyncio.to_thread(self.ledger.close)
        if self.raw is not None:
            self.raw.close()

    # --- what the middleware and the request path call ----------------------------------------

    def attempt(self, provider: str, credential: str, status: int | None, headers: Mapping[str, str] | None) -> None:
        if self.metrics is not None:
            self.metrics.attempt(provider, credential, status)
            if headers is not None and status is not None and status < 400:
                self.metrics.rate_headers(provider, credential, headers, time.time())

    def price(self, model: str) -> pricing.Price | None:
        table = self._state.config.pricing
        if table is not self._price_source:  # a config reload: the overrides may have changed
            self._prices, self._price_source = {}, table
        try:
            return self._prices[model]
        except KeyError:
            found = self._prices[model] = pricing.price_for(model, pricing.overrides(table))
            return found

    def record(self, log: RequestLog, status: int, error_type: str, latency_ms: float) -> UsageRecord:
        counts = log.meter.counts
        if log.provider:
            cost = pricing.cost_usd(self.price(log.upstream_model), counts)
        else:
            cost = 0.0  # refused before routing: nothing was called, nothing is owed
        ttfb = None if log.first_byte is None else log.elapsed_ms(log.first_byte)
        return UsageRecord(
            ts=log.ts,
            request_id=log.request_id,
            client=log.client,
            endpoint=log.endpoint,
            model=log.model,
            route_reason=log.reason,
            provider=log.provider,
            upstream_model=log.upstream_model,
            credential=log.credential,
            status=status,
            error_type=error_type,
            stream=log.stream,
            latency_ms=latency_ms,
            ttfb_ms=ttfb,
            input_tokens=counts.input,
            output_tokens=counts.output,
            cache_read_tokens=counts.cache_read,
            cache_creation_tokens=counts.cache_creation,
            cost_usd=cost,
            session_id=log.session_id,
        )

    def finish(self, request: web.Request, log: RequestLog, response: web.StreamResponse | None, status: int) -> None:
        log.meter.flush()
        if log.first_byte is None and response is not None and status != 499:
            log.first_byte = time.perf_counter()  # a whole answer goes out with its headers
        latency = log.elapsed_ms()
        error_type = error_type_of(getattr(response, "body", None)) if status >= 400 else ""
        if status == 499:
            error_type = "client_closed"
        if log.streaming and self.metrics is not None:
            self.metrics.streams.dec()
        rec = self.record(log, status, error_type, latency)
        if log.proxied:
            if self.metrics is not None:
                self.metrics.observe(rec)
            if (
                self.ledger is not None
                and not self.ledger.add(rec)
                and self.metrics is not None
                and self.ledger.running
            ):
                self.metrics.dropped.inc()
        quiet = request.path.startswith(_QUIET_PREFIXES) or request.path == "/"
        level = logging.DEBUG if quiet else (logging.WARNING if status >= 500 else logging.INFO)
        if access_log.isEnabledFor(level):
            access_log.log(level, "%s", access_line(request, rec), extra={"fields": access_fields(request, rec)})
        if self.raw is not None and log.proxied:
            self.raw.write(request, response, status, log)

    # --- views for the metrics collector --------------------------------------------------------

    def _credential_view(self) -> Iterator[tuple[str, str, str, Mapping[str, float]]]:
        return credential_rows(self._state.pools, self._state.runtime.providers)

    def _breaker_view(self) -> Iterator[tuple[str, bool]]:
        now = time.monotonic()
        for name in self._state.runtime.providers:
            is_open = self._state.breakers.settings.enabled and self._state.breakers.get(name).state(now) == "open"
            yield name, is_open

    def _secrets(self) -> list[str]:
        found = [self._state.config.apikey] if self._state.config.apikey else []
        for provider in self._state.config.providers:
            found.extend(provider.keys)
        for owner in self._state.pools.values():
            pool = getattr(owner, "pool", None)
            for name in getattr(pool, "names", ()):
                cred = pool._named(name) if pool is not None else None
                for attr in ("secret", "refresh_token"):
                    value = getattr(cred, attr, None)
                    if isinstance(value, str) and value:
                        found.append(value)
        return found


def access_fields(request: web.Request, rec: UsageRecord) -> dict[str, Any]:
    return {
        "request_id": rec.request_id,
        "method": request.method,
        "path": request.path,
        "status": rec.status,
        "client": rec.client,
        "remote": request.remote,
        "model": rec.model,
        "provider": rec.provider,
        "upstream_model": rec.upstream_model,
        "route_reason": rec.route_reason,
        "credential": rec.credential,
        "error_type": rec.error_type,
        "stream": rec.stream,
        "latency_ms": rec.latency_ms,
        "ttfb_ms": rec.ttfb_ms,
        "input_tokens": rec.input_tokens,
        "output_tokens": rec.output_tokens,
        "cache_read_tokens": rec.cache_read_tokens,
        "cache_creation_tokens": rec.cache_creation_tokens,
        "cost_usd": rec.cost_usd,
    }


def access_line(request: web.Request, rec: UsageRecord) -> str:
    parts = [rec.request_id, f"{request.method} {request.path}", str(rec.status), f"client={rec.client}"]
    if rec.provider:
        parts.append(f"route={rec.provider},{rec.upstream_model} ({rec.route_reason})")
    if rec.credential:
        parts.append(f"credential={rec.credential}")
    if rec.error_type:
        parts.append(f"error={rec.error_type}")
    parts.append(f"latency={rec.latency_ms:.1f}ms")
    if rec.ttfb_ms is not None:
        parts.append(f"ttfb={rec.ttfb_ms:.1f}ms")
    if rec.input_tokens or rec.output_tokens or rec.cache_read_tokens or rec.cache_creation_tokens:
        parts.append(
            f"tokens=in:{rec.input_tokens},out:{rec.output_tokens},cache_read:{rec.cache_read_tokens},"
            f"cache_write:{rec.cache_creation_tokens}"
        )
    return " ".join(parts)


OBS = web.AppKey("observability", Observability)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    obs = request.app[OBS]
    log = RequestLog(new_request_id(), endpoint_of(request), obs)
    log.proxied = log.endpoint.endswith(PROXIED_SUFFIXES)
    log.session_id = request.headers.get(SESSION_HEADER, "")
    request[USAGE] = log
    if obs.raw is not None and log.proxied:
        log.raw = bytearray()
    token = CURRENT.set(log)
    try:
        response = await handler(request)
    except asyncio.CancelledError:  # the client went away (the server cancels its handler)
        obs.finish(request, log, None, 499)
        raise
    except BaseException:
        obs.finish(request, log, None, 500)
        raise
    finally:
        CURRENT.reset(token)
    transport = request.transport
    gone = transport is None or transport.is_closing()
    # A client gone before its answer went out: the error answer a broken write produced is never seen.
    status = 499 if gone and not response.prepared else response.status
    obs.finish(request, log, response, status)
    return response


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """As a response's headers go out: its request id, and the time of its first byte."""
    try:
        log: RequestLog | None = request[USAGE]  # (not request.get: the Mapping ABC's, two calls)
    except KeyError:  # an answer made outside the middlewares (framing.py)
        log = None
    upstream_id = response.headers.get(REQUEST_ID)
    request_id = log.request_id if log is not None and log.request_id else new_request_id()
    if upstream_id and upstream_id != request_id:
        response.headers[UPSTREAM_REQUEST_ID] = upstream_id
    response.headers[REQUEST_ID] = request_id
    if log is None:
        return
    log.first_byte = time.perf_counter()
    if not isinstance(response, web.Response) and response.content_type == "text/event-stream":
        log.streaming = True
        obs = request.app[OBS]
        if obs.metrics is not None:
            obs.metrics.streams.inc()


def install(app: web.Application) -> Observability:
    """Attach observability to an app whose `STATE` is set; the middleware goes first in its list."""
    obs = app[OBS] = Observability(app[STATE])
    app.on_response_prepare.append(on_prepare)
    app.cleanup_ctx.append(obs.lifecycle)
    return obs
