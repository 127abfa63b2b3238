"""Reading the configuration: the layers, where each comes from, and the merged result.

Precedence, highest first:

    command-line flags (--port, --debug, ...)
    CCPROXY_* environment (CCPROXY_LOG=true as the Go proxy meant it, and LOG=true)
    SECTION__KEY environment (ccproxy-api: SERVER__PORT, SECURITY__AUTH_TOKEN, LOG__LEVEL, ...)
    /etc/ccproxy/managed-settings.json   (the npm proxy's administrator file: beats every file)
    --config FILE, CCPROXY_CONFIG or CONFIG_FILE
    ./.ccproxy/config.json               (project)
    ./.ccproxy.toml or ./ccproxy.toml    (ccproxy-api's project file)
    ./.ccproxy/settings.json             (the npm proxy's project file)
    user config: <dirs.config_dir()>/config.json (on Linux ~/.config/ccproxy/, where
                 ccproxy-multi keeps config.toml), else the Go proxy's ~/.ccproxy/config.json
    ~/.ccproxy/settings.json             (the npm proxy's user file)
    ~/.claude-code-router/config.json    (claude-code-router's, see `ccr`)
    /etc/ccproxy/config.json             (managed defaults)
    built-in defaults

Each layer is a plain dict; dicts merge key by key and lists replace. Every `.json` may also be
`.toml` with the same keys. Every file (and every variable) is validated on its own before the
layers are combined, so an error names where it is: ``/home/me/.ccproxy/config.json: log.levle:
unknown key``. Files may be written for another proxy (Go ccproxy, npm claude-code-proxy,
ccproxy-api, ccproxy-multi): `compat` and `seeds` map them, and the keys that mean nothing here
are collected in `LoadedConfig.warnings`, logged once at start.

`Sources` remembers what a configuration was read from (flags, env, working directory), so the
server can read it again when a file changes and the provider API can validate an edit exactly
as the next start would.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
from attrs import Factory, field, frozen

from ccproxy_core import dirs
from ccproxy_core.config import ccr, seeds
from ccproxy_core.config import compat as config_compat
from ccproxy_core.config.model import MANAGED_CONFIG, Config, ConfigError, structure

log = logging.getLogger("ccproxy.config")

MANAGED_SETTINGS = Path("/etc/ccproxy/managed-settings.json")
_FLAG_NAMES = {"host": "--host", "port": "--port", "log": "--log-level/--debug"}
_SIMPLE_ENV = {
    "CCPROXY_HOST": ("host",),
    "CCPROXY_PORT": ("port",),
    "CCPROXY_API_KEY": ("apikey",),
    "CCPROXY_LOG_FILE": ("log", "file"),
    "CCPROXY_ROTATION_ENABLED": ("rotation", "enabled"),
    "CCPROXY_HOT_RELOAD": ("rotation", "hot_reload"),
    "CCPROXY_REFRESH_BUFFER": ("rotation", "refresh_buffer_seconds"),
    "CCPROXY_ACCOUNTS_PATH": ("rotation", "accounts_path"),
    "CCPROXY_OAUTH_TOKEN_URL": ("oauth", "token_url"),
}


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Dicts merge key by key; anything else (lists included) is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_text(path: Path, text: str) -> dict[str, Any]:
    """One file's text as a dict, before any mapping or `$VAR` expansion."""
    source = str(path)
    try:
        if path.suffix == ".toml":
            import tomllib  # here: only a .toml file needs it (its TOMLDecodeError is a ValueError)

            raw: Any = tomllib.loads(text)
        else:
            raw = orjson.loads(ccr.json5_text(text)) if text.strip() else {}  # claude-code-router's JSON5 too
    except (orjson.JSONDecodeError, ValueError) as exc:
        raise ConfigError([f"{source}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: (top level): expected an object of settings"])
    return raw


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None


def read_layer(path: Path, env: Mapping[str, str], text: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """One config file in the native dict shape, and warnings naming the keys that mean nothing here."""
    source = str(path)
    raw = parse_text(path, read_text(path) if text is None else text)
    warnings: list[str] = []
    if path.suffix == ".toml" and seeds.is_python_seed(raw):
        raw, warnings = seeds.from_sections(raw, source)
    data, more = config_compat.detect_and_normalize(raw, source)
    try:
        expanded: dict[str, Any] = config_compat.expand_env(data, env)
    except ValueError as exc:
        raise ConfigError([f"{source}: {exc}"]) from None
    structure(expanded, source, check_references=False)  # this file alone: its own mistakes
    return expanded, warnings + more


def read_file(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Parse one config file into the native dict shape (foreign formats normalised)."""
    return read_layer(path, env)[0]


def _nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: value}
    for part in reversed(path[:-1]):
        out = {part: out}
    return out


def env_layers(env: Mapping[str, str]) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """The environment's layers, lowest precedence first, each named by its variable; and warnings."""
    layers: list[tuple[str, dict[str, Any]]] = []
    warnings: list[str] = []
    for section, keys in sorted(seeds.env_sections(env).items()):
        for key, value in sorted(keys.items()):
            var = seeds.env_name(section, key)
            if section in seeds.FOREIGN_SECTIONS:
                warnings.append(f"environment {var}: ignored (a ccproxy-api feature ccproxy does not have)")
                continue
            if section in seeds.SECTIONS:
                given = {key: value}
                if section == "security" and key == "auth_token" and "enable_auth" in keys:
                    given["enable_auth"] = keys["enable_auth"]
                elif section == "security" and key == "enable_auth":
                    continue
                layer, more = seeds.from_sections({section: given}, f"environment {var}")
                warnings += more
            else:
                layer = {section: {key: value}}
            if layer:
                layers.append((f"env {var}", layer))
    for var, path in _SIMPLE_ENV.items():
        if var in env:
            layers.append((f"env {var}", _nested(path, env[var])))
    if env.get("CCPROXY_REDIS_URL"):  # alone, it selects the Redis backend
        layers.append(("env CCPROXY_REDIS_URL", {"state": {"backend": "redis", "redis_url": env["CCPROXY_REDIS_URL"]}}))
    for var in ("LOG", "CCPROXY_LOG"):  # the Go proxy's switch (LOG=true), or a level (CCPROXY_LOG=debug)
        if var not in env:
            continue
        on = seeds.go_log_flag(env[var])
        if on:
            layers.append((f"env {var}", {"log": {"file": env.get("CCPROXY_LOG_FILE") or seeds.DEFAULT_LOG_FILE}}))
        elif on is False and var == "CCPROXY_LOG":
            layers.append((f"env {var}", {"log": {"file": ""}}))
        elif on is None and var == "CCPROXY_LOG":
            layers.append((f"env {var}", {"log": {"level": env[var].strip().lower()}}))
    for name, layer in layers:
        structure(layer, f"environment {name.removeprefix('env ')}", check_references=False)
    return layers, warnings


def env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    """Every environment layer merged into one (for callers that need no sources)."""
    data: dict[str, Any] = {}
    for _, layer in env_layers(env)[0]:
        data = merge(data, layer)
    return data


def user_config_paths() -> list[Path]:
    return [dirs.config_dir() / "config.json", Path.home() / ".ccproxy" / "config.json"]


def _variants(path: Path) -> list[Path]:
    return (
        [path] if path.suffix == ".toml" or path.name.endswith("settings.json") else [path, path.with_suffix(".toml")]
    )


@frozen
class LoadedConfig:
    config: Config
    files: tuple[Path, ...]  # lowest precedence first
    sources: dict[str, str]  # dotted key -> "default" | file path | "env VAR" | "flag --x"
    warnings: tuple[str, ...] = ()  # settings that mean nothing here, for the one startup warning
    providers_file: Path | None = None  # the highest-precedence file that sets `providers`
    origin: Sources | None = None


def _paths(value: Iterable[Path] | None) -> tuple[Path, ...] | None:
    return None if value is None else tuple(value)


@frozen
class Sources:
    """Where a configuration is read from: enough to read it again, the same way."""

    flags: Mapping[str, Any] = Factory(dict)
    config_file: str | None = None
    env: Mapping[str, str] = Factory(dict)
    cwd: Path = Factory(Path.cwd)
    managed: Path = MANAGED_CONFIG
    managed_settings: Path = MANAGED_SETTINGS
    user_paths: tuple[Path, ...] | None = field(default=None, converter=_paths)
    npm_user: Path | None = None  # default ~/.ccproxy/settings.json
    only_files: tuple[Path, ...] | None = None  # exactly these files, no search (apps built from a list)

    def explicit(self) -> Path | None:
        given = self.config_file or self.env.get("CCPROXY_CONFIG") or self.env.get("CONFIG_FILE")
        return Path(given).expanduser() if given else None

    def groups(self) -> list[list[Path]]:
        """The places looked at, lowest precedence first; in each group the first existing file counts."""
        if self.only_files is not None:
            return [[p] for p in self.only_files]
        users = self.user_paths if self.user_paths is not None else tuple(user_config_paths())
        npm_user = self.npm_user or Path.home() / ".ccproxy" / "settings.json"
        groups = [
            _variants(self.managed),
            [npm_user],
            [ccr.user_config_path(Path.home())],  # claude-code-router's, below ccproxy's own user config
            [v for p in users for v in _variants(p)],
            [self.cwd / ".ccproxy" / "settings.json"],
            [self.cwd / ".ccproxy.toml", self.cwd / "ccproxy.toml"],
            _variants(self.cwd / ".ccproxy" / "config.json"),
        ]
        explicit = self.explicit()
        if explicit is not None:
            groups.append([explicit])
        groups.append([self.managed_settings])
        return groups

    def candidates(self) -> list[Path]:
        """Every path a file could be read from (for the watcher)."""
        return [p for group in self.groups() for p in group]

    def files(self) -> list[Path]:
        explicit = self.explicit()
        found: list[Path] = []
        for group in self.groups():
            hit = next((p for p in group if p.is_file()), None)
            if hit is not None:
                found.append(hit)
            elif group == [explicit] and explicit is not None:
                raise ConfigError([f"{explicit}: no such config file"])
        return found

    def load(self, texts: Mapping[Path, str] | None = None) -> LoadedConfig:
        """Read every layer and build the effective configuration; `texts` stand in for files' content."""
        texts = texts or {}
        layers: list[tuple[str, dict[str, Any]]] = []
        warnings: list[str] = []
        providers_file: Path | None = None
        files = self.files()
        for path in files:
            layer, more = read_layer(path, self.env, texts.get(path))
            layers.append((str(path), layer))
            warnings += more
            if "providers" in layer:
                providers_file = path
        env, more = env_layers(self.env)
        layers += env
        warnings += more
        for key, value in self.flags.items():
            if value is not None:
                layers.append((f"flag {_FLAG_NAMES.get(key, '--' + key)}", {key: value}))

        data: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name, layer in layers:
            data = merge(data, layer)
            for key in _leaves(layer):
                sources[key] = name
        before = list(data.get("providers") or [])
        data["providers"] = config_compat.env_api_keys(before, self.env)
        _key_sources(before, data["providers"], self.env, sources)
        warnings += _accounts_path(data, sources)
        config = structure(data, files[-1].name if files else "config")
        return LoadedConfig(
            config=config,
            files=tuple(files),
            sources=sources,
            warnings=tuple(warnings),
            providers_file=providers_file,
            origin=self,
        )


def _key_sources(before: list[Any], after: list[Any], env: Mapping[str, str], sources: dict[str, str]) -> None:
    """`config show` names the variable a provider's key came from (never the key)."""
    for i, (old, new) in enumerate(zip(before, after, strict=True)):
        if isinstance(old, Mapping) and old.get("api_key") != new.get("api_key"):
            var = f"CCPROXY_PROVIDERS_{i}_API_KEY"
            if var not in env:
                var = next((k for k, v in env.items() if k.endswith("_API_KEY") and v == new.get("api_key")), var)
            sources[f"providers.{i}.api_key"] = f"env {var}"


def _accounts_path(data: dict[str, Any], sources: dict[str, str]) -> list[str]:
    """`rotation.accounts_path` (ccproxy-multi; CCPROXY_ACCOUNTS_PATH): the OAuth provider's file.

    It fills `accounts_path` of each OAuth provider that has none; with no OAuth provider
    configured it stands for one, named `claude`, as in ccproxy-multi (which has no providers).
    """
    path = (data.get("rotation") or {}).get("accounts_path")
    if not path:
        return []
    providers: list[dict[str, Any]] = data["providers"]
    oauth = [p for p in providers if p.get("auth") == "oauth"]
    for p in oauth:
        if not p.get("accounts_path"):
            p["accounts_path"] = path
    if oauth:
        return []
    if any(p.get("name") == "claude" for p in providers):
        return [
            f"{sources.get('rotation.accounts_path', 'config')}: rotation.accounts_path: no OAuth provider "
            "uses it, and a provider named 'claude' exists; set auth = \"oauth\" on the provider it is for"
        ]
    providers.append({"name": "claude", "kind": "anthropic", "auth": "oauth", "accounts_path": path})
    sources.setdefault("providers", sources.get("rotation.accounts_path", "config"))
    return []


def load(
    *,
    flags: Mapping[str, Any] | None = None,
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    managed: Path = MANAGED_CONFIG,
    user_paths: list[Path] | None = None,
    managed_settings: Path = MANAGED_SETTINGS,
) -> LoadedConfig:
    """Read every layer and build the effective configuration."""
    sources = Sources(
        flags=dict(flags or {}),
        config_file=config_file,
        env=dict(os.environ if env is None else env),
        cwd=Path.cwd() if cwd is None else cwd,
        managed=managed,
        managed_settings=managed_settings,
        user_paths=user_paths,
    )
    return sources.load()


def _leaves(layer: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in layer.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.extend(_leaves(value, path + "."))
        else:
            out.append(path)
    return out
