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

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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


class _Series(NamedTuple):
    """The children of one label set, kept so a request does not pay for `labels()` each time."""

    requests: Any
    duration: Any
    ttfb: Any
    tokens: tuple[Any, ...]
    cost: Any


class _LiveCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "ccproxy_credential_state",
            "1 for each credential's current state, else 0",
            labels=["provider", "credential", "state"],
        )
        util = GaugeMetricFamily(
            "ccproxy_credential_utilization_ratio",
            "How much of a credential's limit window is used (0..1), from rate-limit headers",
            labels=["provider", "credential", "window"],
        )
        seen: set[tuple[str, str, str]] = set()
        for provider, name, current, windows in self._m.credentials():
            for s in CREDENTIAL_STATES:
                state.add_metric([provider, name, s], 1.0 if s == current else 0.0)
            for window, ratio in windows.items():
                util.add_metric([provider, name, window], ratio)
                seen.add((provider, name, window))
        for (provider, name), windows in self._m.header_utilization.items():
            for window, ratio in windows.items():
                if (provider, name, window) not in seen:
                    util.add_metric([provider, name, window], ratio)
        breaker = GaugeMetricFamily(
            "ccproxy_breaker_open", "1 while a provider's circuit breaker is open", labels=["provider"]
        )
        for provider, is_open in self._m.breakers():
            breaker.add_metric([provider], 1.0 if is_open else 0.0)
        yield from (state, util, breaker)


class Metrics:
    def __init__(self, credentials: CredentialView, breakers: BreakerView) -> None:
        self.credentials = credentials
        self.breakers = breakers
        self.header_utilization: dict[tuple[str, str], dict[str, float]] = {}
        self._series: dict[tuple[str, str, str, int], _Series] = {}
        self._attempts: dict[tuple[str, str, str], Any] = {}
        self._header_read: dict[tuple[str, str], float] = {}
        r = self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "ccproxy_requests",
            "Proxied requests (messages, count_tokens, chat, responses)",
            ["endpoint", "provider", "model", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "ccproxy_request_duration_seconds",
            "Proxied request latency, to the last byte",
            ["endpoint", "provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttfb = Histogram(
            "ccproxy_time_to_first_byte_seconds",
            "Time until the client got its first byte",
            ["endpoint", "provider"],
            buckets=TTFB_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "ccproxy_tokens",
            "Tokens the providers reported (input excludes cached)",
            ["provider", "model", "type"],
            registry=r,
        )
        self.cost = Counter("ccproxy_cost_usd", "Cost of priced requests in USD", ["provider", "model"], registry=r)
        self.attempts = Counter(
            "ccproxy_upstream_attempts",
            "Calls to a provider, one per credential tried",
            ["provider", "credential", "outcome"],
            registry=r,
        )
        # Per client (a client key's name, `admin`, or `anonymous`; never the key itself).
        self.client_requests = Counter(
            "ccproxy_client_requests", "Proxied requests per client key name", ["client", "status"], registry=r
        )
        self.client_cost = Counter("ccproxy_client_cost_usd", "Cost per client key name in USD", ["client"], registry=r)
        self._clients: dict[tuple[str, int], tuple[Any, Any]] = {}
        self.streams = Gauge("ccproxy_streams_in_flight", "Streaming answers being sent right now", registry=r)
        self.dropped = Counter(
            "ccproxy_ledger_dropped_rows", "Ledger rows dropped because its queue was full", registry=r
        )
        r.register(_LiveCollector(self))

    def observe(self, rec: UsageRecord) -> None:
        """One proxied request ended."""
        provider, model = rec.provider or "none", rec.upstream_model or rec.model or "none"
        key = (rec.endpoint, provider, model, rec.status)
        series = self._series.get(key)
        if series is None:  # `labels()` validates and locks: look each label set up once
            series = self._series[key] = _Series(
                self.requests.labels(rec.endpoint, provider, model, str(rec.status)),
                self.duration.labels(rec.endpoint, provider),
                self.ttfb.labels(rec.endpoint, provider),
                tuple(self.tokens.labels(provider, model, kind) for kind in TOKEN_TYPES),
                self.cost.labels(provider, model),
            )
        series.requests.inc()
        series.duration.observe(rec.latency_ms / 1000.0)
        if rec.ttfb_ms is not None:
            series.ttfb.observe(rec.ttfb_ms / 1000.0)
        counts = (rec.input_tokens, rec.output_tokens, rec.cache_read_tokens, rec.cache_creation_tokens)
        for child, count in zip(series.tokens, counts, strict=True):
            if count:
                child.inc(count)
        if rec.cost_usd:
            series.cost.inc(rec.cost_usd)
        client = self._clients.get((rec.client, rec.status))
        if client is None:
            client = self._clients[(rec.client, rec.status)] = (
                self.client_requests.labels(rec.client, str(rec.status)),
                self.client_cost.labels(rec.client),
            )
        client[0].inc()
        if rec.cost_usd:
            client[1].inc(rec.cost_usd)

    def attempt(self, provider: str, credential: str, status: int | None) -> None:
        key = (provider, credential or "-", outcome_of(status))
        child = self._attempts.get(key)
        if child is None:
            child = self._attempts[key] = self.attempts.labels(*key)
        child.inc()

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
        return generate_latest(self.registry)


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
