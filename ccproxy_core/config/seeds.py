"""The Python seeds' settings: ccproxy-api and ccproxy-multi TOML sections and env variables.

Both products are configured with TOML sections (`[server]`, `[security]`, `[rotation]`, ...)
and ccproxy-api also with double-underscore environment variables (`SERVER__PORT=8080`).
`from_sections` maps a dict in that shape onto ccproxy's native keys where they mean the same
thing, and names every other key in a warning (it configured something ccproxy does not have):

    [server]   host, port -> host, port; log_level -> log.level; log_file -> log.file
    [security] auth_token -> apikey (unless enable_auth = false)
    [logging]  level -> log.level; format "json" -> log.format
    [rotation] enabled, accounts_path, hot_reload, refresh_buffer_seconds -> rotation.*

Native keys in the same file (`port = 4000`, `[log]`) pass through untouched and win over a
mapped one. The Go proxy's `CCPROXY_LOG=true` / `LOG=true` (file logging on) is read here too
(`go_log_flag`). Pure functions of their inputs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ccproxy_core.core.wire import JSON

DEFAULT_LOG_FILE = "~/.ccproxy/ccproxy.log"  # the Go proxy's default, taken as is

_SERVER = {"host": ("host",), "port": ("port",), "log_level": ("log", "level"), "log_file": ("log", "file")}
_ROTATION = frozenset({"enabled", "accounts_path", "hot_reload", "refresh_buffer_seconds"})
# Sections of ccproxy-api that configure features ccproxy does not have (plugins, Docker, the SDK
# mode's CLI options, scheduler, pricing tables, CORS): named once in the startup warning.
FOREIGN_SECTIONS = frozenset(
    {
        "cors",
        "claude",
        "scheduler",
        "docker",
        "pricing",
        "observability",
        "plugins",
        "plugin_discovery",
        "auth",
        "reverse_proxy",
        "codex",
        "api",
    }
)
SECTIONS = frozenset({"server", "security", "logging", "rotation"})
_NATIVE_SECTIONS = frozenset({"log", "limits", "router", "breaker", "oauth"})
_ENV = re.compile(r"^([A-Z][A-Z0-9_]*?)__([A-Z0-9_]+)$")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

_WHY = {
    "enable_plugins": "ccproxy has no plugins",
    "workers": "ccproxy serves from one process",
    "reload": "use `ccproxy serve --reload`",
}


def is_python_seed(raw: Mapping[str, Any]) -> bool:
    """A TOML document written for ccproxy-api or ccproxy-multi (it has their sections)."""
    return any(isinstance(raw.get(k), Mapping) for k in SECTIONS | FOREIGN_SECTIONS - {"rotation"}) or (
        isinstance(raw.get("rotation"), Mapping) and "accounts_path" in raw["rotation"]
    )


def _set(out: JSON, path: tuple[str, ...], value: Any) -> None:
    node = out
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node.setdefault(path[-1], value)  # a native key already in the file wins


def _level(value: Any) -> Any:
    """Python logging's level names as ccproxy's (`INFO` -> `info`; `CRITICAL` is `error` here)."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    return {"critical": "error", "fatal": "error", "warn": "warning"}.get(text, text)


def from_sections(raw: Mapping[str, Any], source: str) -> tuple[JSON, list[str]]:
    """`raw` with the seeds' sections mapped to native keys; warnings name what has no meaning."""
    out: JSON = {k: v for k, v in raw.items() if k not in SECTIONS | FOREIGN_SECTIONS and k != "enable_plugins"}
    warnings: list[str] = []

    def drop(where: str, why: str = "") -> None:
        warnings.append(f"{source}: {where}: ignored ({why or 'no such setting in ccproxy'})")

    server = raw.get("server")
    if isinstance(server, Mapping):
        for key, value in server.items():
            if key in _SERVER:
                _set(out, _SERVER[key], _level(value) if key == "log_level" else value)
            else:
                drop(f"server.{key}", _WHY.get(key, ""))
    security = raw.get("security")
    if isinstance(security, Mapping):
        enabled = security.get("enable_auth", True)
        for key, value in security.items():
            if key == "auth_token":
                if enabled is False or str(enabled).lower() in _FALSE:
                    drop("security.auth_token", "security.enable_auth is false")
                elif value:
                    _set(out, ("apikey",), value)
            elif key != "enable_auth":
                drop(f"security.{key}")
    logging_ = raw.get("logging")
    if isinstance(logging_, Mapping):
        for key, value in logging_.items():
            if key == "level":
                _set(out, ("log", "level"), _level(value))
            elif key == "format" and str(value).lower() in ("json", "text"):
                _set(out, ("log", "format"), str(value).lower())
            elif key == "file":
                _set(out, ("log", "file"), value)
            else:
                drop(f"logging.{key}")
    rotation = raw.get("rotation")
    if isinstance(rotation, Mapping):
        mapped = {k: v for k, v in rotation.items() if k in _ROTATION or k == "default_cooldown"}
        out["rotation"] = mapped
        for key in sorted(rotation.keys() - mapped.keys()):
            drop(f"rotation.{key}")
    for key in sorted(raw.keys() & (FOREIGN_SECTIONS | {"enable_plugins"})):
        drop(key, _WHY.get(key, "a ccproxy-api feature ccproxy does not have"))
    return out, warnings


def env_sections(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """`SECTION__KEY` variables as {"section": {"key": value}}, for the sections ccproxy knows.

    Only the seeds' sections and ccproxy's own nested ones are read (`LOG__LEVEL`,
    `LIMITS__REQUEST_TIMEOUT` too): a double underscore alone is too common in other programs'
    variables to claim every one.
    """
    out: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        m = _ENV.match(name)
        if not m:
            continue
        section = m.group(1).lower()
        if section in SECTIONS | _NATIVE_SECTIONS | FOREIGN_SECTIONS:
            out.setdefault(section, {})[m.group(2).lower()] = value
    return out


def env_name(section: str, key: str) -> str:
    return f"{section.upper()}__{key.upper()}"


def go_log_flag(value: str | None) -> bool | None:
    """`CCPROXY_LOG` / `LOG` as the Go proxy meant them: True/False for a boolean, None otherwise."""
    if value is None:
        return None
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None
