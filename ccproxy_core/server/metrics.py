"""Prometheus metrics: counters the request path bumps, gauges read from live state at scrape time.

The registry is the server's own `CollectorRegistry` (never the process-global one), so two
apps in one process (tests) never share a counter. Per-request series are updated once, when a
request ends (`observe`); the credential, breaker and utilization gauges are not kept at all
but read from the pools and breakers each time `/metrics` is scraped (`_LiveCollector`), so
they can never drift from `/status` and `/health`.

Label values come from configuration (provider, credential, upstream model) or from a closed set
(endpoint, status, outcome); a path no route knows is counted as endpoint `other`.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ccproxy_core.core import ratelimit_headers
from ccproxy_core.usage.record import UsageRecord

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CREDENTIAL_STATES = ("available", "rate_limited", "auth_error", "disabled", "expired")
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TTFB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HEADER_EVERY = 1.0  # seconds between rate-limit header reads per credential

# Rate-limit bucket names (ratelimit_headers) -> the `window` label.
_WINDOWS = {
    "tokens": "tokens",
    "openai-tokens": "tokens",
    "requests": "requests",
    "openai-requests": "requests",
    "input-tokens": "input_tokens",
    "output-tokens": "output_tokens",
}

# (provider name, credential name) -> {"state": str, "utilization": {window: 0..1}}
CredentialView = Callable[[], Iterator[tuple[str, str, str, Mapping[str, float]]]]
BreakerView = Callable[[], Iterator[tuple[str, bool]]]


def outcome_of(status: int | None) -> str:
    """An upstream attempt's outcome label, from its HTTP status (None: no answer at all)."""
    if status is None:
        return "unreachable"
    if status < 400:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status == 529:
        return "overloaded"
    if status in (401, 403):
        return "auth_error"
    return "client_error" if status < 500 else "server_error"


TOKEN_TYPES = ("input", "output", "cache_read", "cache_creation")


class _Histogram:
    """One histogram child's counts, in plain Python: bumped on the event loop, read at scrape time."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)  # per bucket, not cumulative
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        i = bisect.bisect_left(self.bounds, value)  # the first bound >= value, as `le` means
        if i < len(self.counts):
            self.counts[i] += 1

    def buckets(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, n in zip(self.bounds, self.counts, strict=True):
            running += n
            out.append((repr(float(bound)), float(running)))  # how prometheus_client writes `le`
        out.append(("+Inf", float(self.count)))
        return out


class _Series:
    """What one request adds to, per label set: looked up once per label set, then plain arithmetic."""

    __slots__ = ("client", "client_cost", "cost", "duration", "requests", "tokens", "ttfb")

    def __init__(self, m: Metrics, rec: UsageRecord, provider: str, model: str) -> None:
        self.requests = m._tally(m._requests, (rec.endpoint, provider, model, str(rec.status)), [0.0])
        self.duration = m._hist(m._duration, (rec.endpoint, provider), LATENCY_BUCKETS)
        self.ttfb = m._hist(m._ttfb, (rec.endpoint, provider), TTFB_BUCKETS)
        self.tokens = m._tally(m._tokens, (provider, model), [0.0] * len(TOKEN_TYPES))
        self.cost = m._tally(m._cost, (provider, model), [0.0])
        self.client = m._tally(m._client_requests, (rec.client, str(rec.status)), [0.0])
        self.client_cost = m._tally(m._client_cost, (rec.client,), [0.0])


class Level:
    """A number the request path moves (a gauge or a counter without labels); exported at scrape time."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self) -> None:
        self.value += 1

    def dec(self) -> None:
        self.value -= 1


class Metrics:
    """The server's metrics. The per-request series are plain Python tallies (the request path runs
    on one event loop, so they need no locks): a request adds to a few numbers, and the Prometheus
    families are built from them only when `/metrics` is scraped (`_RequestCollector`)."""

    def __init__(self, credentials: CredentialView, breakers: BreakerView) -> None:
        self.credentials = credentials
        self.breakers = breakers
        self.header_utilization: dict[tuple[str, str], dict[str, float]] = {}
        self._series: dict[tuple[str, str, str, str, int], _Series] = {}
        self._requests: dict[tuple[str, ...], list[float]] = {}
        self._duration: dict[tuple[str, ...], _Histogram] = {}
        self._ttfb: dict[tuple[str, ...], _Histogram] = {}
        self._tokens: dict[tuple[str, ...], list[float]] = {}
        self._cost: dict[tuple[str, ...], list[float]] = {}
        self._attempts: dict[tuple[str, ...], list[float]] = {}
        self._client_requests: dict[tuple[str, ...], list[float]] = {}
        self._client_cost: dict[tuple[str, ...], list[float]] = {}
        self._header_read: dict[tuple[str, str], float] = {}
        self.streams = Level()  # streaming answers being sent right now
        self.dropped = Level()  # ledger rows dropped because its queue was full
        self._registry: Any = None  # built by metrics_export at the first scrape

    @staticmethod
    def _tally(table: dict[tuple[str, ...], list[float]], key: tuple[str, ...], empty: list[float]) -> list[float]:
        return table.setdefault(key, empty)

    @staticmethod
    def _hist(table: dict[tuple[str, ...], _Histogram], key: tuple[str, ...], bounds: tuple[float, ...]) -> _Histogram:
        hist = table.get(key)
        if hist is None:
            hist = table[key] = _Histogram(bounds)
        return hist

    def observe(self, rec: UsageRecord) -> None:
        """One proxied request ended."""
        provider, model = rec.provider or "none", rec.upstream_model or rec.model or "none"
        key = (rec.endpoint, provider, model, rec.client, rec.status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self, rec, provider, model)
        series.requests[0] += 1
        series.duration.observe(rec.latency_ms / 1000.0)
        if rec.ttfb_ms is not None:
            series.ttfb.observe(rec.ttfb_ms / 1000.0)
        tokens = series.tokens
        tokens[0] += rec.input_tokens
        tokens[1] += rec.output_tokens
        tokens[2] += rec.cache_read_tokens
        tokens[3] += rec.cache_creation_tokens
        series.client[0] += 1
        if rec.cost_usd:
            series.cost[0] += rec.cost_usd
            series.client_cost[0] += rec.cost_usd

    def attempt(self, provider: str, credential: str, status: int | None) -> None:
        key = (provider, credential or "-", outcome_of(status))
        cell = self._attempts.get(key)
        if cell is None:
            cell = self._attempts[key] = [0.0]
        cell[0] += 1

    def rate_headers(self, provider: str, credential: str, headers: Mapping[str, str], now: float) -> None:
        """Token and request window use from a provider's rate-limit headers (read at most once a second)."""
        key = (provider, credential or "-")
        if now - self._header_read.get(key, -HEADER_EVERY) < HEADER_EVERY:
            return
        self._header_read[key] = now
        windows: dict[str, float] = {}
        for bucket in ratelimit_headers.parse(headers, now).buckets:
            window = _WINDOWS.get(bucket.name) or bucket.name.removeprefix("unified-")
            if bucket.fraction is not None:
                windows[window] = round(1.0 - bucket.fraction, 4)
        if windows:
            self.header_utilization[key] = windows

    def render(self) -> bytes:
        """The Prometheus text exposition. prometheus_client is imported here, at the first scrape,
        not at start: a proxy nobody scrapes never holds it in memory (about 1 MB)."""
        from ccproxy_core.server import metrics_export

        if self._registry is None:
            self._registry = metrics_export.registry(self)
        return metrics_export.render(self._registry)


def credential_rows(
    pools: Mapping[str, Any], providers: Mapping[str, Any]
) -> Iterator[tuple[str, str, str, Mapping[str, float]]]:
    """(provider, credential, state, utilization) for every pooled credential of a live provider."""
    now = time.time()
    for name, owner in pools.items():
        pool = getattr(owner, "pool", None)
        if pool is None or name not in providers:
            continue
        for account in pool.snapshot(now)["accounts"]:
            yield name, account["name"], account["state"], account.get("utilization") or {}
