"""Whether a client key may make a request now: pure decisions over its counters and `now`.

    admit(key, counters, now) -> Refusal | None      before any upstream call
    start(counters, now) / finish(counters, tokens, cost, now)   around the request

Counters are in memory, per key name. The rpm limit is a token bucket whose burst is the rpm;
the tpm limit a bucket of tokens refilled at tpm per minute and charged when the request ends
(so it may go below zero, and the next request waits until it is back above); concurrency
counts the requests in flight; budgets sum the cost of requests in the current UTC day and
month. Nothing here reads a clock or a file: the shell passes `now` (epoch seconds) and seeds
the spend from the usage ledger at start.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from attrs import define, frozen

from ccproxy_core.core.credential import iso

if TYPE_CHECKING:  # a value from the keys layer, read here, never imported at run time
    from ccproxy_core.keys.model import ClientKey


@define
class Counters:
    rpm_level: float = -1.0  # -1: full (set on first use)
    rpm_at: float = 0.0
    tpm_level: float = -1.0
    tpm_at: float = 0.0
    in_flight: int = 0
    day: float = 0.0  # start of the UTC day the spend below belongs to
    spent_day: float = 0.0
    month: float = 0.0
    spent_month: float = 0.0


@frozen
class Refusal:
    status: int  # 401 or 429
    limit: str  # "revoked", "expired", "rpm", "tpm", "concurrency", "budget_day", "budget_month"
    message: str
    retry_after: float | None = None


def day_window(now: float) -> tuple[float, float]:
    start = now - now % 86400.0
    return start, start + 86400.0


def month_window(now: float) -> tuple[float, float]:
    d = datetime.fromtimestamp(now, UTC)
    start = calendar.timegm((d.year, d.month, 1, 0, 0, 0))
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return float(start), float(calendar.timegm((year, month, 1, 0, 0, 0)))


def _roll(c: Counters, now: float) -> None:
    """Start new budget windows when the UTC day or month has turned."""
    day = now - now % 86400.0
    if c.day == day:
        return  # the same UTC day, so the same month: the common case costs one modulo
    c.day, c.spent_day = day, 0.0
    month = month_window(now)[0]
    if c.month != month:
        c.month, c.spent_month = month, 0.0


def _refill(level: float, at: float, capacity: float, now: float) -> float:
    if level < 0 and at == 0.0:
        return capacity
    return min(capacity, level + max(0.0, now - at) * capacity / 60.0)


def admit(key: ClientKey, c: Counters, now: float) -> Refusal | None:
    """None when the key may make one more request now; else what refuses it. Takes an rpm token."""
    name = f"key {key.name!r}"
    if key.revoked_at is not None:
        return Refusal(401, "revoked", f"{name} was revoked at {iso(key.revoked_at)}; ask for a new key")
    if key.expired(now):
        return Refusal(401, "expired", f"{name} expired at {iso(key.limits.expires_at)}; ask for a new key")
    lim = key.limits
    _roll(c, now)
    if lim.budget_day_usd is not None and c.spent_day >= lim.budget_day_usd:
        end = day_window(now)[1]
        return Refusal(
            429,
            "budget_day",
            f"{name} has spent its daily budget (${c.spent_day:.4f} of ${lim.budget_day_usd:g}); "
            f"the budget resets at {iso(end)}",
            end - now,
        )
    if lim.budget_month_usd is not None and c.spent_month >= lim.budget_month_usd:
        end = month_window(now)[1]
        return Refusal(
            429,
            "budget_month",
            f"{name} has spent its monthly budget (${c.spent_month:.4f} of ${lim.budget_month_usd:g}); "
            f"the budget resets at {iso(end)}",
            end - now,
        )
    if lim.concurrency is not None and c.in_flight >= lim.concurrency:
        return Refusal(
            429,
            "concurrency",
            f"{name} already has {c.in_flight} requests in flight (its concurrency limit is {lim.concurrency}); "
            "retry when one ends",
            1.0,
        )
    if lim.tpm is not None:
        level = _refill(c.tpm_level, c.tpm_at, lim.tpm, now)
        if level <= 0:
            wait = (1.0 - level) * 60.0 / lim.tpm
            return Refusal(
                429,
                "tpm",
                f"{name} is over its token rate ({lim.tpm} tokens per minute); retry in {wait:.0f} s",
                wait,
            )
    if lim.rpm is not None:
        level = _refill(c.rpm_level, c.rpm_at, lim.rpm, now)
        if level < 1.0:
            wait = (1.0 - level) * 60.0 / lim.rpm
            return Refusal(
                429,
                "rpm",
                f"{name} is over its request rate ({lim.rpm} requests per minute); retry in {wait:.0f} s",
                wait,
            )
        c.rpm_level, c.rpm_at = level - 1.0, now
    return None


def start(c: Counters) -> None:
    c.in_flight += 1


def finish(key: ClientKey, c: Counters, tokens: int, cost: float, now: float) -> None:
    """The request ended: it no longer counts in flight; its tokens and cost are charged."""
    c.in_flight = max(0, c.in_flight - 1)
    charge(c, cost, now)
    tpm = key.limits.tpm
    if tpm is not None and tokens:
        level = _refill(c.tpm_level, c.tpm_at, tpm, now)
        c.tpm_level, c.tpm_at = level - tokens, now


def charge(c: Counters, cost: float, now: float) -> None:
    _roll(c, now)
    c.spent_day += cost
    c.spent_month += cost


def seed(c: Counters, spent_day: float, spent_month: float, now: float) -> None:
    """Spend already in the ledger for the current windows (at start)."""
    _roll(c, now)
    c.spent_day, c.spent_month = spent_day, spent_month
