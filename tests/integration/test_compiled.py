"""The compiled build (CCPROXY_COMPILE=1: mypyc, setup.py) behaves as the sources do.

The build is made as a user's `pip install .` makes it, into a directory of its own; then the
tests of the compiled modules, and the end-to-end tests that send the official SDKs' requests
through a real server, run again with that build first on the path. mypyc changes semantics in
a few places (a class attribute a native subclass overrides, attrs classes, patched functions):
a module that meets one fails here, not in a user's proxy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPILED = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ccproxy"]["compiled"]
RETESTED = [
    "tests/unit/core",
    "tests/unit/translate",
    "tests/unit/usage",
    "tests/unit/server/test_upstream.py",  # the HTTP/1.1 client (server/http1.py, http1_exchange.py)
    "tests/integration/test_passthrough.py",
    "tests/integration/test_translate_anthropic_client.py",
    "tests/integration/test_translate_openai_client.py",
    "tests/integration/test_faults.py",  # the provider cuts, stalls, lies, rate-limits
    "tests/integration/test_hostile.py",  # the client sends garbage
    "tests/integration/test_fuzz.py",
    "tests/integration/test_framing.py",  # bodies in codings, Expect, heads: where 415 became 400
    "tests/integration/test_keepalive.py",  # connections kept, dropped and sent again
    "tests/integration/test_pool.py",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build; skipped (and so failed under CI, which installs them) without a C compiler or
    this interpreter's headers."""
    if shutil.which(os.environ.get("CC", "cc")) is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler (cc or gcc) to build the compiled modules with: apt install gcc")
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        pytest.skip("no Python.h for this interpreter to build the compiled modules with: apt install python3-dev")
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


def _python(target: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """This interpreter with the build first on the path, run from inside it: `python -m` and `-c`
    put the working directory first, where the checkout would shadow the build."""
    return subprocess.run(
        [sys.executable, *argv],
        cwd=target,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _module(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def test_every_listed_module_is_built_and_imported_as_an_extension(compiled: Path) -> None:
    assert COMPILED, "pyproject.toml lists no compiled module"
    probe = "import importlib, sys\nfor name in sys.argv[1:]:\n    print(importlib.import_module(name).__file__)"
    result = _python(compiled, "-c", probe, *map(_module, COMPILED))
    assert result.returncode == 0, result.stderr
    found = result.stdout.split()
    assert len(found) == len(COMPILED)
    for path, file in zip(COMPILED, found, strict=True):
        assert file.startswith(str(compiled)) and file.endswith(".so"), f"{path} was imported from {file}"


def test_version_says_the_build_is_compiled(compiled: Path) -> None:
    result = _python(compiled, "-m", "ccproxy_core", "version")
    assert result.returncode == 0, result.stderr
    out = result.stdout
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
    args = [
        "-q",
        "-p",
        "no:cacheprovider",
        "--import-mode=append",
        "--rootdir",
        str(ROOT),
        "-c",
        str(ROOT / "pyproject.toml"),
    ]
    run = _python(compiled, "-c", script, *args, *(str(ROOT / p) for p in RETESTED), timeout=900)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout.splitlines()[-1]
