"""The compiled build (CCPROXY_COMPILE=1: mypyc, setup.py) behaves as the sources do.

The build is made as a user's `pip install .` makes it, into a directory of its own; then the
tests of the compiled modules, and the end-to-end tests that send the official SDKs' requests
through a real server, run again with that build first on the path. mypyc changes semantics in
a few places (a class attribute a native subclass overrides, attrs classes, patched functions):
a module that meets one fails here, not in a user's proxy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPILED = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ccproxy"]["compiled"]
RETESTED = [
    "tests/unit/core",
    "tests/unit/translate",
    "tests/unit/usage",
    "tests/integration/test_passthrough.py",
    "tests/integration/test_translate_anthropic_client.py",
    "tests/integration/test_translate_openai_client.py",
    "tests/integration/test_faults.py",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("compiled")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(ROOT)],
        env={**os.environ, "CCPROXY_COMPILE": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return target


def _env(target: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(target)}


def _module(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def test_every_listed_module_is_built_and_imported_as_an_extension(compiled: Path) -> None:
    assert COMPILED, "pyproject.toml lists no compiled module"
    probe = "import importlib, sys\nfor name in sys.argv[1:]:\n    print(importlib.import_module(name).__file__)"
    found = subprocess.run(
        [sys.executable, "-c", probe, *map(_module, COMPILED)],
        cwd=compiled,
        env=_env(compiled),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert len(found) == len(COMPILED)
    for path, file in zip(COMPILED, found, strict=True):
        assert file.startswith(str(compiled)) and file.endswith(".so"), f"{path} was imported from {file}"


def test_version_says_the_build_is_compiled(compiled: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ccproxy_core", "version"],
        cwd=compiled,
        env=_env(compiled),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.rstrip().endswith(f", {len(COMPILED)} modules compiled)"), out


def test_the_sources_also_ship_for_other_interpreters(compiled: Path) -> None:
    """Beside each extension its .py, which an interpreter the extension was not built for imports."""
    for path in COMPILED:
        assert (compiled / path).read_bytes() == (ROOT / path).read_bytes()


def test_the_compiled_modules_pass_their_tests_and_the_end_to_end_ones(compiled: Path) -> None:
    # The extensions are imported (and checked) before pytest starts, so every test below runs
    # against them; --import-mode=append keeps the checkout behind the build on sys.path.
    script = (
        "import importlib, sys, pytest\n"
        f"for name in {list(map(_module, COMPILED))!r}:\n"
        "    assert importlib.import_module(name).__file__.endswith('.so'), name\n"
        "sys.exit(pytest.main(sys.argv[1:]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, "-q", "-p", "no:cacheprovider", "--import-mode=append",
         "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), *(str(ROOT / p) for p in RETESTED)],
        cwd=compiled,
        env=_env(compiled),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout.splitlines()[-1]
