"""What a client key is allowed: the frozen value the store keeps and the enforcement reads.

A `ClientKey` never holds the clear key, only its keyed hash (`digest`) and a short `prefix`
to show (`ccp-AbCd…`). `Limits` are all optional: an unset limit does not limit. The parsing of
what a user types (`day=5`, `30d`, `claude-*,gpt-4.1`) lives here too, so the CLI and the admin
API read the same words the same way.
"""

from __future__ import annotations

import calendar
import fnmatch
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from attrs import evolve, frozen

KEY_PREFIX = "ccp-"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_SPAN_RE = re.compile(r"^(\d+)([hdw])$")
_SPAN_SECONDS = {"h": 3600, "d": 86400, "w": 7 * 86400}


class KeySettingError(ValueError):
    """A key's settings as typed are wrong: the message names the field and what was expected."""


@frozen
class Limits:
    budget_day_usd: float | None = None
    budget_month_usd: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    models: tuple[str, ...] = ()  # globs; empty: every model
    providers: tuple[str, ...] = ()  # empty: every provider
    expires_at: float | None = None  # epoch seconds

    def allows_model(self, model: str) -> bool:
        return not self.models or any(fnmatch.fnmatchcase(model, glob) for glob in self.models)

    def to_json(self) -> dict[str, Any]:
        return {
            "budget_usd": {"day": self.budget_day_usd, "month": self.budget_month_usd},
            "rpm": self.rpm,
            "tpm": self.tpm,
            "concurrency": self.concurrency,
            "models": list(self.models),
            "providers": list(self.providers),
            "expires": iso(self.expires_at),
        }


@frozen
class ClientKey:
    name: str
    prefix: str  # the first characters of the key, for display
    digest: str  # HMAC-SHA256 of the key under the store's pepper, hex
    created_at: float
    limits: Limits = Limits()
    revoked_at: float | None = None

    def expired(self, now: float) -> bool:
        return self.limits.expires_at is not None and self.limits.expires_at <= now

    def state(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expired(now) else "active"

    def to_json(self, now: float) -> dict[str, Any]:
        """The public view: name, masked prefix, state and limits; never the digest."""
        return {
            "name": self.name,
            "key": f"{self.prefix}…",
            "state": self.state(now),
            "created": iso(self.created_at),
            "revoked": iso(self.revoked_at),
            **self.limits.to_json(),
        }


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise KeySettingError(
            f"name: expected 1-64 letters, digits, '_', '.', '@' or '-' (starting with a letter or digit); got {name!r}"
        )
    return name


# --- what users type -----------------------------------------------------------------------------


def parse_expires(text: str, now: float) -> float | None:
    """`30d`, `12h`, `2w` from now, or a UTC date `2027-01-31` (the end of that day); `never`: none."""
    text = text.strip()
    if text in ("", "never", "none"):
        return None
    span = _SPAN_RE.match(text)
    if span:
        return now + int(span.group(1)) * _SPAN_SECONDS[span.group(2)]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise KeySettingError(f"expires: expected a span (30d, 12h, 2w) or a date (2027-01-31); got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if len(text) == 10:  # a bare date: the key works through that whole UTC day
        return calendar.timegm(when.timetuple()) + 86400.0
    return when.timestamp()


def parse_budgets(items: Iterable[str]) -> dict[str, float | None]:
    """`day=5`, `month=100` (USD); `day=none` removes the day budget."""
    out: dict[str, float | None] = {}
    for item in items:
        window, sep, value = item.partition("=")
        window = window.strip().lower()
        if not sep or window not in ("day", "month"):
            raise KeySettingError(f"budget-usd: expected day=USD or month=USD; got {item!r}")
        out[window] = _number(f"budget-usd {window}", value, float)
    return out


def parse_list(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _number(field: str, value: Any, kind: type[int] | type[float]) -> Any:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "off")):
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise KeySettingError(f"{field}: expected a {'whole ' if kind is int else ''}number; got {value!r}") from None
    if isinstance(value, bool) or number < 0 or (kind is int and number == 0):
        raise KeySettingError(f"{field}: expected a positive number; got {value!r}")
    return number


def apply_changes(limits: Limits, changes: Mapping[str, Any], now: float) -> Limits:
    """Limits with the admin API's (or the CLI's) fields applied; a field set to null is removed.

    Fields: budget_usd {day, month}, rpm, tpm, concurrency, models, providers (lists or
    comma-separated strings), expires (a span or a date)."""
    known = {"budget_usd", "rpm", "tpm", "concurrency", "models", "providers", "expires"}
    unknown = sorted(set(changes) - known - {"name"})
    if unknown:
        raise KeySettingError(f"{unknown[0]}: not a key setting; expected one of {', '.join(sorted(known))}")
    update: dict[str, Any] = {}
    budgets = changes.get("budget_usd")
    if budgets is not None:
        if not isinstance(budgets, Mapping) or set(budgets) - {"day", "month"}:
            raise KeySettingError('budget_usd: expected {"day": USD, "month": USD}')
        for window, value in budgets.items():
            update[f"budget_{window}_usd"] = _number(f"budget_usd.{window}", value, float)
    for field in ("rpm", "tpm", "concurrency"):
        if field in changes:
            update[field] = _number(field, changes[field], int)
    for field in ("models", "providers"):
        if field in changes:
            value = changes[field]
            if value is None:
                update[field] = ()
            elif isinstance(value, str):
                update[field] = parse_list(value)
            elif isinstance(value, list) and all(isinstance(v, str) and v for v in value):
                update[field] = tuple(value)
            else:
                raise KeySettingError(f"{field}: expected a list of names (or a comma-separated string)")
    if "expires" in changes:
        value = changes["expires"]
        if value is not None and not isinstance(value, str):
            raise KeySettingError("expires: expected a span (30d) or a date (2027-01-31)")
        update["expires_at"] = parse_expires(value or "", now)
    return evolve(limits, **update)
