"""Secrets as they may be shown: the one place that decides how much of a secret is visible.

- `redact` is the `repr` of every field that holds a secret (credentials, OAuth token answers);
- `mask_setting` shows a key from the configuration (the providers API, `ccproxy config show`)
  with enough of both ends to tell keys apart;
- `scrub` cleans free text from upstream (error messages, refresh failures) before it is stored
  in the pool or shown by `/status`, since providers sometimes echo the token they refused;
- `Redactor` masks every configured secret by its value (any format) in whatever leaves the
  process: client error bodies, relayed provider bodies, `/status`, and, through
  `SecretsFilter` on the log handlers, every log record.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

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


# --- scrubbing by value -----------------------------------------------------------------------

MIN_SECRET = 8  # shorter values are not secrets worth a match (and would mask ordinary words)
_REMEMBERED = 64  # secrets replaced by a rotation, still masked for a while (old access tokens)


class Redactor:
    """Replaces every known secret *value* with its masked form, in text or bytes.

    Matching by value, not by shape, catches any key format a provider echoes ("Incorrect API
    key provided: gsk_..."). The values come from `sources` (callables returning the current
    secrets: the configuration's keys, each pool's OAuth tokens), asked at each use, so tokens
    that rotate are covered as soon as they change; the compiled pattern (escaped values,
    longest first, so a key that contains another is masked whole) is rebuilt only when the
    set changes. Values dropped from the set are kept for the next `_REMEMBERED` changes: an
    access token replaced by a refresh stays valid, and may still be echoed, until it expires.
    """

    def __init__(self, *values: str) -> None:
        self._sources: list[Callable[[], Iterable[str]]] = []
        self._fixed = frozenset(values)
        self._retired: dict[str, None] = {}
        self._state: tuple[frozenset[str], re.Pattern[str] | None, re.Pattern[bytes] | None] = (
            frozenset(),
            None,
            None,
        )

    def track(self, source: Callable[[], Iterable[str]]) -> None:
        """Add a source of secrets, asked again at every scrub."""
        self._sources.append(source)

    def secrets(self) -> frozenset[str]:
        current = set(self._fixed)
        for source in self._sources:
            current.update(source())
        return frozenset(v for v in current if isinstance(v, str) and len(v) >= MIN_SECRET)

    def _patterns(self) -> tuple[re.Pattern[str] | None, re.Pattern[bytes] | None]:
        current = self.secrets()
        known, text_re, bytes_re = self._state
        if current != known:
            for gone in known - current:
                self._retired[gone] = None
            for stale in list(self._retired)[: max(0, len(self._retired) - _REMEMBERED)]:
                del self._retired[stale]
            values = sorted(current | self._retired.keys(), key=len, reverse=True)
            alternation = "|".join(re.escape(v) for v in values)
            text_re = re.compile(alternation) if values else None
            bytes_re = re.compile(alternation.encode()) if values else None
            self._state = (current, text_re, bytes_re)  # one assignment: readers on other threads see old or new
        return text_re, bytes_re

    def scrub(self, text: str) -> str:
        """`text` with every secret masked (`mask_setting`)."""
        pattern = self._patterns()[0]
        if pattern is None or not text:
            return text
        return pattern.sub(lambda m: mask_setting(m.group(0)), text)

    def scrub_bytes(self, data: bytes) -> bytes:
        """`data` (a relayed provider body) with every secret masked; the same bytes otherwise."""
        pattern = self._patterns()[1]
        if pattern is None or not data:
            return data
        return pattern.sub(lambda m: mask_setting(m.group(0).decode()).encode(), data)

    def scrub_json(self, data: Any) -> Any:
        """A JSON value with every string in it (keys too) scrubbed."""
        if isinstance(data, str):
            return self.scrub(data)
        if isinstance(data, dict):
            return {self.scrub(k): self.scrub_json(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.scrub_json(v) for v in data]
        return data


class SecretsFilter(logging.Filter):
    """Scrubs each record a handler emits: the message with its arguments, the traceback, the
    stack and the structured `fields`. Put it on the handlers (a filter on a logger does not see
    the records of its children)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._scrub(record)
        except Exception:  # a log call must never fail; a record that cannot be cleaned is not shown
            record.msg, record.args = "(log record withheld: scrubbing it failed)", None
            record.exc_info = record.exc_text = record.stack_info = None
        return True

    def _scrub(self, record: logging.LogRecord) -> None:
        scrub = self.redactor.scrub
        message = record.getMessage()
        clean = scrub(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = self.redactor.scrub_json(fields)


_FORMATTER = logging.Formatter()
