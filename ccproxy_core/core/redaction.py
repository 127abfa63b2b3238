"""Secrets as they may be shown: the one place that decides how much of a secret is visible.

- `redact` is the `repr` of every field that holds a secret (credentials, OAuth token answers);
- `mask_setting` shows a key from the configuration (the providers API, `ccproxy config show`)
  with enough of both ends to tell keys apart;
- `scrub` cleans free text from upstream (error messages, refresh failures) before it is stored
  in the pool or shown by `/status`, since providers sometimes echo the token they refused.
"""

from __future__ import annotations

import re

_SECRETISH = re.compile(r"(?:sk-|sess-|eyJ)[A-Za-z0-9_\-.*~+/=]{8,}")


def redact(secret: object) -> str:
    """A secret as it may be shown: at most a 4-character prefix (`sk-a…`)."""
    if not isinstance(secret, str) or not secret:
        return repr(secret) if secret is None else "…"
    return secret[:4] + "…" if len(secret) >= 12 else "…"


def mask_setting(value: str) -> str:
    """A configured key as it may be shown: `sk-a…wxyz`; an env reference (`$VAR`) is no secret."""
    if not value or value.startswith("$"):
        return value
    return f"{value[:4]}…{value[-4:]}" if len(value) > 12 else "…"


def scrub(text: str, limit: int = 300) -> str:
    """Upstream error text made safe to store and show: token-like words redacted, length capped."""
    return _SECRETISH.sub(lambda m: redact(m.group(0)), text)[:limit]
