"""Reading the configuration: the layers, where each comes from, and the merged result.

Precedence, highest first (DESIGN.md): command-line flags > `CCPROXY_*` environment >
`--config FILE` (or `CCPROXY_CONFIG`) > project `./.ccproxy/config.json` > user config
(platformdirs, then the legacy `~/.ccproxy/config.json`) > managed `/etc/ccproxy/config.json` >
built-in defaults. Each layer is a plain dict; dicts merge key by key and lists replace.

Every file is validated on its own (merged over the defaults) before the layers are combined,
so an error names the file it is in: ``/home/me/.ccproxy/config.json: log.levle: unknown key``.
Files may be `.json` (with `//` comments, as the Go ccproxy allows) or `.toml`, and may be
written in the Go ccproxy or npm claude-code-proxy formats (`compat` turns those into this shape).
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import platformdirs
from attrs import frozen

from ccproxy_core.config import ccr
from ccproxy_core.config import compat as config_compat
from ccproxy_core.config.model import MANAGED_CONFIG, Config, ConfigError, structure

log = logging.getLogger("ccproxy.config")


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Dicts merge key by key; anything else (lists included) is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_file(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Parse one config file into the native dict shape (foreign formats normalised)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read: {exc.strerror or exc}"]) from None
    try:
        if path.suffix == ".toml":
            raw: Any = tomllib.loads(text)
        else:
            raw = orjson.loads(ccr.json5_text(text)) if text.strip() else {}  # claude-code-router's JSON5 too
    except (orjson.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([f"{source}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: (top level): expected an object of settings"])
    data, warnings = config_compat.detect_and_normalize(raw, source)
    for warning in warnings:
        log.warning("%s", warning)
    try:
        expanded: dict[str, Any] = config_compat.expand_env(data, env)
    except ValueError as exc:
        raise ConfigError([f"{source}: {exc}"]) from None
    structure(expanded, source, check_references=False)  # this file alone: its own mistakes
    return expanded


def env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    """The `CCPROXY_*` variables that set plain keys (provider keys are applied separately)."""
    layer: dict[str, Any] = {}
    simple = {
        "CCPROXY_HOST": ("host",),
        "CCPROXY_PORT": ("port",),
        "CCPROXY_API_KEY": ("apikey",),
        "CCPROXY_LOG": ("log", "level"),
        "CCPROXY_LOG_FILE": ("log", "file"),
        "CCPROXY_ROTATION_ENABLED": ("rotation", "enabled"),
        "CCPROXY_HOT_RELOAD": ("rotation", "hot_reload"),
        "CCPROXY_REFRESH_BUFFER": ("rotation", "refresh_buffer_seconds"),
        "CCPROXY_OAUTH_TOKEN_URL": ("oauth", "token_url"),
    }
    for var, path in simple.items():
        if var in env:
            node = layer
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = env[var]
    return layer


def user_config_paths() -> list[Path]:
    return [Path(platformdirs.user_config_dir("ccproxy")) / "config.json", Path.home() / ".ccproxy" / "config.json"]


def _first_existing(path: Path) -> Path | None:
    for candidate in (path, path.with_suffix(".toml")):
        if candidate.is_file():
            return candidate
    return None


@frozen
class LoadedConfig:
    config: Config
    files: tuple[Path, ...]  # lowest precedence first
    sources: dict[str, str]  # dotted key -> "default" | file path | "env VAR" | "flag --x"


def load(
    *,
    flags: Mapping[str, Any] | None = None,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    managed: Path = MANAGED_CONFIG,
    user_paths: list[Path] | None = None,
) -> LoadedConfig:
    """Read every layer and build the effective configuration."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    layers: list[tuple[str, dict[str, Any]]] = []
    files: list[Path] = []

    ccr_path = ccr.user_config_path(Path.home())  # claude-code-router's, below ccproxy's own user config
    candidates: list[Path | None] = [_first_existing(managed), ccr_path if ccr_path.is_file() else None]
    user = [_first_existing(p) for p in (user_paths if user_paths is not None else user_config_paths())]
    candidates.append(next((p for p in user if p), None))
    candidates.append(_first_existing(cwd / ".ccproxy" / "config.json"))
    explicit = config_file or env.get("CCPROXY_CONFIG")
    for path in candidates:
        if path is not None:
            layers.append((str(path), read_file(path, env)))
            files.append(path)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError([f"{path}: no such config file"])
        layers.append((str(path), read_file(path, env)))
        files.append(path)
    layers.append(("env", env_layer(env)))
    layers.append(("flag", {k: v for k, v in (flags or {}).items() if v is not None}))

    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, layer in layers:
        data = merge(data, layer)
        for key in _leaves(layer):
            sources[key] = name
    data["providers"] = config_compat.env_api_keys(list(data.get("providers") or []), env)
    if "CCPROXY_ACCOUNTS_PATH" in env:
        for p in data["providers"]:
            if p.get("auth") == "oauth" and not p.get("accounts_path"):
                p["accounts_path"] = env["CCPROXY_ACCOUNTS_PATH"]
    config = structure(data, files[-1].name if files else "config")
    return LoadedConfig(config=config, files=tuple(files), sources=sources)


def _leaves(layer: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in layer.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.extend(_leaves(value, path + "."))
        else:
            out.append(path)
    return out
