"""Where ccproxy keeps its files by default: the user's config, state, log and cache directories.

On Linux and the other systems that follow the XDG Base Directory rules, the rules are written
out here: `$XDG_CONFIG_HOME`, `$XDG_STATE_HOME` or `$XDG_CACHE_HOME` when set to an absolute
path, else `~/.config`, `~/.local/state` or `~/.cache`; then `ccproxy`; logs in `log/` of the
state directory. That is what platformdirs answers there (tests/unit/test_dirs.py compares the
two), but importing platformdirs cost every server start about 4 ms and 0.34 MB of its idle
memory for those four lines. macOS, Windows and Android ask platformdirs, imported then.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "ccproxy"


def _xdg_rules() -> bool:
    """Whether platformdirs would use its XDG rules here (anything but Windows, Apple and Android apps)."""
    if sys.platform in ("win32", "darwin", "ios", "android") or hasattr(sys, "getandroidapilevel"):
        return False
    return os.environ.get("ANDROID_DATA") != "/data" or os.environ.get("ANDROID_ROOT") != "/system"


def _home() -> str:
    """$HOME when it is an absolute path, else the account's home directory."""
    home = os.environ.get("HOME", "")
    if not os.path.isabs(home):
        import pwd

        try:
            home = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:
            home = ""
        if not os.path.isabs(home):
            raise RuntimeError("cannot tell the home directory: set HOME (or XDG_CONFIG_HOME and XDG_STATE_HOME)")
    return home.rstrip("/") or "/"


def _xdg(variable: str, default: str) -> Path:
    base = os.environ.get(variable, "")
    if not os.path.isabs(base):  # unset, empty or relative: the rules say to use the default
        base = os.path.join(_home(), default)
    return Path(base, APP)


def _platformdirs(kind: str) -> Path:
    """platformdirs' `user_<kind>_dir`, where the XDG rules are not this system's."""
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP))


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") if _xdg_rules() else _platformdirs("config")


def state_dir() -> Path:
    return _xdg("XDG_STATE_HOME", ".local/state") if _xdg_rules() else _platformdirs("state")


def log_dir() -> Path:
    return state_dir() / "log" if _xdg_rules() else _platformdirs("log")


def cache_dir() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache") if _xdg_rules() else _platformdirs("cache")
