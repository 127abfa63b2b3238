"""The pure parts of observability: outcome labels, error types, access lines, the metrics text."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from ccproxy_core.server.metrics import Metrics, outcome_of
from ccproxy_core.server.observability import error_type_of
from ccproxy_core.usage.record import COLUMNS, UsageRecord


def test_outcome_labels_cover_every_kind_of_answer() -> None:
    """Each upstream status maps to one small closed set of outcome labels."""
    assert [outcome_of(s) for s in (None, 200, 429, 529, 401, 400, 503)] == [
        "unreachable",
        "ok",
        "rate_limited",
        "overloaded",
        "auth_error",
        "client_error",
        "server_error",
    ]


def test_error_type_is_read_from_either_dialect() -> None:
    """Anthropic and OpenAI error bodies both give their error type; anything else gives ""."""
    assert error_type_of(b'{"type":"error","error":{"type":"rate_limit_error","message":"x"}}') == "rate_limit_error"
    assert error_type_of(b'{"error":{"message":"x","type":"invalid_request_error"}}') == "invalid_request_error"
    assert error_type_of(b"not json") == ""
    assert error_type_of(None) == ""


def _metrics(creds: list[tuple[str, str, str, dict[str, float]]], breakers: list[tuple[str, bool]]) -> Metrics:
    return Metrics(lambda: iter(creds), lambda: iter(breakers))


def _samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_text_parses_and_counts_one_request() -> None:
    """One observed request shows in the counters, the histograms and the token and cost series."""
    m = _metrics([], [])
    rec = UsageRecord(
        ts=0.0,
        request_id="r",
        endpoint="/v1/messages",
        provider="p",
        upstream_model="m",
        status=200,
        latency_ms=120.0,
        ttfb_ms=20.0,
        input_tokens=5,
        output_tokens=7,
        cost_usd=0.5,
    )
    m.observe(rec)
    s = _samples(m)
    labels = (("endpoint", "/v1/messages"), ("model", "m"), ("provider", "p"), ("status", "200"))
    assert s[("ccproxy_requests_total", labels)] == 1.0
    assert s[("ccproxy_tokens_total", (("model", "m"), ("provider", "p"), ("type", "input")))] == 5.0
    assert s[("ccproxy_cost_usd_total", (("model", "m"), ("provider", "p")))] == 0.5
    assert s[("ccproxy_request_duration_seconds_count", (("endpoint", "/v1/messages"), ("provider", "p")))] == 1.0
    assert s[("ccproxy_time_to_first_byte_seconds_sum", (("endpoint", "/v1/messages"), ("provider", "p")))] == 0.02


def test_live_gauges_come_from_the_views_at_scrape_time() -> None:
    """Credential state (one 1 per credential), utilization and breakers are read when scraped."""
    creds: list[Any] = [("max", "alice", "rate_limited", {"5h": 0.9, "7d": 0.25})]
    m = _metrics(creds, [("max", True), ("openai", False)])
    s = _samples(m)
    state = {k[1][2][1]: v for k, v in s.items() if k[0] == "ccproxy_credential_state"}
    assert state == {"available": 0.0, "rate_limited": 1.0, "auth_error": 0.0, "disabled": 0.0, "expired": 0.0}
    util = (("credential", "alice"), ("provider", "max"), ("window", "5h"))
    assert s[("ccproxy_credential_utilization_ratio", util)] == 0.9
    assert s[("ccproxy_breaker_open", (("provider", "max"),))] == 1.0
    assert s[("ccproxy_breaker_open", (("provider", "openai"),))] == 0.0
    creds[0] = ("max", "alice", "available", {})
    assert (
        _samples(m)[
            ("ccproxy_credential_state", (("credential", "alice"), ("provider", "max"), ("state", "available")))
        ]
        == 1.0
    )


def test_rate_limit_headers_give_token_and_request_windows() -> None:
    """Token and request buckets from the headers become utilization windows, read at most once a second."""
    m = _metrics([], [])
    headers = {
        "anthropic-ratelimit-tokens-limit": "1000",
        "anthropic-ratelimit-tokens-remaining": "250",
        "anthropic-ratelimit-requests-limit": "100",
        "anthropic-ratelimit-requests-remaining": "100",
    }
    m.rate_headers("p", "key-1", headers, 100.0)
    assert m.header_utilization[("p", "key-1")] == {"tokens": 0.75, "requests": 0.0}
    m.rate_headers("p", "key-1", {**headers, "anthropic-ratelimit-tokens-remaining": "0"}, 100.5)
    assert m.header_utilization[("p", "key-1")]["tokens"] == 0.75  # too soon to read again
    s = _samples(m)
    assert (
        s[("ccproxy_credential_utilization_ratio", (("credential", "key-1"), ("provider", "p"), ("window", "tokens")))]
        == 0.75
    )


def test_two_registries_never_share_a_counter() -> None:
    """Each app has its own registry: counting in one leaves the other at zero."""
    a, b = _metrics([], []), _metrics([], [])
    a.attempt("p", "k", 200)
    assert ("ccproxy_upstream_attempts_total", (("credential", "k"), ("outcome", "ok"), ("provider", "p"))) in _samples(
        a
    )
    assert not any(k[0] == "ccproxy_upstream_attempts_total" for k in _samples(b))


def test_ledger_columns_are_the_issue_list() -> None:
    """The ledger has every column the spec names, in one place."""
    assert set(COLUMNS) >= {
        "ts",
        "request_id",
        "client",
        "endpoint",
        "model",
        "route_reason",
        "provider",
        "upstream_model",
        "credential",
        "status",
        "error_type",
        "stream",
        "latency_ms",
        "ttfb_ms",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
        "cost_usd",
        "session_id",
    }
