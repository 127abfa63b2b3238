"""Secrets as they may be shown: the one place that decides how much of a token is visible.

`redact` is the `repr` of every field that holds a secret (credentials, OAuth token answers);
`scrub` cleans free text from upstream (error messages, refresh failures) before it is stored
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


def scrub(text: str, limit: int = 300) -> str:
    """Upstream error text made safe to store and show: token-like words redacted, length capped."""
    return _SECRETISH.sub(lambda m: redact(m.group(0)), text)[:limit]
