"""Token buckets: bursts, refill, the wait they report, and the bounded per-key set."""

from __future__ import annotations

import pytest

from ccproxy_core.core.ratelimit import BucketSet, TokenBucket


def test_burst_then_refused_with_the_wait() -> None:
    """A bucket allows `burst` requests at once, then says how long until the next token."""
    bucket = TokenBucket(rate_per_minute=60, burst=3)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(1.0)
    assert bucket.take(0.25) == pytest.approx(0.75)


def test_refill_at_the_rate() -> None:
    """Tokens come back at rate_per_minute / 60 per second, up to the burst."""
    bucket = TokenBucket(rate_per_minute=120, burst=2)
    bucket.take(0.0)
    bucket.take(0.0)
    assert bucket.take(0.5) == 0.0  # one token after half a second at 2/s
    assert bucket.take(0.5) > 0.0
    assert [bucket.take(100.0) for _ in range(3)][:2] == [0.0, 0.0]  # capped at burst


def test_refused_takes_do_not_push_the_wait_further() -> None:
    """Asking again while empty does not consume anything, so the wait only shrinks."""
    bucket = TokenBucket(rate_per_minute=60, burst=1)
    bucket.take(0.0)
    waits = [bucket.take(t) for t in (0.1, 0.2, 0.3)]
    assert waits == sorted(waits, reverse=True)
    assert bucket.take(1.0) == 0.0


@pytest.mark.parametrize(
    ("rate", "burst", "allowed_at_once"),
    [
        (60, 0, 60),  # burst 0: a minute's worth
        (1, 0, 1),
        (0.5, 0, 1),  # never less than one
        (1000, 100, 100),
    ],
)
def test_capacity(rate: float, burst: int, allowed_at_once: int) -> None:
    """Burst 0 means one minute's worth of requests, and never less than one."""
    bucket = TokenBucket(rate, burst)
    takes = [bucket.take(0.0) for _ in range(allowed_at_once + 1)]
    assert takes[:-1] == [0.0] * allowed_at_once
    assert takes[-1] > 0.0


def test_rate_zero_disables() -> None:
    """A rate of 0 never limits."""
    bucket = TokenBucket(0, 0)
    assert not bucket.enabled
    assert all(bucket.take(0.0) == 0.0 for _ in range(1000))


def test_clock_stepping_back_does_not_drain() -> None:
    """A clock that goes backwards neither adds nor removes tokens."""
    bucket = TokenBucket(rate_per_minute=60, burst=2)
    bucket.take(100.0)
    assert bucket.take(50.0) == 0.0
    assert bucket.take(50.0) > 0.0


def test_bucket_set_keeps_one_bucket_per_key() -> None:
    """Each key has its own bucket with the shared limit."""
    buckets = BucketSet(rate_per_minute=60, burst=1)
    assert buckets.take("alice", 0.0) == 0.0
    assert buckets.take("alice", 0.0) > 0.0
    assert buckets.take("bob", 0.0) == 0.0
    assert len(buckets) == 2


def test_bucket_set_evicts_the_least_recently_used() -> None:
    """Past max_keys the bucket idle the longest is forgotten, and starts full if it comes back."""
    buckets = BucketSet(rate_per_minute=60, burst=1, max_keys=2)
    buckets.take("a", 0.0)
    buckets.take("b", 0.0)
    buckets.take("a", 0.0)  # a is now the most recent
    buckets.take("c", 0.0)  # evicts b
    assert len(buckets) == 2
    assert buckets.take("a", 0.0) > 0.0  # still remembered, still empty
    assert buckets.take("b", 0.0) == 0.0  # forgotten: a fresh, full bucket


def test_disabled_bucket_set_creates_nothing() -> None:
    """With rate 0 no bucket is ever made, however many keys pass."""
    buckets = BucketSet(0)
    assert all(buckets.take(str(i), 0.0) == 0.0 for i in range(100))
    assert len(buckets) == 0
