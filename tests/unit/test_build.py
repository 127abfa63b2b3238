"""The build's switches: CCPROXY_COMPILE, the build backend's extra requirement, the module list.

Building the extensions themselves takes a minute: tests/integration/test_compiled.py does it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPILED = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ccproxy"]["compiled"]


class _Setuptools:
    """setuptools' backend as the wrapper sees it: what it was asked, and under which setting."""

    def __init__(self) -> None:
        self.asked_with: list[str | None] = []

    def _answer(self, *_: object) -> list[str]:
        self.asked_with.append(os.environ.get("CCPROXY_COMPILE"))
        return ["wheel-from-setuptools"]

    get_requires_for_build_wheel = get_requires_for_build_editable = prepare_metadata_for_build_wheel = _answer


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """build_support/ccproxy_build.py over a stand-in for setuptools (the test venv's own
    setuptools may predate this pyproject.toml; a real build gets a current one)."""
    monkeypatch.syspath_prepend(str(ROOT / "build_support"))
    monkeypatch.delenv("CCPROXY_COMPILE", raising=False)
    import ccproxy_build

    monkeypatch.setattr(ccproxy_build, "_setuptools", _Setuptools())
    return ccproxy_build


def _setup_py(value: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "setup.py", "--name"],
        cwd=ROOT,
        env={**os.environ, "CCPROXY_COMPILE": value},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_compiling_wheel_build_asks_for_mypy_and_a_pure_one_does_not(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert backend.get_requires_for_build_wheel() == ["wheel-from-setuptools"]
    monkeypatch.setenv("CCPROXY_COMPILE", "1")
    assert backend.get_requires_for_build_wheel() == ["wheel-from-setuptools", "mypy>=1.10"]
    # setuptools runs setup.py for its own list: it is asked as for a pure build (mypy is not
    # there yet), and the setting is back for the build that follows.
    assert backend._setuptools.asked_with == [None, "0"]
    assert os.environ["CCPROXY_COMPILE"] == "1"


def test_the_metadata_of_a_compiling_build_is_made_without_running_mypyc(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CCPROXY_COMPILE", "1")
    backend.prepare_metadata_for_build_wheel("metadata")
    assert backend._setuptools.asked_with == ["0"]
    assert os.environ["CCPROXY_COMPILE"] == "1"  # for the build_wheel that follows


def test_an_editable_install_is_never_compiled(backend: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCPROXY_COMPILE", "1")
    assert backend.get_requires_for_build_editable() == ["wheel-from-setuptools"]
    assert backend._setuptools.asked_with == ["0"]
    assert os.environ["CCPROXY_COMPILE"] == "0"


def test_an_unknown_compile_setting_is_refused_saying_what_is_expected() -> None:
    result = _setup_py("yes")
    assert result.returncode != 0
    assert "CCPROXY_COMPILE='yes': expected 0 (pure Python, the default) or 1 (compile with mypyc)" in result.stderr


@pytest.mark.parametrize("path", COMPILED)
def test_each_compiled_module_exists_and_keeps_the_rules_mypyc_needs(path: str) -> None:
    """A listed module is a source file of the package with plain classes: no attrs (whose
    classes fail at import once mypyc has built its own) and no error class of its own (a native
    subclass does not override an uncompiled base's class attributes)."""
    source = (ROOT / path).read_text()
    assert path.startswith("ccproxy_core/") and path.endswith(".py")
    assert "import attr" not in source and "from attr" not in source, f"{path} uses attrs"
    assert "(ProxyError)" not in source and "(InvalidRequest)" not in source, f"{path} defines an error class"
