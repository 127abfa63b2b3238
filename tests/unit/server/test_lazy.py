"""server/lazy.py: handlers whose modules load on their first request."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest
from aiohttp import web

from ccproxy_core.server import lazy


def test_every_lazy_route_names_a_handler_that_exists() -> None:
    """Each route in the lazy tables resolves to a coroutine function of its module (a typo fails here, not at a first request)."""
    tables = [lazy.DASHBOARD, lazy.USAGE, lazy.STATUS, lazy.PROVIDERS, lazy.RESPONSES, lazy.SDK, lazy.KEYS]
    for route in (r for table in tables for r in table):
        assert isinstance(route, web.RouteDef)
        module, name = route.handler.__qualname__.split(".")
        target = getattr(importlib.import_module(f"{lazy.PACKAGE}.{module}"), name)
        assert inspect.iscoroutinefunction(target), (route.path, module, name)


async def test_a_lazy_handler_imports_its_module_once_on_the_first_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is imported when the handler is made; the first call imports, later calls reuse the function."""
    imported: list[str] = []
    seen: list[Any] = []

    async def target(request: Any) -> Any:
        seen.append(request)
        return web.Response(text="ok")

    class Module:
        handle = staticmethod(target)

    def fake_import(name: str) -> Any:
        imported.append(name)
        return Module

    monkeypatch.setattr(importlib, "import_module", fake_import)
    handler = lazy.later("somewhere", "handle")
    assert imported == []
    first, second = await handler("r1"), await handler("r2")  # type: ignore[arg-type]
    assert imported == [f"{lazy.PACKAGE}.somewhere"]
    assert seen == ["r1", "r2"] and isinstance(first, web.Response) and isinstance(second, web.Response)
