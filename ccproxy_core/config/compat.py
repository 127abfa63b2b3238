"""Read the config files of other proxies as they are, and the environment's part in config.

People arrive with a Go ccproxy `config.json` (orchestre-dev/ccproxy, often with `//`
comments) or an npm claude-code-proxy `settings.json` (aistackhq). `detect_and_normalize`
turns either into the native shape that `config.py` validates, and returns warnings for the
foreign keys it dropped rather than refusing the file: those keys configured features we do
not have, and the user should hear so once, not be locked out.

The loader's order, all pure functions of their inputs:

    text --strip_json_comments--> json.loads --detect_and_normalize--> (dict, warnings)
         --expand_env(·, env)--> dict --env_api_keys(providers, env)--> providers

A file without any foreign marker passes through untouched, so `config.py` can refuse its
unknown keys with a precise path; a minimal Go config (providers and routes only) is already
valid native config and takes that path too.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ccproxy_core.core.wire import JSON
from ccproxy_core.providers.presets import PRESETS, preset_for_provider

NATIVE_TOP = frozenset(
    {"host", "port", "apikey", "log", "providers", "routes", "router", "limits", "breaker", "rotation", "oauth"}
)
NATIVE_PROVIDER = frozenset(
    {
        "name",
        "kind",
        "preset",
        "api_base_url",
        "api_key",
        "api_keys",
        "models",
        "enabled",
        "auth",
        "accounts_path",
        "response_style",
        "max_output_tokens",
        "headers",
        "requests_per_minute",
        "burst",
    }
)
_GO_TOP = frozenset({"performance", "log_file", "proxy_url", "shutdown_timeout", "security"})
_GO_PROVIDER = frozenset({"transformers", "created_at", "updated_at", "message_format"})
_NPM_TOP = frozenset({"server", "logging"})

# Why a foreign key is dropped, where there is more to say than "not supported".
_WHY = {
    "transformers": "provider quirks come from presets (`preset`), not transformers",
    "parameters": "route parameters are not supported; the client's own values are sent",
    "conditions": "route conditions were never applied by Go ccproxy either",
    "proxy_url": "set HTTPS_PROXY in the environment instead",
    "security": "only `apikey` is supported for client authentication",
    "metrics_enabled": "metrics are always on",
}


def _drop(warnings: list[str], source: str, path: str, key: str) -> None:
    warnings.append(f"{source}: {path}: dropped ({_WHY.get(key, 'not supported by ccproxy')})")


def _block(raw: Mapping[str, Any], key: str, kind: type, source: str, warnings: list[str]) -> Any:
    """`raw[key]` when it has the expected JSON type; otherwise warn and use an empty one."""
    value = raw.get(key)
    if value is None or isinstance(value, kind):
        return value if value is not None else kind()
    warnings.append(f"{source}: {key}: dropped (expected {'an object' if kind is dict else 'a list'})")
    return kind()


def _detect(raw: Mapping[str, Any]) -> str:
    providers = raw.get("providers")
    if isinstance(providers, Mapping) or isinstance(raw.get("models"), Mapping) or _NPM_TOP & raw.keys():
        return "npm"
    if _GO_TOP & raw.keys() or isinstance(raw.get("log"), bool):
        return "go"
    listed = [p for p in providers if isinstance(p, Mapping)] if isinstance(providers, list) else []
    if any(_GO_PROVIDER & p.keys() for p in listed):
        return "go"
    routes = raw.get("routes")
    if isinstance(routes, Mapping) and any(
        isinstance(r, Mapping) and r.keys() - {"provider", "model"} for r in routes.values()
    ):
        return "go"
    return "native"


def detect_and_normalize(raw: Mapping[str, Any], source: str) -> tuple[JSON, list[str]]:
    """A parsed config file in the native shape, and warnings naming what was dropped.

    Never raises for a bad value: values are carried over as they are and `config.py`
    validates them with their native key path.
    """
    from ccproxy_core.config import ccr  # ccr imports this module's helpers: imported here, not at the top

    if ccr.is_ccr(raw):
        return ccr.normalize(raw, source)
    shape = _detect(raw)
    if shape == "native":
        return copy.deepcopy(dict(raw)), []
    warnings: list[str] = []
    out = _from_go(raw, source, warnings) if shape == "go" else _from_npm(raw, source, warnings)
    return out, warnings


def _base_url(base: str, provider: Mapping[str, Any], kind: str) -> str:
    """Go ccproxy appended a per-vendor path to a bare host; we append only the endpoint."""
    # The table's own entry: the resolved preset carries the configured base as its default.
    preset = PRESETS[preset_for_provider({**provider, "api_base_url": base}).name]
    if not base:
        return preset.default_base_url
    parts = urlsplit(base)
    if parts.path.strip("/"):
        return base
    if preset.default_base_url and urlsplit(preset.default_base_url).netloc == parts.netloc.lower():
        return preset.default_base_url  # https://generativelanguage.googleapis.com -> .../v1beta/openai
    return base.rstrip("/") + "/v1" if kind == "openai" else base


def _provider(fields: Mapping[str, Any], kind: str | None, path: str, source: str, warnings: list[str]) -> JSON:
    out = {k: v for k, v in fields.items() if k in NATIVE_PROVIDER}
    for key in sorted(fields.keys() - NATIVE_PROVIDER - {"created_at", "updated_at", "message_format"}):
        _drop(warnings, source, f"{path}.{key}", key)
    out["kind"] = out.get("kind") or kind or preset_for_provider(out).kind
    out.setdefault("enabled", True)
    out["api_base_url"] = _base_url(str(out.get("api_base_url") or ""), out, out["kind"])
    return out


def _routes(routes: Any, source: str, warnings: list[str]) -> JSON:
    out: JSON = {}
    for key, target in (routes or {}).items():
        if not isinstance(target, Mapping):
            _drop(warnings, source, f"routes.{key}", key)
            continue
        out[key] = {"provider": target.get("provider", ""), "model": target.get("model", "")}
        for extra in sorted(target.keys() - {"provider", "model"}):
            _drop(warnings, source, f"routes.{key}.{extra}", extra)
    return out


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(value: Any, path: str) -> float | int:
    """A Go duration ("30s", "1m30s", or a number) in seconds."""
    text = value.strip() if isinstance(value, str) else ""
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        value = float(text)
    if isinstance(value, int | float) and not isinstance(value, bool):
        # encoding/json writes time.Duration as nanoseconds; small numbers are human seconds.
        seconds = value / 1e9 if value >= 1_000_000 else float(value)
    elif text and re.fullmatch(f"(?:{_DURATION.pattern})+", text):
        seconds = sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(text))
    else:
        raise ValueError(f'{path}: expected a duration such as "30s", got {value!r}')
    return int(seconds) if float(seconds).is_integer() else seconds


def _seconds_or_as_is(value: Any) -> Any:
    # A value that is no Go duration is passed on, so config.py refuses it with its native path.
    try:
        return go_duration(value, "")
    except ValueError:
        return value


def _performance(perf: Mapping[str, Any], source: str, warnings: list[str]) -> tuple[JSON, JSON]:
    """Go's `performance` block as native `limits` and `breaker` entries (values checked later)."""
    limits: JSON = {}
    breaker: JSON = {}
    for key, value in perf.items():
        if key == "request_timeout":
            limits["request_timeout"] = _seconds_or_as_is(value)
        elif key == "max_request_body_size":
            limits["max_request_body_size"] = value
        elif key == "rate_limit_enabled":
            if value:  # Go's defaults when enabled: 1000 a minute, bursts of 100
                limits["requests_per_minute"] = perf.get("rate_limit_requests_per_min") or 1000
                limits["burst"] = perf.get("rate_limit_burst") or perf.get("burst_size") or 100
        elif key in ("rate_limit_requests_per_min", "rate_limit_burst", "burst_size"):
            continue
        elif key == "circuit_breaker_enabled":
            breaker["enabled"] = value
        elif key == "circuit_breaker_threshold":
            breaker["consecutive_failures"] = value
        elif key == "circuit_breaker_timeout":
            breaker["open_seconds"] = _seconds_or_as_is(value)
        else:
            _drop(warnings, source, f"performance.{key}", key)
    return limits, breaker


def _from_go(raw: Mapping[str, Any], source: str, warnings: list[str]) -> JSON:
    out: JSON = {k: copy.deepcopy(v) for k, v in raw.items() if k in NATIVE_TOP - {"providers", "routes", "log"}}
    out["providers"] = [
        _provider(
            p, "anthropic" if p.get("message_format") == "anthropic" else None, f"providers[{i}]", source, warnings
        )
        for i, p in enumerate(_block(raw, "providers", list, source, warnings))
        if isinstance(p, Mapping)
    ]
    if "routes" in raw:
        out["routes"] = _routes(_block(raw, "routes", dict, source, warnings), source, warnings)
    log = raw.get("log")
    out_log: JSON = dict(log) if isinstance(log, Mapping) else {}
    if raw.get("log_file"):
        out_log["file"] = raw["log_file"]
    elif log is True:
        warnings.append(f"{source}: log: true: Go ccproxy's file logging; set log.file to keep a log file")
    if out_log:
        out["log"] = out_log
    limits, breaker = _performance(_block(raw, "performance", dict, source, warnings), source, warnings)
    if limits:
        out["limits"] = {**limits, **(out.get("limits") or {})}
    if breaker:
        out["breaker"] = {**breaker, **(out.get("breaker") or {})}
    for key in sorted(raw.keys() - NATIVE_TOP - {"performance", "log_file"}):
        _drop(warnings, source, key, key)
    return out


_NPM_PROVIDER = {
    "baseURL": "api_base_url",
    "apiKey": "api_key",
    "models": "models",
    "apiKeys": "api_keys",
    "headers": "headers",
    "enabled": "enabled",
}


def _from_npm(raw: Mapping[str, Any], source: str, warnings: list[str]) -> JSON:
    out: JSON = {k: copy.deepcopy(v) for k, v in raw.items() if k in NATIVE_TOP - {"providers", "log"}}
    server = _block(raw, "server", dict, source, warnings)
    for key in ("host", "port"):
        if key in server and key not in out:
            out[key] = server[key]
    if raw.get("apiKey") and "apikey" not in out:
        out["apikey"] = raw["apiKey"]
    providers = []
    for name, p in _block(raw, "providers", dict, source, warnings).items():
        if not isinstance(p, Mapping):
            _drop(warnings, source, f"providers.{name}", name)
            continue
        fields: JSON = {"name": name, **{_NPM_PROVIDER[k]: v for k, v in p.items() if k in _NPM_PROVIDER}}
        style = p.get("responseStyle")
        if style in ("anthropic", "openai"):
            fields["response_style"] = style
        elif style is not None:
            warnings.append(
                f"{source}: providers.{name}.responseStyle: {style!r} is neither "
                '"anthropic" nor "openai"; using the provider\'s preset'
            )
        for key in sorted(p.keys() - _NPM_PROVIDER.keys() - {"responseStyle"}):
            _drop(warnings, source, f"providers.{name}.{key}", key)
        providers.append(_provider(fields, fields.get("response_style"), f"providers.{name}", source, warnings))
    out["providers"] = providers
    models = _block(raw, "models", dict, source, warnings)
    router: JSON = dict(out.get("router") or {})
    for key, native in (
        ("bigModel", "big_model"),
        ("smallModel", "small_model"),
        ("preferredProvider", "preferred_provider"),
    ):
        if models.get(key):
            router.setdefault(native, models[key])
    for key in sorted(models.keys() - {"bigModel", "smallModel", "preferredProvider"}):
        _drop(warnings, source, f"models.{key}", key)
    if router:
        out["router"] = router
    logging = {
        **_block(raw, "logging", dict, source, warnings),
        **(raw["log"] if isinstance(raw.get("log"), Mapping) else {}),
    }
    if logging:
        out["log"] = {k: v for k, v in logging.items() if k in ("level", "file", "format")}
        for key in sorted(logging.keys() - {"level", "file", "format"}):
            _drop(warnings, source, f"logging.{key}", key)
    for key in sorted(server.keys() - {"host", "port"}):
        _drop(warnings, source, f"server.{key}", key)
    for key in sorted(raw.keys() - NATIVE_TOP - {"server", "models", "logging", "apiKey"}):
        _drop(warnings, source, key, key)
    return out


def strip_json_comments(text: str) -> str:
    """JSON text without `//` and `/* */` comments; strings are left alone, lines keep their numbers."""
    out: list[str] = []
    i, start, n = 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
        elif c == "/" and text.startswith("//", i):
            out.append(text[start:i])
            end = text.find("\n", i)
            i = start = n if end < 0 else end
        elif c == "/" and text.startswith("/*", i):
            out.append(text[start:i])
            end = text.find("*/", i + 2)
            if end < 0:
                raise ValueError(f"unterminated /* comment at character {i}")
            out.append("\n" * text.count("\n", i, end))
            i = start = end + 2
        else:
            i += 1
    out.append(text[start:])
    return "".join(out)


_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|(?P<dollar>\$))"
)


def _expand_str(text: str, env: Mapping[str, str], path: str) -> str:
    def one(match: re.Match[str]) -> str:
        if match["dollar"]:
            return "$"  # `$$` writes a literal dollar sign
        name = match["braced"] or match["bare"]
        if name in env:
            return env[name]
        if match["default"] is not None:
            return match["default"]
        raise ValueError(f"{path or '<root>'}: environment variable {name} is not set")

    return _VAR.sub(one, text)


def expand_env(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """`$VAR`, `${VAR}` and `${VAR:-default}` expanded in every string value, recursively."""
    if isinstance(value, str):
        return _expand_str(value, env, path)
    if isinstance(value, Mapping):
        return {k: expand_env(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def env_api_keys(providers: list[JSON], env: Mapping[str, str]) -> list[JSON]:
    """Providers with API keys from the environment applied (new dicts).

    `CCPROXY_PROVIDERS_<i>_API_KEY` (0-based, as Go ccproxy's viper binding) beats the file;
    the preset's own variable (`DEEPSEEK_API_KEY`, `GEMINI_API_KEY` or `GOOGLE_API_KEY`, ...)
    only fills a provider that has no key at all. OAuth providers take no key.
    """
    out: list[JSON] = []
    for i, provider in enumerate(providers):
        provider = dict(provider)
        override = env.get(f"CCPROXY_PROVIDERS_{i}_API_KEY")
        if override:
            provider["api_key"] = override
            if provider.get("api_keys"):
                provider["api_keys"] = []
        elif not provider.get("api_key") and not provider.get("api_keys") and provider.get("auth") != "oauth":
            try:
                env_keys = preset_for_provider(provider).env_keys
            except ValueError:  # an unknown preset: the model's check names it
                env_keys = ()
            found = next((env[k] for k in env_keys if env.get(k)), None)
            if found:
                provider["api_key"] = found
        out.append(provider)
    return out
