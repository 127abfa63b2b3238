"""`ccproxy import FILE [-o OUT]`: another proxy's config as a commented ccproxy config.

ccproxy already reads Go ccproxy's `config.json`, npm claude-code-proxy's `settings.json`,
claude-code-router's `config.json` and ccproxy-api's TOML as they are; `import` writes the same
mapping down once, as a native file a person can read and edit, with a comment for each part and
the list of settings that had no meaning here. `$VAR` references are carried over unexpanded, so
no secret from the environment lands in the file.

    native_of(path, text)      -> (native dict, warnings, format name)   the loader's own mapping
    render(native, ...)        -> text                                   pure: JSON with // comments

Loading OUT gives the same providers and routes as loading FILE: the tests load both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ccproxy_core.core.wire import JSON

# What each top-level key is, said once above it in the output.
_ABOUT = {
    "host": "where the proxy listens; 0.0.0.0 reaches other machines (then set apikey)",
    "port": "the port clients use: ANTHROPIC_BASE_URL=http://HOST:PORT",
    "apikey": "clients must send this key (x-api-key or Authorization: Bearer)",
    "log": "log level, file and format",
    "providers": "where requests go; `kind` is the protocol (anthropic: Messages, openai: Chat Completions)",
    "routes": "which provider and model serve each scenario (default, background, think, longContext, "
    "webSearch) or a model name",
    "router": "routing thresholds and fallback chains",
    "limits": "timeouts (seconds) and request limits",
    "breaker": "the circuit breaker per provider",
    "rotation": "the Claude subscription accounts pool",
    "oauth": "Claude OAuth endpoints",
}
_CCR_IGNORED = "claude-code-router settings with no meaning in ccproxy, ignored: "
_ORDER = ("host", "port", "apikey", "log", "providers", "routes", "router", "limits", "breaker", "rotation", "oauth")


def format_of(raw: Mapping[str, Any], path: Path, *, seed: bool) -> str:
    """A name for the format a file is written in, for the header comment."""
    from ccproxy_core.config import ccr

    if ccr.is_ccr(raw):
        return "claude-code-router config.json"
    if seed:
        return "ccproxy-api / ccproxy-multi TOML"
    providers = raw.get("providers")
    if isinstance(providers, Mapping) or "server" in raw or "models" in raw:
        return "npm claude-code-proxy settings.json"
    return "Go ccproxy config.json" if path.suffix != ".toml" else "ccproxy TOML"


def native_of(path: Path, text: str) -> tuple[JSON, list[str], str]:
    """The file as ccproxy's loader maps it (without expanding `$VAR`), its warnings, and its format."""
    from ccproxy_core.config import compat, seeds
    from ccproxy_core.config.load import parse_text

    raw = parse_text(path, text)
    warnings: list[str] = []
    seed = path.suffix == ".toml" and seeds.is_python_seed(raw)
    name = format_of(raw, path, seed=seed)
    if seed:
        raw, warnings = seeds.from_sections(raw, str(path))
    native, more = compat.detect_and_normalize(raw, str(path))
    return native, warnings + more, name


def _comment(text: str, indent: str = "") -> list[str]:
    return [f"{indent}// {line}".rstrip() for line in text.splitlines()]


def _value(value: Any, indent: str) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n" + indent)


def _provider_note(p: Mapping[str, Any]) -> str:
    kind = p.get("kind") or "from its preset"
    where = p.get("api_base_url") or "the preset's URL"
    note = f"{p.get('name', '?')}: {kind}, {where}"
    return note + ("" if p.get("enabled", True) else " (disabled)")


def render(native: Mapping[str, Any], *, source: str, format_name: str, warnings: Sequence[str], when: str) -> str:
    """A native config as JSON with `//` comments (ccproxy reads those), key order fixed."""
    lines = [
        f"// ccproxy config, converted by `ccproxy import` from {source}",
        f"// ({format_name}) on {when}. Use it with `ccproxy serve --config THIS_FILE`, or move it",
        "// to the user config (`ccproxy config show` prints where that is).",
        "// `$VAR` references are kept as written: the secrets stay in your environment.",
    ]
    if warnings:
        lines += ["//", "// Not carried over (no meaning in ccproxy):"]
        for warning in warnings:
            head, marker, rest = warning.removeprefix(source + ": ").partition(_CCR_IGNORED)
            for item in rest.split("; ") if marker else [head]:
                lines += _comment(f"  - {item}")
    lines.append("{")
    keys = [k for k in _ORDER if k in native] + sorted(k for k in native if k not in _ORDER)
    for i, key in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        if key in _ABOUT:
            lines += _comment(_ABOUT[key], "  ")
        value = native[key]
        if key == "providers" and isinstance(value, list) and value:
            lines.append('  "providers": [')
            for j, provider in enumerate(value):
                if isinstance(provider, Mapping):
                    lines += _comment(_provider_note(provider), "    ")
                sep = "," if j < len(value) - 1 else ""
                lines.append(f"    {_value(provider, '    ')}{sep}")
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {_value(value, '  ')}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def run(file: str, out: str | None, *, force: bool, when: str, say: Callable[[str], None] = print) -> int:
    """`ccproxy import`: convert FILE; print it, or write OUT (refusing to overwrite without --force)."""
    from ccproxy_core.config.load import read_text
    from ccproxy_core.files import atomic_write

    path = Path(file).expanduser()
    native, warnings, name = native_of(path, read_text(path))
    text = render(native, source=str(path), format_name=name, warnings=warnings, when=when)
    if out is None:
        say(text.rstrip("\n"))
        return 0
    target = Path(out).expanduser()
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists; pass --force to replace it")
    atomic_write(target, text.encode(), mode=0o600)
    say(f"wrote {target} ({name} -> ccproxy; {len(warnings)} setting(s) not carried over, listed at its top)")
    return 0
