"""The pure admission decisions of a client key: each limit, its reset time, and charging at the end."""

from __future__ import annotations

import calendar

from ccproxy_core.core import limits
from ccproxy_core.keys.model import ClientKey, Limits

NOW = float(calendar.timegm((2026, 11, 29, 12, 0, 0)))


def key(**kw: object) -> ClientKey:
    return ClientKey("alice", "ccp-abcdefgh", "00", NOW - 100, Limits(**kw))  # type: ignore[arg-type]


def test_no_limits_admits_everything() -> None:
    """A key without limits is admitted however often it calls."""
    c = limits.Counters()
    assert all(limits.admit(key(), c, NOW + i) is None for i in range(100))


def test_rpm_is_a_bucket_whose_burst_is_the_rpm() -> None:
    """rpm 3: three at once, the fourth waits 20 s (one token at 3 per minute), then one more passes."""
    k, c = key(rpm=3), limits.Counters()
    assert [limits.admit(k, c, NOW) for _ in range(3)] == [None, None, None]
    refusal = limits.admit(k, c, NOW)
    assert refusal is not None and (refusal.status, refusal.limit) == (429, "rpm")
    assert refusal.retry_after is not None and abs(refusal.retry_after - 20.0) < 0.01
    assert limits.admit(k, c, NOW + 20.0) is None


def test_concurrency_counts_requests_in_flight() -> None:
    """concurrency 2: a third request in flight is refused until one ends."""
    k, c = key(concurrency=2), limits.Counters()
    for _ in range(2):
        assert limits.admit(k, c, NOW) is None
        limits.start(c)
    refusal = limits.admit(k, c, NOW)
    assert refusal is not None and refusal.limit == "concurrency"
    limits.finish(k, c, 0, 0.0, NOW)
    assert limits.admit(k, c, NOW) is None


def test_tpm_is_charged_at_the_end_and_refills() -> None:
    """tpm 600: a 900-token request goes through, the next waits until the bucket is above zero again."""
    k, c = key(tpm=600), limits.Counters()
    assert limits.admit(k, c, NOW) is None
    limits.start(c)
    limits.finish(k, c, 900, 0.0, NOW)
    refusal = limits.admit(k, c, NOW)
    assert refusal is not None and refusal.limit == "tpm" and refusal.retry_after is not None
    assert limits.admit(k, c, NOW + refusal.retry_after + 0.01) is None


def test_daily_budget_resets_at_utc_midnight() -> None:
    """A spent daily budget refuses with "budget" and retry-after = seconds to the UTC day's end; the next day is fresh."""
    k, c = key(budget_day_usd=0.01), limits.Counters()
    limits.charge(c, 0.006, NOW)
    assert limits.admit(k, c, NOW) is None
    limits.charge(c, 0.006, NOW)
    refusal = limits.admit(k, c, NOW)
    assert refusal is not None and refusal.limit == "budget_day" and "budget" in refusal.message
    assert refusal.retry_after == 12 * 3600.0
    assert limits.admit(k, c, NOW + 12 * 3600.0) is None


def test_monthly_budget_resets_on_the_first_of_the_next_month() -> None:
    """A spent monthly budget waits until 1 December 00:00 UTC."""
    k, c = key(budget_month_usd=5.0), limits.Counters()
    limits.seed(c, 0.0, 5.0, NOW)
    refusal = limits.admit(k, c, NOW)
    assert refusal is not None and refusal.limit == "budget_month"
    assert NOW + (refusal.retry_after or 0) == calendar.timegm((2026, 12, 1, 0, 0, 0))


def test_month_window_of_december_ends_in_january() -> None:
    """The month window wraps the year."""
    dec = float(calendar.timegm((2026, 12, 15, 0, 0, 0)))
    assert limits.month_window(dec) == (calendar.timegm((2026, 12, 1, 0, 0, 0)), calendar.timegm((2027, 1, 1, 0, 0, 0)))


def test_revoked_and_expired_are_401() -> None:
    """A revoked or expired key is refused with 401 whatever its counters say."""
    revoked = ClientKey("bob", "ccp-x", "00", NOW - 10, Limits(), revoked_at=NOW - 1)
    refusal = limits.admit(revoked, limits.Counters(), NOW)
    assert refusal is not None and (refusal.status, refusal.limit) == (401, "revoked")
    refusal = limits.admit(key(expires_at=NOW - 1), limits.Counters(), NOW)
    assert refusal is not None and (refusal.status, refusal.limit) == (401, "expired")
