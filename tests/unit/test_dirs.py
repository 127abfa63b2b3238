"""dirs.py gives the directories platformdirs gives, without importing it where the XDG rules hold."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest

from ccproxy_core import dirs

XDG = ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")

pytestmark = pytest.mark.skipif(not dirs._xdg_rules(), reason="the XDG rules are platformdirs' only on Linux and BSD")


def _platformdirs() -> tuple[Path, Path, Path, Path]:
    return (
        Path(platformdirs.user_config_dir("ccproxy")),
        Path(platformdirs.user_state_dir("ccproxy")),
        Path(platformdirs.user_log_dir("ccproxy")),
        Path(platformdirs.user_cache_dir("ccproxy")),
    )


def _ours() -> tuple[Path, Path, Path, Path]:
    return dirs.config_dir(), dirs.state_dir(), dirs.log_dir(), dirs.cache_dir()


@pytest.mark.parametrize(
    ("home", "xdg"),
    [
        ("/home/ana", None),  # the defaults under $HOME
        ("/home/ana/", None),  # a trailing slash
        ("/home/ana", "/srv/xdg"),  # every XDG variable set to an absolute path
        ("/home/ana", ""),  # set but empty: ignored
        ("/home/ana", "relative/xdg"),  # relative: ignored, as the spec says
        ("/", None),  # root's home
        ("relative-home", None),  # a relative HOME: the account's home instead
        (None, None),  # no HOME: the account's home
    ],
)
def test_the_directories_are_platformdirs_own(
    monkeypatch: pytest.MonkeyPatch, home: str | None, xdg: str | None
) -> None:
    if home is None:
        monkeypatch.delenv("HOME", raising=False)
    else:
        monkeypatch.setenv("HOME", home)
    for name in XDG:
        if xdg is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, f"{xdg}/{name.lower()}" if xdg.startswith("/") else xdg)
    assert _ours() == _platformdirs()


def test_one_variable_moves_one_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert dirs.state_dir() == tmp_path / "state" / "ccproxy"
    assert dirs.log_dir() == tmp_path / "state" / "ccproxy" / "log"
    assert dirs.config_dir() == tmp_path / ".config" / "ccproxy"
    assert dirs.cache_dir() == tmp_path / ".cache" / "ccproxy"


def test_nothing_is_created(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "empty-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in XDG:
        monkeypatch.delenv(name, raising=False)
    _ours()
    assert list(home.iterdir()) == []


def test_serve_does_not_load_platformdirs(tmp_path: Path) -> None:
    """What a server start imports (its app, the CLI, the default paths) never loads platformdirs."""
    code = (
        "import sys\n"
        "import ccproxy_core.cli.main, ccproxy_core.server.app, ccproxy_core.cli.codegen_cache as c\n"
        "from ccproxy_core.usage import ledger\n"
        "from ccproxy_core.keys import store\n"
        "from ccproxy_core.config import load\n"
        "ledger.default_path(), store.default_path(), c.default_path(), load.user_config_paths()\n"
        "print('platformdirs' in sys.modules)\n"
    )
    env = {**os.environ, "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "False"


def test_where_the_rules_are_not_the_systems_platformdirs_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS, Windows, Android: each directory is platformdirs' own (here its Unix answer, run
    through the same path those systems take)."""
    monkeypatch.setattr(dirs, "_xdg_rules", lambda: False)
    assert _ours() == _platformdirs()
