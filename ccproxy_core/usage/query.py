"""Reading the ledger: the `/usage` aggregation and the latest rows of `/usage/requests`.

The same functions answer the server's endpoints and `ccproxy usage` when no server runs, so
both give the same document. Times are parsed here from what a person types: ISO 8601
(`2025-06-01`, `2025-06-01T12:00:00Z`) or a span back from now (`90m`, `24h`, `7d`, `2w`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.usage.record import COLUMNS

if TYPE_CHECKING:
    import sqlite3

GROUPS: dict[str, str] = {
    "provider": "CASE WHEN provider = '' THEN '(none)' ELSE provider END",
    "model": "CASE WHEN model = '' THEN '(none)' ELSE model END",
    "credential": "CASE WHEN provider = '' THEN '(none)' ELSE provider || '/' || "
    "CASE WHEN credential = '' THEN '-' ELSE credential END END",
    "client": "client",
    "day": "strftime('%Y-%m-%d', ts, 'unixepoch')",
    "hour": "strftime('%Y-%m-%dT%H:00Z', ts, 'unixepoch')",
}
_TIME_ORDERED = frozenset({"day", "hour"})
SUMS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens")
FIELDS = ("requests", "errors", *SUMS, "cost_usd", "unpriced_requests")
_AGGREGATES = (
    "COUNT(*), SUM(status >= 400), " + ", ".join(f"SUM({c})" for c in SUMS) + ", SUM(cost_usd), SUM(cost_usd IS NULL)"
)
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
DEFAULT_SINCE = "24h"
MAX_LIMIT = 1000


def parse_time(text: str, now: float, *, name: str = "since") -> float:
    """A moment as epoch seconds: ISO 8601 (UTC unless it says otherwise) or a span back from `now`."""
    m = _SPAN.match(text)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"{name}: expected ISO 8601 (2025-06-01 or 2025-06-01T12:00:00Z) or a span "
            f"such as 90m, 24h, 7d; got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def group_column(group_by: str) -> str:
    try:
        return GROUPS[group_by]
    except KeyError:
        raise InvalidRequest(f"group_by: expected one of {', '.join(GROUPS)}; got {group_by!r}") from None


def _fields(values: tuple[Any, ...]) -> dict[str, Any]:
    out = dict(zip(FIELDS, (v or 0 for v in values), strict=True))
    cost = values[FIELDS.index("cost_usd")]
    out["cost_usd"] = None if cost is None else round(float(cost), 9)
    return out


def aggregate(conn: sqlite3.Connection, *, since: float, until: float, group_by: str) -> dict[str, Any]:
    """The `/usage` document: one row per group key, and the totals over the window.

    `cost_usd` sums the priced requests; it is null only when no request in the group had a price.
    """
    column = group_column(group_by)
    order = "key" if group_by in _TIME_ORDERED else "COUNT(*) DESC, key"
    where = "WHERE ts >= ? AND ts < ?"
    rows = conn.execute(
        f"SELECT {column} AS key, {_AGGREGATES} FROM requests {where} GROUP BY key ORDER BY {order}", (since, until)
    ).fetchall()
    totals = conn.execute(f"SELECT {_AGGREGATES} FROM requests {where}", (since, until)).fetchone()
    return {
        "since": _iso(since),
        "until": _iso(until),
        "group_by": group_by,
        "rows": [{"key": key, **_fields(tuple(rest))} for key, *rest in rows],
        "totals": _fields(tuple(totals)),
    }


def latest(conn: sqlite3.Connection, *, limit: int = 50, before: float | None = None) -> list[dict[str, Any]]:
    """The newest rows first, every ledger column; `before` pages back (the last row's `ts`)."""
    limit = max(1, min(limit, MAX_LIMIT))
    sql = f"SELECT {', '.join(COLUMNS)} FROM requests"
    args: tuple[Any, ...] = ()
    if before is not None:
        sql += " WHERE ts < ?"
        args = (before,)
    rows = conn.execute(sql + " ORDER BY ts DESC LIMIT ?", (*args, limit)).fetchall()
    out = []
    for row in rows:
        item = dict(zip(COLUMNS, row, strict=True))
        item["stream"] = bool(item["stream"])
        item["time"] = _iso(item["ts"])
        out.append(item)
    return out


def window(query: dict[str, str], now: float) -> tuple[float, float]:
    """`since` / `until` from a query string (default: the last 24 hours)."""
    since = parse_time(query.get("since") or DEFAULT_SINCE, now, name="since")
    until = parse_time(query["until"], now, name="until") if query.get("until") else now + 1.0
    if since >= until:
        raise InvalidRequest("since: must be before until")
    return since, until


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
