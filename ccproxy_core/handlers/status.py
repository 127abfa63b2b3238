"""Pool status API (filled in with the credential pool)."""

from __future__ import annotations

from aiohttp import web

ROUTES: list[web.RouteDef] = []
