"""claude-code-router's `config.json`, read as it is.

People moving from claude-code-router (musistudio) have `~/.claude-code-router/config.json`:
JSON5 (comments, trailing commas), upper-case top-level keys, a `Providers` list whose
`api_base_url` is the whole chat-completions endpoint, and a `Router` object whose values are
`"provider,model"` strings. `normalize` turns it into the native shape `model.py` validates;
`load.py` finds the file below ccproxy's own user config, and `compat.detect_and_normalize`
hands any file with those keys here, so `--config ~/.claude-code-router/config.json` works too.

What carries over: `Providers` (name, api_base_url, api_key, models; the `Anthropic`
transformer makes a Messages provider, `maxtoken` becomes `max_output_tokens`, a vendor
transformer such as `deepseek` picks that preset), `Router` (default, background, think,
longContext, longContextThreshold, webSearch), `APIKEY`, `HOST` (kept on 127.0.0.1 without an
`APIKEY`, as claude-code-router does), `PORT`, `LOG_LEVEL`, `API_TIMEOUT_MS`. Everything else
(custom transformers and routers, `PROXY_URL`, `LOG`, the UI's keys) has no meaning here and is
named in ONE warning, so a user hears about it once instead of being locked out.

All pure: text and dicts in, dicts and warning strings out.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ccproxy_core.config.compat import strip_json_comments
from ccproxy_core.core.wire import JSON
from ccproxy_core.providers.presets import PRESETS

RELATIVE_PATH = Path(".claude-code-router") / "config.json"
MARKERS = frozenset({"Providers", "Router"})
SCENARIOS = ("default", "background", "think", "longContext", "webSearch")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# claude-code-router's pino levels, as ours
_LEVELS = {
    "fatal": "error",
    "error": "error",
    "warn": "warning",
    "warning": "warning",
    "info": "info",
    "debug": "debug",
    "trace": "debug",
}
# Endpoint suffixes that claude-code-router wants spelled out and ccproxy appends itself.
_ENDPOINTS = ("/chat/completions", "/v1/messages", "/messages")
# What to say about a dropped key, where there is more to say than "no meaning here". The items
# of the one warning are joined by "; " (and `ccproxy import` splits them there): none may hold one.
_WHY = {
    "PROXY_URL": "set HTTPS_PROXY in the environment instead",
    "LOG": "ccproxy always logs, and `ccproxy logs` shows the background server's log",
    "transformers": "custom transformer plugins cannot run here",
    "CUSTOM_ROUTER_PATH": "custom JavaScript routers cannot run here",
}


def user_config_path(home: Path) -> Path:
    """Where claude-code-router keeps its config for the user whose home is `home`."""
    return home / RELATIVE_PATH


def is_ccr(raw: Mapping[str, Any]) -> bool:
    """A parsed file is claude-code-router's when it has its capitalised `Providers` or `Router`."""
    return bool(MARKERS & raw.keys())


def strip_trailing_commas(text: str) -> str:
    """JSON text with the commas before `]` or `}` blanked (JSON5 allows them; strings are left alone).

    Each removed comma becomes a space, so line and column numbers in a later error still point
    at the user's file.
    """
    out = list(text)
    i, n = 0, len(text)
    pending: int | None = None  # index of the last comma seen outside a string
    while i < n:
        c = text[i]
        if c == '"':
            pending = None
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == ",":
            pending = i
        elif c in "]}":
            if pending is not None:
                out[pending] = " "
            pending = None
        elif not c.isspace():
            pending = None
        i += 1
    return "".join(out)


def json5_text(text: str) -> str:
    """The JSON5 that claude-code-router reads (comments, trailing commas) as plain JSON text."""
    return strip_trailing_commas(strip_json_comments(text))


def _split_target(value: str) -> JSON:
    provider, _, model = value.partition(",")
    return {"provider": provider.strip(), "model": model.strip()}


def _base_url(url: str, preset: str) -> str:
    base = url.strip().rstrip("/")
    for endpoint in _ENDPOINTS:
        if base.endswith(endpoint):
            return base[: -len(endpoint)] or base
    host = urlsplit(base).netloc.lower()
    native = next(
        (
            p.default_base_url
            for p in PRESETS.values()
            if p.default_base_url and (p.name == preset or urlsplit(p.default_base_url).netloc == host)
        ),
        "",
    )
    if native and urlsplit(native).netloc == host and urlsplit(native).path not in urlsplit(base).path:
        # Gemini's own `/v1beta/models/` endpoint (the `gemini` transformer): its OpenAI twin.
        return native
    return base


def _transformers(spec: Any, path: str, dropped: list[str]) -> tuple[str, str, int | None]:
    """(kind, preset, max_output_tokens) from a provider's `transformer` object."""
    kind, preset, cap = "openai", "", None
    if spec is None:
        return kind, preset, cap
    if not isinstance(spec, Mapping):
        dropped.append(f"{path} (expected an object)")
        return kind, preset, cap
    uses = spec.get("use")
    for entry in uses if isinstance(uses, list) else []:
        name, options = (
            (entry[0], entry[1] if len(entry) > 1 else {}) if isinstance(entry, list) and entry else (entry, {})
        )
        lowered = str(name).lower()
        if lowered == "anthropic":
            kind = "anthropic"
        elif lowered == "maxtoken" and isinstance(options, Mapping) and isinstance(options.get("max_tokens"), int):
            cap = options["max_tokens"]
        elif lowered in PRESETS and PRESETS[lowered].kind == "openai":
            preset = lowered
        else:
            dropped.append(f"{path}.use: {name}")
    for key in sorted(spec.keys() - {"use"}):
        dropped.append(f"{path}.{key} (per-model transformers)")
    return kind, preset, cap


def _provider(p: Mapping[str, Any], i: int, dropped: list[str]) -> JSON:
    name = p.get("name")
    path = f"Providers.{name}" if isinstance(name, str) and name else f"Providers[{i}]"
    kind, preset, cap = _transformers(p.get("transformer"), f"{path}.transformer", dropped)
    out: JSON = {"name": p.get("name", ""), "kind": kind, "enabled": True}
    if preset:
        out["preset"] = preset
    if "api_base_url" in p:
        out["api_base_url"] = _base_url(str(p["api_base_url"]), preset)
    if p.get("api_key"):
        out["api_key"] = p["api_key"]
    if "models" in p:
        out["models"] = copy.deepcopy(p["models"])
    if cap is not None:
        out["max_output_tokens"] = cap
    for key in sorted(p.keys() - {"name", "api_base_url", "api_key", "models", "transformer"}):
        dropped.append(f"{path}.{key}")
    return out


def _server(raw: Mapping[str, Any], out: JSON, dropped: list[str]) -> None:
    if raw.get("APIKEY"):
        out["apikey"] = raw["APIKEY"]
    host = raw.get("HOST")
    if host:
        if raw.get("APIKEY") or str(host) in _LOOPBACK:
            out["host"] = host
        else:
            out["host"] = "127.0.0.1"
            dropped.append(f"HOST {host!r} without APIKEY (claude-code-router binds 127.0.0.1 then; so does ccproxy)")
    if raw.get("PORT") not in (None, ""):
        out["port"] = raw["PORT"]
    level = raw.get("LOG_LEVEL")
    if isinstance(level, str) and level.lower() in _LEVELS:
        out["log"] = {"level": _LEVELS[level.lower()]}
    elif level is not None:
        dropped.append(f"LOG_LEVEL {level!r} (expected one of {', '.join(_LEVELS)})")
    timeout = raw.get("API_TIMEOUT_MS")
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
        seconds = timeout / 1000
        out["limits"] = {"request_timeout": int(seconds) if float(seconds).is_integer() else seconds}
    elif timeout is not None:
        dropped.append(f"API_TIMEOUT_MS {timeout!r} (expected milliseconds)")


def _router(router: Any, out: JSON, dropped: list[str]) -> None:
    if router is None:
        return
    if not isinstance(router, Mapping):
        dropped.append("Router (expected an object)")
        return
    routes: JSON = {}
    for key, value in router.items():
        if key in SCENARIOS and isinstance(value, str):
            if value.strip():
                routes[key] = _split_target(value)
        elif key == "longContextThreshold" and isinstance(value, int) and not isinstance(value, bool):
            out["router"] = {"long_context_threshold": value}
        else:
            dropped.append(f"Router.{key}")
    if routes:
        out["routes"] = routes


def normalize(raw: Mapping[str, Any], source: str) -> tuple[JSON, list[str]]:
    """A claude-code-router config in the native shape, and at most one warning naming what was ignored.

    Never raises for a bad value: values are carried over and `model.py` reports them with
    their native key path.
    """
    dropped: list[str] = []
    out: JSON = {}
    _server(raw, out, dropped)
    providers = raw.get("Providers")
    if isinstance(providers, list):
        out["providers"] = [_provider(p, i, dropped) for i, p in enumerate(providers) if isinstance(p, Mapping)]
    elif providers is not None:
        dropped.append("Providers (expected a list)")
    _router(raw.get("Router"), out, dropped)
    handled = {"Providers", "Router", "APIKEY", "HOST", "PORT", "LOG_LEVEL", "API_TIMEOUT_MS"}
    for key in sorted(raw.keys() - handled):
        dropped.append(f"{key} ({_WHY[key]})" if key in _WHY else key)
    if not dropped:
        return out, []
    return out, [f"{source}: claude-code-router settings with no meaning in ccproxy, ignored: {'; '.join(dropped)}"]
