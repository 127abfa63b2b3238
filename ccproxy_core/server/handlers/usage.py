"""`GET /usage` and `GET /usage/requests`: the ledger, aggregated or row by row.

Reads run on a worker thread with a connection of their own (the writer thread keeps its own),
after waiting for rows already queued, so a request that just ended is always counted.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

from aiohttp import web

from ccproxy_core.core.errors import InvalidRequest, ServiceUnavailable
from ccproxy_core.server.handlers.common import json_response
from ccproxy_core.server.observability import OBS
from ccproxy_core.usage import query
from ccproxy_core.usage.ledger import Ledger, reading


def _ledger(request: web.Request) -> Ledger:
    ledger = request.app[OBS].ledger
    if ledger is None:
        raise ServiceUnavailable("the usage ledger is off (usage.enabled: false in the config)")
    ledger.start()  # the first read of a server that has proxied nothing yet opens the file
    _check_open(ledger)
    return ledger


def _check_open(ledger: Ledger) -> None:
    if not ledger.running:
        raise ServiceUnavailable(f"the usage ledger could not be opened at {ledger.path}; see the proxy's log")


def _read(ledger: Ledger, work: Any) -> Any:
    ledger.sync(timeout=2.0)
    _check_open(ledger)  # it may have been opening when _ledger looked, and failed since
    try:
        with reading(ledger.path) as conn:
            return work(conn)
    except sqlite3.Error as exc:
        raise ServiceUnavailable(f"the usage ledger at {ledger.path} could not be read: {exc}") from None


async def usage(request: web.Request) -> web.Response:
    ledger = _ledger(request)
    since, until = query.window(dict(request.query), time.time())
    group_by = request.query.get("group_by", "model")
    query.group_column(group_by)  # an unknown group is a 400 before any thread work

    def work(conn: sqlite3.Connection) -> dict[str, Any]:
        return query.aggregate(conn, since=since, until=until, group_by=group_by)

    return json_response(await asyncio.to_thread(_read, ledger, work))


async def requests(request: web.Request) -> web.Response:
    ledger = _ledger(request)
    limit = _number(request.query.get("limit", "50"), "limit")
    before_text = request.query.get("before")
    before: float | None = None
    if before_text:
        try:
            before = float(before_text)  # the `ts` of the last row of the previous page
        except ValueError:
            before = query.parse_time(before_text, time.time(), name="before")

    def work(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        return query.latest(conn, limit=int(limit), before=before)

    return json_response({"requests": await asyncio.to_thread(_read, ledger, work)})


def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidRequest(f"{name}: expected a number, got {text!r}") from None
    if value < 1:
        raise InvalidRequest(f"{name}: expected 1 or more, got {text!r}")
    return value
