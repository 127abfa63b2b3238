"""The package's floor plan holds: pure layers import no I/O, and no layer imports a lower one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ccproxy_core"
PURE = ("core", "providers", "translate")
IO_MODULES = {"aiohttp", "asyncio", "os", "pathlib", "time", "socket", "subprocess", "sqlite3", "threading"}
# Highest first: a module may import its own layer and the ones above it, never one below.
ORDER = [
    "core",
    "translate",
    "providers",
    "files",
    "dirs",
    "config",
    "accounts",
    "usage",
    "keys",
    "sdk",
    "server",
    "cli",
]


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module a file imports at run time (imports under `if TYPE_CHECKING:` do not count)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "ccproxy_core" and len(parts) > 1 else None


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_do_no_io(layer: str) -> None:
    """core/, providers/ and translate/ import neither aiohttp, asyncio, os, pathlib nor time."""
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line} imports {mod}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for mod, line in _imports(path)
        if mod.split(".")[0] in IO_MODULES
    ]
    assert offenders == []


def test_no_layer_imports_a_lower_one() -> None:
    """Imports point up the layer list in ccproxy_core/__init__.py, never down."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        own = rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.stem in ("files", "dirs") else None
        if own not in ORDER:
            continue
        for mod, line in _imports(path):
            target = _layer(mod)
            if target in ORDER and ORDER.index(target) > ORDER.index(own):
                offenders.append(f"{rel}:{line} ({own}) imports {mod} ({target})")
    assert offenders == []


def test_imports_are_absolute() -> None:
    """One import style: every import inside the package names ccproxy_core in full."""
    relative = [
        f"{path.relative_to(PACKAGE)}:{node.lineno}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]
    assert relative == []
