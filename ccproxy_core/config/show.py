"""`ccproxy config show`: the effective configuration, where each value came from, secrets masked."""

from __future__ import annotations

from typing import Any

import orjson

from ccproxy_core.config.load import LoadedConfig
from ccproxy_core.config.model import unstructure
from ccproxy_core.core.redaction import Redactor, mask_setting

_SECRET_KEYS = frozenset({"apikey", "api_key", "api_keys", "headers"})  # headers: custom providers' credentials


def _mask(value: Any) -> Any:
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    return mask_setting(value) if isinstance(value, str) else value


def _url_without_password(url: str) -> str:
    """`redis://user:password@host` with the password (whatever its length) as `…`."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.partition(':')[0]}:…@{host}"


def masked(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _masked_item(k, v) for k, v in data.items()}
    if isinstance(data, list):
        return [masked(v) for v in data]
    return data


def _masked_item(key: str, value: Any) -> Any:
    if key in _SECRET_KEYS:
        return _mask(value)
    if key == "redis_url" and isinstance(value, str):
        return _url_without_password(value)  # the host stays readable
    return masked(value)


def _lines(data: Any, sources: dict[str, str], prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.extend(_lines(value, sources, path + "."))
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            # providers: one line per setting, `providers.0.name = ...`, like every other key
            out.extend(_lines({str(i): v for i, v in enumerate(value)}, sources, path + "."))
            continue
        source = sources.get(path) or next((s for k, s in sources.items() if path.startswith(k + ".")), "default")
        out.append(f"{path} = {orjson.dumps(value).decode()}    # {source}")
    return out


def render(loaded: LoadedConfig) -> str:
    data = masked(unstructure(loaded.config))
    files = ", ".join(str(f) for f in loaded.files) or "none (built-in defaults)"
    ignored = [f"# ignored: {w}" for w in loaded.warnings]
    text = "\n".join([f"# config files, lowest precedence first: {files}", *_lines(data, loaded.sources), *ignored])
    return Redactor(*loaded.config.secrets()).scrub(text)  # a key quoted elsewhere too (a URL, a warning)
