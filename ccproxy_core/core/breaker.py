"""Per-provider circuit breakers: stop sending requests to a provider that keeps failing.

    closed ──(N consecutive failures, or error rate ≥ threshold over ≥ min_requests)──> open
    open ──(open_seconds elapsed)──> half_open
    half_open ──(half_open_max_requests successes)──> closed
    half_open ──(any failure)──> open

Sans-I/O: every method takes `now` (seconds, any monotonic origin) and nothing reads a clock,
so tests drive time by hand. The shell records one outcome per upstream attempt and asks
`BreakerBoard.unavailable(now)` before routing; `counts_as_failure` says which outcomes are the
provider's fault (a 400 is the client's, and must not open the circuit for everybody).

Open -> half_open happens lazily when the breaker is next looked at, so no timer is needed.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from attrs import define, field, frozen

State = Literal["closed", "open", "half_open"]


@frozen
class BreakerSettings:
    enabled: bool = True
    consecutive_failures: int = 5
    error_threshold: float = 0.5
    min_requests: int = 10
    open_seconds: float = 30.0
    half_open_max_requests: int = 3
    # The error-rate window. Not in Go ccproxy's config (it counted since the last reset),
    # which let a burst of errors an hour ago keep a healthy provider's rate high.
    window_seconds: float = 60.0


def counts_as_failure(status: int | None) -> bool:
    """Whether an upstream outcome is the provider's failure.

    `None` stands for no answer at all (connect error, timeout, a stream that broke before its
    first byte). 429 counts: a provider that rate-limits every key is as unusable as a down one.
    """
    return status is None or status == 429 or status >= 500


@define
class CircuitBreaker:
    settings: BreakerSettings = field(factory=BreakerSettings)
    _state: State = field(default="closed", init=False)
    _opened_at: float = field(default=0.0, init=False)
    _consecutive: int = field(default=0, init=False)
    # (time, success) of recent outcomes while closed, oldest first.
    _window: deque[tuple[float, bool]] = field(factory=deque, init=False)
    _probes_issued: int = field(default=0, init=False)
    _probe_successes: int = field(default=0, init=False)
    _last_probe_at: float = field(default=0.0, init=False)

    def state(self, now: float) -> State:
        if not self.settings.enabled:
            return "closed"
        if self._state == "open" and now >= self._opened_at + self.settings.open_seconds:
            self._state = "half_open"
            self._probes_issued = self._probe_successes = 0
        return self._state

    def available(self, now: float) -> bool:
        """Whether a request could be let through now, without taking a probe slot."""
        state = self.state(now)
        if state == "closed":
            return True
        if state == "open":
            return False
        return self._probes_issued < self.settings.half_open_max_requests or self._probes_stale(now)

    def allow(self, now: float) -> bool:
        """Whether to send a request now; in half_open this takes one of the probe slots."""
        state = self.state(now)
        if state == "closed":
            return True
        if state == "open":
            return False
        if self._probes_stale(now):
            # A probe that never reported (client went away, task cancelled) must not keep
            # the circuit half-open forever: after open_seconds of silence, free its slot.
            self._probes_issued = self._probe_successes
        if self._probes_issued >= self.settings.half_open_max_requests:
            return False
        self._probes_issued += 1
        self._last_probe_at = now
        return True

    def record(self, success: bool, now: float) -> None:
        if not self.settings.enabled:
            return
        state = self.state(now)
        if state == "open":
            # A late answer to a request sent before the circuit opened says nothing new.
            return
        if state == "half_open":
            if not success:
                self._open(now)
                return
            self._probe_successes += 1
            if self._probe_successes >= self.settings.half_open_max_requests:
                self._close()
            return
        self._window.append((now, success))
        self._trim(now)
        self._consecutive = 0 if success else self._consecutive + 1
        if not success and self._should_open():
            self._open(now)

    def retry_after(self, now: float) -> float:
        """Seconds until the circuit lets a probe through (0.0 when it would now)."""
        if self.state(now) != "open":
            return 0.0
        return max(0.0, self._opened_at + self.settings.open_seconds - now)

    def open_for(self, now: float) -> float | None:
        """Seconds the circuit stays open (what another instance is told), or None when not open."""
        return self.retry_after(now) if self.state(now) == "open" else None

    def opened_elsewhere(self, remaining: float, now: float) -> None:
        """Another instance opened this provider's circuit for `remaining` more seconds."""
        if self.settings.enabled and (self.state(now) != "open" or self.retry_after(now) < remaining):
            self._open(now - (self.settings.open_seconds - remaining))

    def closed_elsewhere(self, now: float) -> None:
        """Another instance's probes went through: the provider is back."""
        if self.state(now) != "closed":
            self._close()

    def _should_open(self) -> bool:
        s = self.settings
        if self._consecutive >= s.consecutive_failures:
            return True
        total = len(self._window)
        if total < s.min_requests:
            return False
        failures = sum(1 for _, ok in self._window if not ok)
        return failures / total >= s.error_threshold

    def _trim(self, now: float) -> None:
        horizon = now - self.settings.window_seconds
        while self._window and self._window[0][0] < horizon:
            self._window.popleft()

    def _probes_stale(self, now: float) -> bool:
        return (
            self._probes_issued >= self.settings.half_open_max_requests
            and now - self._last_probe_at >= self.settings.open_seconds
        )

    def _open(self, now: float) -> None:
        self._state = "open"
        self._opened_at = now
        self._window.clear()
        self._consecutive = 0

    def _close(self) -> None:
        self._state = "closed"
        self._window.clear()
        self._consecutive = 0
        self._probes_issued = self._probe_successes = 0


@define
class BreakerBoard:
    """One breaker per provider name, created on first use."""

    settings: BreakerSettings = field(factory=BreakerSettings)
    _breakers: dict[str, CircuitBreaker] = field(factory=dict, init=False)

    def get(self, provider: str) -> CircuitBreaker:
        breaker = self._breakers.get(provider)
        if breaker is None:
            breaker = self._breakers[provider] = CircuitBreaker(self.settings)
        return breaker

    def unavailable(self, now: float) -> frozenset[str]:
        """Providers routing should skip right now (the `unavailable` argument of `route`)."""
        return frozenset(name for name, b in self._breakers.items() if not b.available(now))

    def states(self, now: float) -> dict[str, State]:
        return {name: b.state(now) for name, b in self._breakers.items()}
