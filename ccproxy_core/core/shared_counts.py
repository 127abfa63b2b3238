"""Counted limits as a shared store keeps them: each key's value as bytes, and one update of it.

The Redis backend (`server/redis_cas.py`) reads a key, applies one of these steps and writes
the result back only if nobody wrote in between, so the limits across instances are decided by
the same pure rules as in one process (`ratelimit.TokenBucket`, `limits.admit` / `finish`),
never by a second copy of them in Lua. Pure: `now` (epoch seconds) is passed in.

    Step = stored value or None -> (new value, the caller's answer)

    bucket_step(rate, burst, now)              take one token: 0.0, or the seconds to wait
    bucket_step(rate, burst, now, spent=n)     charge n tokens taken elsewhere (an outage)
    counters_step(change, now)                 a client key's counters and requests in flight
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from attrs import asdict

from ccproxy_core.core import limits
from ccproxy_core.core.ratelimit import TokenBucket

T = TypeVar("T")
Step = Callable[[bytes | None], tuple[bytes, Any]]

FLIGHT_MAX_AGE = 2 * 3600.0  # a request "in flight" this long was lost with its instance


def bucket_step(rate: float, burst: int, now: float, spent: int = 0) -> Callable[[bytes | None], tuple[bytes, float]]:
    """Take one token from a stored bucket (or charge `spent` tokens taken elsewhere, answering 0.0)."""

    def step(raw: bytes | None) -> tuple[bytes, float]:
        saved = orjson.loads(raw) if raw else None
        bucket = TokenBucket.restore(rate, burst, (saved[0], saved[1]) if saved else None)
        if spent:
            bucket.take_many(spent, now)
            wait = 0.0
        else:
            wait = bucket.take(now)
        return orjson.dumps(bucket.dump()), wait

    return step


def bucket_ttl_ms(rate: float, burst: int) -> int:
    """Milliseconds after which an untouched bucket is full again (and may as well be gone)."""
    capacity = TokenBucket(rate, burst).capacity
    return int((capacity * 60.0 / rate + 60.0) * 1000)


def load_counters(raw: bytes | None, now: float) -> tuple[limits.Counters, dict[str, float]]:
    """A client key's counters and its requests in flight (request id -> start), stale ones dropped."""
    doc = orjson.loads(raw) if raw else {}
    counters = limits.Counters(**doc.get("c", {}))
    flights = {rid: at for rid, at in doc.get("f", {}).items() if now - at < FLIGHT_MAX_AGE}
    counters.in_flight = len(flights)  # counted from the requests, so a lost instance's go stale
    return counters, flights


def counters_step(
    change: Callable[[limits.Counters, dict[str, float]], T], now: float
) -> Callable[[bytes | None], tuple[bytes, T]]:
    """Apply `change` to a stored key's counters and flights; its result is the caller's answer."""

    def step(raw: bytes | None) -> tuple[bytes, T]:
        counters, flights = load_counters(raw, now)
        result = change(counters, flights)
        fields = asdict(counters)
        del fields["in_flight"]
        return orjson.dumps({"c": fields, "f": flights}), result

    return step
