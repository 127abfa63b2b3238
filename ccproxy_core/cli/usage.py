"""`ccproxy usage`: requests, tokens and cost from the usage ledger, as a table or the `/usage` JSON.

It asks the running background server (found through its pidfile, as `ccproxy status` finds
it) so the rows still queued in the server are counted; with no server running it reads the
ledger file itself, with the same query, so both give the same document.
"""

from __future__ import annotations

import http.client
import sqlite3
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import orjson

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.usage import query
from ccproxy_core.usage.ledger import reading, resolve_path

COLUMNS = (
    ("requests", "REQUESTS"),
    ("errors", "ERRORS"),
    ("input_tokens", "INPUT"),
    ("output_tokens", "OUTPUT"),
    ("cache_read_tokens", "CACHE READ"),
    ("cache_creation_tokens", "CACHE WRITE"),
    ("cost_usd", "COST USD"),
)


class UsageError(Exception):
    """A problem worth one line to the user (a bad --since, no ledger yet, a server that refused)."""


def from_server(url: str, apikey: str, since: str, group_by: str, timeout: float = 10.0) -> dict[str, Any] | None:
    """The running server's `/usage`; None when it cannot be reached (then the file is read)."""
    params = urllib.parse.urlencode({"since": since, "group_by": group_by})
    request = urllib.request.Request(f"{url}/usage?{params}", headers={"x-api-key": apikey} if apikey else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as resp:
            return orjson.loads(resp.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        if exc.code == 503:  # the server's ledger is off or broken: the file may still be read
            return None
        try:
            message = orjson.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = f"HTTP {exc.code}"
        raise UsageError(f"the server at {url} refused: {message}") from None
    except (OSError, ValueError, http.client.HTTPException):
        return None


def from_file(path_setting: str, since: str, group_by: str, now: float) -> dict[str, Any]:
    path = resolve_path(path_setting)
    if not path.exists():
        raise UsageError(f"no usage recorded yet: {path} does not exist (the server writes it; see usage.path)")
    try:
        start, until = query.window({"since": since}, now)
        with reading(path) as conn:
            return query.aggregate(conn, since=start, until=until, group_by=group_by)
    except InvalidRequest as exc:
        raise UsageError(exc.message) from None
    except sqlite3.Error as exc:
        raise UsageError(f"cannot read the usage ledger {path}: {exc}") from None


def _cell(field: str, value: Any, unpriced: int) -> str:
    if field == "cost_usd":
        text = "unpriced" if value is None else f"{value:.4f}"
        return text + (f" (+{unpriced} unpriced)" if unpriced and value is not None else "")
    return f"{value:,}"


def render(doc: dict[str, Any], source: str) -> str:
    """The `/usage` document as a terminal table, with a totals line."""
    head = f"usage from {doc['since']} to {doc['until']}, by {doc['group_by']} ({source})"
    rows = doc["rows"]
    if not rows:
        return head + "\nno requests in this window"
    table = [[doc["group_by"].upper(), *(title for _, title in COLUMNS)]]
    for row in [*rows, {**doc["totals"], "key": "TOTAL"}]:
        table.append([str(row["key"]), *(_cell(f, row[f], row["unpriced_requests"]) for f, _ in COLUMNS)])
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in table
    ]
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join([head, *lines])


def run(*, since: str, group_by: str, as_json: bool, config_file: str | None) -> int:
    from ccproxy_core.cli import daemon
    from ccproxy_core.config.load import load
    from ccproxy_core.config.model import ConfigError

    try:
        query.group_column(group_by)
        doc: dict[str, Any] | None = None
        source = ""
        info = daemon.running()
        if info is not None:
            try:
                apikey = daemon.config_of(info).apikey
            except (ConfigError, OSError):
                apikey = ""
            doc, source = from_server(info.url, apikey, since, group_by), f"the running server at {info.url}"
        if doc is None:
            config = load(config_file=config_file).config
            doc = from_file(config.usage.path, since, group_by, time.time())
            source = str(resolve_path(config.usage.path))
    except (UsageError, ConfigError) as exc:
        print(f"ccproxy usage: {exc}", file=sys.stderr)
        return 1
    except InvalidRequest as exc:
        print(f"ccproxy usage: {exc.message}", file=sys.stderr)
        return 2
    print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() if as_json else render(doc, source))
    return 0
