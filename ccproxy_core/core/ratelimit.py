"""Token buckets for request rate limits, per provider or per client key.

A bucket holds up to `burst` tokens and refills at `rate_per_minute / 60` tokens a second;
each request takes one. `take(now)` answers with data, not an exception: 0.0 means go ahead,
anything else is the number of seconds until a token will be there, which the shell turns into
a 429 `rate_limit_error` with `retry-after` (see `errors.RateLimited`). A refused request takes
nothing, so a client hammering a full bucket does not push its own wait further out.

Sans-I/O: `now` is passed in (seconds, any monotonic origin). A rate of 0 disables limiting.
A burst of 0 means "one minute's worth", so `requests_per_minute: 60` alone allows 60 requests
at once and then one a second, which is what most people mean by "60 per minute".
"""

from __future__ import annotations

from collections import OrderedDict

from attrs import define, field

DEFAULT_MAX_KEYS = 10_000


@define
class TokenBucket:
    rate_per_minute: float
    burst: int = 0
    _tokens: float = field(default=0.0, init=False)
    _last: float = field(default=0.0, init=False)
    _used: bool = field(default=False, init=False)  # not used yet: starts full

    @property
    def enabled(self) -> bool:
        return self.rate_per_minute > 0

    @property
    def capacity(self) -> float:
        return float(self.burst) if self.burst > 0 else max(1.0, float(self.rate_per_minute))

    def take(self, now: float) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        if not self.enabled:
            return 0.0
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) * 60.0 / self.rate_per_minute

    def take_many(self, count: int, now: float) -> None:
        """Take `count` tokens that were spent elsewhere (an instance that ran alone); may go below zero."""
        if self.enabled:
            self._refill(now)
            self._tokens -= count

    def dump(self) -> tuple[float, float] | None:
        """(tokens, last refill), or None before first use: the state, for a shared store."""
        return (self._tokens, self._last) if self._used else None

    @classmethod
    def restore(cls, rate_per_minute: float, burst: int, saved: tuple[float, float] | None) -> TokenBucket:
        bucket = cls(rate_per_minute, burst)
        if saved is not None:
            bucket._tokens, bucket._last = saved
            bucket._used = True
        return bucket

    def _refill(self, now: float) -> None:
        if not self._used:
            self._tokens, self._last, self._used = self.capacity, now, True
            return
        # A clock that steps back must not drain the bucket.
        elapsed = max(0.0, now - self._last)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate_per_minute / 60.0)
        self._last = max(self._last, now)


@define
class BucketSet:
    """Buckets with one shared limit, one per key, created on first use.

    Bounded: past `max_keys` the least recently used bucket is dropped. That bucket was idle
    the longest, so it had refilled the most; forgetting it costs at most one extra burst.
    """

    rate_per_minute: float
    burst: int = 0
    max_keys: int = DEFAULT_MAX_KEYS
    _buckets: OrderedDict[str, TokenBucket] = field(factory=OrderedDict, init=False)

    @property
    def enabled(self) -> bool:
        return self.rate_per_minute > 0

    def take(self, key: str, now: float) -> float:
        """Take one token from `key`'s bucket: 0.0 when allowed, else seconds to wait."""
        if not self.enabled:
            return 0.0
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate_per_minute, self.burst)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)

    def __len__(self) -> int:
        return len(self._buckets)
