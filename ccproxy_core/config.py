"""The configuration: frozen attrs classes, built by a cattrs converter from layered sources.

Precedence, highest first (DESIGN.md): command-line flags > `CCPROXY_*` environment >
`--config FILE` (or `CCPROXY_CONFIG`) > project `./.ccproxy/config.json` > user config
(platformdirs, then the legacy `~/.ccproxy/config.json`) > managed `/etc/ccproxy/config.json` >
built-in defaults. Each layer is a plain dict; dicts merge key by key and lists replace.

Every file is validated on its own (merged over the defaults) before the layers are combined,
so an error names the file it is in: ``/home/me/.ccproxy/config.json: log.levle: unknown key``.
Files may be `.json` (with `//` comments, as the Go ccproxy allows) or `.toml`, and may be
written in the Go ccproxy or npm claude-code-proxy formats (`config_compat` turns those into
this shape).
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NewType

import cattrs
import orjson
import platformdirs
from attrs import Factory, frozen
from cattrs.gen import make_dict_structure_fn, override
from cattrs.v import format_exception

from . import __version__, config_compat
from .breaker import BreakerSettings

log = logging.getLogger("ccproxy.config")

Seconds = NewType("Seconds", float)

ANTHROPIC_API_URL = "https://api.anthropic.com"
DEFAULT_PORT = 3456
MANAGED_CONFIG = Path("/etc/ccproxy/config.json")


class ConfigError(Exception):
    """A configuration problem, worded as "source: key.path: problem" lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@frozen
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    file: str = ""
    format: Literal["text", "json"] = "text"


@frozen
class ProviderConfig:
    name: str
    kind: Literal["anthropic", "openai", ""] = ""  # "" = from the preset
    preset: str = ""
    api_base_url: str = ""
    api_key: str = ""
    api_keys: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    enabled: bool = True
    auth: Literal["api_key", "oauth"] = "api_key"
    accounts_path: str = ""
    response_style: Literal["", "anthropic", "openai"] = ""
    max_output_tokens: int | None = None
    headers: dict[str, str] = Factory(dict)
    requests_per_minute: int = 0
    burst: int = 0

    @property
    def keys(self) -> tuple[str, ...]:
        """Every API key of this provider, in rotation order."""
        return ((self.api_key,) if self.api_key else ()) + tuple(k for k in self.api_keys if k)


@frozen
class RouteConfig:
    provider: str
    model: str = ""


@frozen
class RouterConfig:
    long_context_threshold: int = 60000
    fallback: dict[str, tuple[str, ...]] = Factory(dict)
    big_model: str = ""
    small_model: str = ""
    preferred_provider: str = ""


@frozen
class LimitsConfig:
    request_timeout: Seconds = Seconds(600.0)
    connect_timeout: Seconds = Seconds(10.0)
    max_request_body_size: int = 32 * 1024 * 1024
    stream_idle_timeout: Seconds = Seconds(300.0)
    # A translated Anthropic stream gets a `ping` after this much silence (slow reasoning models), as
    # Anthropic's own streams carry pings; Claude Code flags a stall after about 15 s. 0 turns it off.
    keepalive_interval: Seconds = Seconds(10.0)
    requests_per_minute: int = 0  # per client key; 0 = unlimited
    burst: int = 0


@frozen
class RotationConfig:
    enabled: bool = True
    hot_reload: bool = True
    refresh_buffer_seconds: int = 600
    default_cooldown: Seconds = Seconds(60.0)


@frozen
class OAuthSettings:
    """Claude OAuth endpoints and client: all configurable, since they have moved before."""

    token_url: str = "https://platform.claude.com/v1/oauth/token"
    authorize_url: str = "https://claude.ai/oauth/authorize"
    client_id: str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
    redirect_uri: str = "https://platform.claude.com/oauth/code/callback"
    scopes: str = "user:profile user:inference user:sessions:claude_code"
    # ccproxy says who it is; an operator whose token host insists on another agent sets it.
    user_agent: str = f"ccproxy/{__version__}"
    timeout_seconds: Seconds = Seconds(30.0)
    default_expires_in: Seconds = Seconds(3600.0)  # when a response omits expires_in


@frozen
class Config:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    apikey: str = ""
    log: LogConfig = LogConfig()
    providers: tuple[ProviderConfig, ...] = ()
    routes: dict[str, RouteConfig] = Factory(dict)
    router: RouterConfig = RouterConfig()
    limits: LimitsConfig = LimitsConfig()
    breaker: BreakerSettings = Factory(BreakerSettings)
    rotation: RotationConfig = RotationConfig()
    oauth: OAuthSettings = OAuthSettings()

    def __attrs_post_init__(self) -> None:
        if not self.providers:
            # Zero config: a transparent proxy to the public Anthropic API that forwards the
            # client's own credentials.
            object.__setattr__(self, "providers", (
                ProviderConfig(name="anthropic", kind="anthropic", api_base_url=ANTHROPIC_API_URL),
            ))

    def provider(self, name: str) -> ProviderConfig | None:
        for p in self.providers:
            if p.name == name:
                return p
        return None


# --- building the classes from dicts ----------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def _seconds(value: Any, _: Any) -> Seconds:
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30, \"30s\", \"5m\" or \"250ms\"")
    if isinstance(value, (int, float)):
        return Seconds(float(value))
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"expected a duration such as 30, \"30s\", \"5m\" or \"250ms\", got {value!r}")
    return Seconds(float(m.group(1)) * _DURATION_UNITS[m.group(2)])


def _boolean(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _strict_str(value: Any, _: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return str(value)


def _strict_int(value: Any, _: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"expected a whole number, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a whole number, got {value!r}") from None


converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_structure_hook(Seconds, _seconds)
converter.register_structure_hook(bool, _boolean)
converter.register_structure_hook(str, _strict_str)
converter.register_structure_hook(int, _strict_int)
# BreakerSettings lives with the (pure) breaker and types its times as plain floats; in a config
# file they are durations like every other time ("30s", "1m").
converter.register_structure_hook(BreakerSettings, make_dict_structure_fn(
    BreakerSettings, converter, _cattrs_forbid_extra_keys=True,
    open_seconds=override(struct_hook=_seconds), window_seconds=override(struct_hook=_seconds)))


def _where(cattrs_path: str) -> str:
    path = cattrs_path.removeprefix("$").lstrip(".")
    path = re.sub(r"\['([^']*)'\]", r".\1", path)
    return re.sub(r"\[(\d+)\]", r".\1", path).lstrip(".")


def _format_exception(exc: BaseException, type_: Any) -> str:
    """Our hooks' own words where they have some; cattrs' wording otherwise."""
    if isinstance(exc, ValueError) and str(exc).startswith("expected"):
        return str(exc)  # raised by the hooks above, already worded for the user
    if "not in literal" in str(exc):
        allowed = [a for a in getattr(type_, "__args__", ()) if a]
        return f"expected one of {', '.join(repr(a) for a in allowed)}"
    return format_exception(exc, type_)


def _problems(exc: Exception, source: str) -> list[str]:
    out = []
    for msg in cattrs.transform_error(exc, path="$", format_exception=_format_exception):
        text, _, where = msg.rpartition(" @ ")
        extra = re.match(r"extra fields found \((.*)\)", text)
        key = _where(where)
        if extra:
            for name in extra.group(1).split(", "):
                out.append(f"{source}: {f'{key}.' if key else ''}{name}: unknown key")
        else:
            out.append(f"{source}: {key or '(top level)'}: {text}")
    return out


def structure(data: Mapping[str, Any], source: str = "config", *, check_references: bool = True) -> Config:
    try:
        config = converter.structure(dict(data), Config)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            raise ConfigError(_problems(exc, source)) from None
        raise ConfigError([f"{source}: {exc}"]) from None
    if check_references:
        _check_references(config, source)
    return config


def _check_references(config: Config, source: str) -> None:
    names = [p.name for p in config.providers]
    problems = [f"{source}: providers: provider name {n!r} is used twice"
                for n in sorted({n for n in names if names.count(n) > 1})]
    for key, route in config.routes.items():
        if route.provider not in names:
            problems.append(f"{source}: routes.{key}.provider: unknown provider {route.provider!r} "
                            f"(configured: {', '.join(names)})")
    for scenario, chain in config.router.fallback.items():
        for i, name in enumerate(chain):
            if name not in names:
                problems.append(f"{source}: router.fallback.{scenario}.{i}: unknown provider {name!r}")
    if problems:
        raise ConfigError(problems)


# --- layers -------------------------------------------------------------------------------------

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
            raw = orjson.loads(config_compat.strip_json_comments(text)) if text.strip() else {}
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
        "CCPROXY_HOST": ("host",), "CCPROXY_PORT": ("port",), "CCPROXY_API_KEY": ("apikey",),
        "CCPROXY_LOG": ("log", "level"), "CCPROXY_LOG_FILE": ("log", "file"),
        "CCPROXY_ROTATION_ENABLED": ("rotation", "enabled"), "CCPROXY_HOT_RELOAD": ("rotation", "hot_reload"),
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


def load(*, flags: Mapping[str, Any] | None = None, config_file: str | None = None,
         env: Mapping[str, str] | None = None, cwd: Path | None = None,
         managed: Path = MANAGED_CONFIG, user_paths: list[Path] | None = None) -> LoadedConfig:
    """Read every layer and build the effective configuration."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    layers: list[tuple[str, dict[str, Any]]] = []
    files: list[Path] = []

    candidates: list[Path | None] = [_first_existing(managed)]
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


def unstructure(config: Config) -> dict[str, Any]:
    data: dict[str, Any] = converter.unstructure(config)
    return data
