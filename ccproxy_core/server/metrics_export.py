"""The Prometheus side of `server.metrics`: its tallies as metric families, built at scrape time.

Kept apart so prometheus_client is imported only when `/metrics` is first scraped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ccproxy_core.server.metrics import CREDENTIAL_STATES, TOKEN_TYPES

if TYPE_CHECKING:
    from ccproxy_core.server.metrics import Metrics


def registry(metrics: Metrics) -> CollectorRegistry:
    """The server's own registry (never the process-global one: two apps in one process never share)."""
    r = CollectorRegistry(auto_describe=False)
    r.register(_RequestCollector(metrics))
    r.register(_LiveCollector(metrics))
    return r


def render(r: CollectorRegistry) -> bytes:
    data: bytes = generate_latest(r)
    return data


class _RequestCollector(Collector):
    """The per-request counters and histograms, as Prometheus families built at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        yield _counter("ccproxy_requests", _REQUESTS_HELP, ["endpoint", "provider", "model", "status"], m._requests)
        for name, doc, table in (
            ("ccproxy_request_duration_seconds", "Proxied request latency, to the last byte", m._duration),
            ("ccproxy_time_to_first_byte_seconds", "Time until the client got its first byte", m._ttfb),
        ):
            family = HistogramMetricFamily(name, doc, labels=["endpoint", "provider"])
            for labels, hist in table.items():
                family.add_metric(list(labels), hist.buckets(), hist.total)
            yield family
        tokens = CounterMetricFamily(
            "ccproxy_tokens",
            "Tokens the providers reported (input excludes cached)",
            labels=["provider", "model", "type"],
        )
        for (provider, model), counts in m._tokens.items():
            for kind, count in zip(TOKEN_TYPES, counts, strict=True):
                tokens.add_metric([provider, model, kind], count)
        yield tokens
        yield _counter("ccproxy_cost_usd", "Cost of priced requests in USD", ["provider", "model"], m._cost)
        yield _counter(
            "ccproxy_upstream_attempts",
            "Calls to a provider, one per credential tried",
            ["provider", "credential", "outcome"],
            m._attempts,
        )
        # Per client (a client key's name, `admin`, or `anonymous`; never the key itself).
        yield _counter(
            "ccproxy_client_requests", "Proxied requests per client key name", ["client", "status"], m._client_requests
        )
        yield _counter("ccproxy_client_cost_usd", "Cost per client key name in USD", ["client"], m._client_cost)
        streams = GaugeMetricFamily("ccproxy_streams_in_flight", "Streaming answers being sent right now")
        streams.add_metric([], m.streams.value)
        yield streams
        dropped = CounterMetricFamily("ccproxy_ledger_dropped_rows", "Ledger rows dropped because its queue was full")
        dropped.add_metric([], m.dropped.value)
        yield dropped


_REQUESTS_HELP = "Proxied requests (messages, count_tokens, chat, responses)"


def _counter(name: str, doc: str, labels: list[str], table: Mapping[tuple[str, ...], list[float]]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for values, cell in table.items():
        family.add_metric(list(values), cell[0])
    return family


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
