"""Upstream rate-limit headers, parsed into one picture: how much is left, and when it resets.

Three header families say the same thing in different words:

    Anthropic, API key   anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
                         {limit,remaining,reset}          reset = RFC 3339 timestamp
    Anthropic, OAuth     anthropic-ratelimit-unified-{status,reset}            reset = epoch s
                         anthropic-ratelimit-unified-<window>-{status,reset,utilization}
                         (<window> is 5h, 7d, 7d_oi, 7d-sonnet, ... ; utilization 0..1)
    OpenAI               x-ratelimit-{limit,remaining,reset}-{requests,tokens}
                         reset = Go duration ("2ms", "6m0s")
    all                  retry-after (seconds or HTTP date), retry-after-ms

Each family becomes `Bucket`s (fraction left, reset time, rejected or not); `Headroom` is the
set of buckets of one response. `headroom()` is the fraction left in the most restrictive
bucket; `reset_at()` is when a credential that is exhausted now can be used again. Every
function is pure: header names are matched case-insensitively and a clock is passed in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from attrs import frozen

_ANTHROPIC_BUCKETS = ("requests", "tokens", "input-tokens", "output-tokens")
_OPENAI_BUCKETS = ("requests", "tokens")
_UNIFIED = "anthropic-ratelimit-unified-"
# Unified keys that look like windows but are not capacity windows: overage is extra paid
# usage, which is often "rejected" on a perfectly healthy account.
_NOT_WINDOWS = frozenset({"overage", "fallback", "representative"})
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@frozen
class Bucket:
    """One limit: `fraction` left (0..1, None when unknown), when it refills, and whether the
    upstream says it is rejecting requests right now."""

    name: str
    fraction: float | None
    reset_at: float | None = None
    remaining: float | None = None
    rejected: bool = False


@frozen
class Headroom:
    """What one response said about its credential's limits."""

    buckets: tuple[Bucket, ...] = ()
    unified_status: str | None = None  # allowed | allowed_warning | rejected
    unified_reset: float | None = None
    representative_claim: str | None = None  # which unified window binds: five_hour, seven_day, ...

    @property
    def binding(self) -> Bucket | None:
        """The bucket with the least left; it decides the headroom and when it goes stale."""
        rated = [b for b in self.buckets if b.fraction is not None]
        return min(rated, key=lambda b: b.fraction or 0.0) if rated else None

    @property
    def fraction(self) -> float | None:
        if self.unified_status == "rejected":
            return 0.0
        bucket = self.binding
        return None if bucket is None else bucket.fraction

    @property
    def exhausted(self) -> bool:
        """The upstream refuses this credential until a reset (unified rejected, or drained)."""
        return self.unified_status == "rejected" or any(b.rejected or b.remaining == 0 for b in self.buckets)

    @property
    def utilization(self) -> dict[str, float]:
        """Unified window utilization by window name ("5h": 0.42), for the status API."""
        return {
            b.name.removeprefix("unified-"): round(1.0 - b.fraction, 4)
            for b in self.buckets
            if b.name.startswith("unified-") and b.fraction is not None
        }


def parse(headers: Mapping[str, str], now: float) -> Headroom:
    """All rate-limit facts in `headers`; `now` turns OpenAI's relative resets into times."""
    h = {k.lower(): v for k, v in headers.items()}
    buckets: list[Bucket] = []
    for name in _ANTHROPIC_BUCKETS:
        prefix = f"anthropic-ratelimit-{name}-"
        bucket = _counted(name, h.get(prefix + "limit"), h.get(prefix + "remaining"), _rfc3339(h.get(prefix + "reset")))
        if bucket is not None:
            buckets.append(bucket)
    for name in _OPENAI_BUCKETS:
        delay = _go_duration(h.get(f"x-ratelimit-reset-{name}"))
        bucket = _counted(
            f"openai-{name}",
            h.get(f"x-ratelimit-limit-{name}"),
            h.get(f"x-ratelimit-remaining-{name}"),
            None if delay is None else now + delay,
        )
        if bucket is not None:
            buckets.append(bucket)
    buckets.extend(_unified_windows(h))
    return Headroom(
        buckets=tuple(buckets),
        unified_status=h.get(_UNIFIED + "status"),
        unified_reset=_number(h.get(_UNIFIED + "reset")),
        representative_claim=h.get(_UNIFIED + "representative-claim"),
    )


def headroom(headers: Mapping[str, str]) -> float | None:
    """Fraction (0..1) left in the most restrictive limit; None when the headers say nothing."""
    # Resets do not enter the fraction, so any clock will do.
    return parse(headers, 0.0).fraction


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait, from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    h = {k.lower(): v for k, v in headers.items()}
    ms = _number(h.get("retry-after-ms"))
    if ms is not None:
        return max(0.0, ms / 1000.0)
    raw = h.get("retry-after")
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def reset_at(headers: Mapping[str, str], now: float) -> float | None:
    """When a credential that is refused now can be used again (epoch s), or None if unknown.

    Order: `retry-after` (the upstream's own instruction); then, for subscription traffic,
    the reset of the rejected window or the unified reset; then the latest reset among the
    buckets with nothing remaining (2024-era 429s came without `retry-after`).
    """
    wait = retry_after(headers, now)
    if wait is not None:
        return now + wait
    info = parse(headers, now)
    unified = [b for b in info.buckets if b.name.startswith("unified-")]
    if info.unified_status is not None or unified:
        rejected = [b.reset_at for b in unified if b.rejected and b.reset_at is not None]
        if rejected:
            return max(rejected)
        if info.unified_reset is not None:
            return info.unified_reset
    drained = [b.reset_at for b in info.buckets if b.remaining == 0 and b.reset_at is not None]
    return max(drained) if drained else None


def _counted(name: str, limit: str | None, remaining: str | None, reset: float | None) -> Bucket | None:
    lim, rem = _number(limit), _number(remaining)
    if lim is None and rem is None:
        return None
    fraction = None
    if lim is not None and rem is not None and lim > 0:
        fraction = min(1.0, max(0.0, rem / lim))
    return Bucket(name=name, fraction=fraction, reset_at=reset, remaining=rem)


def _unified_windows(h: Mapping[str, str]) -> list[Bucket]:
    fields: dict[str, dict[str, str]] = {}
    for key, value in h.items():
        if not key.startswith(_UNIFIED):
            continue
        window, _, field = key[len(_UNIFIED) :].rpartition("-")
        if window and window not in _NOT_WINDOWS and field in ("status", "reset", "utilization"):
            fields.setdefault(window, {})[field] = value
    buckets = []
    for window, f in sorted(fields.items()):
        used = _number(f.get("utilization"))
        rejected = f.get("status") == "rejected"
        fraction = 0.0 if rejected else None if used is None else min(1.0, max(0.0, 1.0 - used))
        buckets.append(
            Bucket(name=f"unified-{window}", fraction=fraction, reset_at=_number(f.get("reset")), rejected=rejected)
        )
    return buckets


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _rfc3339(raw: str | None) -> float | None:
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _go_duration(raw: str | None) -> float | None:
    """Go's `time.Duration` text as OpenAI sends it: "2ms", "0s", "6m0s", "1h2m3.5s"."""
    if not raw:
        return None
    text = raw.strip()
    total, pos = 0.0, 0
    for match in _GO_DURATION.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        # A bare number is not a Go duration, but a few OpenAI-compatible servers send seconds.
        return _number(text)
    return total
