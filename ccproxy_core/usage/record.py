"""One row of the usage ledger: one client request, written after it ended.

`COLUMNS` is the one list of the ledger's columns, in table order; the SQLite schema, the
insert statement and `/usage/requests` are all derived from it.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from attrs import asdict, fields, frozen


@frozen
class UsageRecord:
    ts: float  # when the request started, epoch seconds
    request_id: str
    client: str = "anonymous"  # the client key's name
    endpoint: str = ""  # the route's path, e.g. /v1/messages
    model: str = ""  # the model the client asked for
    route_reason: str = ""
    provider: str = ""  # "" for a request refused before routing
    upstream_model: str = ""
    credential: str = ""
    status: int = 0  # 499: the client went away first
    error_type: str = ""
    stream: bool = False
    latency_ms: float = 0.0
    ttfb_ms: float | None = None
    input_tokens: int = 0  # Anthropic's sense: excludes cached tokens
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    cost_usd: float | None = None  # None: the upstream model has no price
    session_id: str = ""  # X-Claude-Code-Session-Id

    def row(self) -> tuple[Any, ...]:
        return _ROW(self)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(UsageRecord))
# One C call for the whole row (the ledger's writer calls it per request), not a generator of getattrs.
_ROW = attrgetter(*COLUMNS)
