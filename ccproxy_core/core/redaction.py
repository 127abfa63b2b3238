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
from collections.abc import Callable, Iterable, Sequence
from typing import Any, AnyStr, cast

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
    return _masked(value)


def _masked(value: str) -> str:
    """Both ends of a long secret, to tell keys apart; nothing of a short one."""
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
    that rotate are covered as soon as they change; the compiled pattern (a trie of the escaped
    values, preferring the longer, so a key that contains another is masked whole) is rebuilt
    only when the set changes. Values dropped from the set are kept for the next `_REMEMBERED` changes: an
    access token replaced by a refresh stays valid, and may still be echoed, until it expires.
    """

    def __init__(self, *values: str) -> None:
        self._sources: list[Callable[[], Iterable[str]]] = []
        self._fixed = tuple(values)
        self._retired: dict[str, None] = {}
        # (the sources' last answer, its secrets, text pattern, bytes pattern), swapped whole so a
        # reader on another thread (a log call) sees the old state or the new one
        self._state: tuple[tuple[str, ...], frozenset[str], re.Pattern[str] | None, re.Pattern[bytes] | None] = (
            (),
            frozenset(),
            None,
            None,
        )

    def track(self, source: Callable[[], Iterable[str]]) -> None:
        """Add a source of secrets, asked again at every scrub."""
        self._sources.append(source)

    def secrets(self) -> frozenset[str]:
        return self._current()[1]

    def _current(self) -> tuple[tuple[str, ...], frozenset[str], re.Pattern[str] | None, re.Pattern[bytes] | None]:
        answer = self._fixed + tuple(v for source in self._sources for v in source())
        state = self._state
        if answer == state[0]:  # the usual case: the same strings, compared by identity first
            return state
        current = frozenset(v for v in answer if isinstance(v, str) and len(v) >= MIN_SECRET)
        if current != state[1]:
            for gone in state[1] - current:
                self._retired[gone] = None
            for stale in list(self._retired)[: max(0, len(self._retired) - _REMEMBERED)]:
                del self._retired[stale]
            values = sorted(current | self._retired.keys())
            text_re = re.compile(_alternation(values)) if values else None
            bytes_re = re.compile(_alternation([v.encode() for v in values])) if values else None
            state = (answer, current, text_re, bytes_re)
        else:
            state = (answer, *state[1:])
        self._state = state
        return state

    def scrub(self, text: str) -> str:
        """`text` with every secret masked (`sk-a…wxyz`, as `mask_setting` shows keys)."""
        pattern = self._current()[2]
        if pattern is None or not text:
            return text
        return pattern.sub(lambda m: _masked(m.group(0)), text)

    def scrub_bytes(self, data: bytes) -> bytes:
        """`data` (a relayed provider body) with every secret masked; the same bytes otherwise."""
        pattern = self._current()[3]
        if pattern is None or not data:
            return data
        return pattern.sub(lambda m: _masked(m.group(0).decode()).encode(), data)

    def scrub_json(self, data: Any) -> Any:
        """A JSON value with every string in it (keys too) scrubbed."""
        if isinstance(data, str):
            return self.scrub(data)
        if isinstance(data, dict):
            return {self.scrub(k): self.scrub_json(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.scrub_json(v) for v in data]
        return data


def _alternation(values: Sequence[AnyStr]) -> AnyStr:
    """One regex matching any of `values`, the longest where one is a prefix of another, built as
    a trie (`ab(?:c|d)`) so that scanning costs about one step per character of input, not one
    per secret. Runs of single children are joined, so only branch points nest."""
    trie: dict[Any, Any] = {}
    end = object()
    for value in values:
        node = trie
        for i in range(len(value)):
            node = node.setdefault(value[i : i + 1], {})
        node[end] = True

    def build(node: dict[Any, Any]) -> Any:
        run = []
        while len(node) == 1 and end not in node:  # a chain: one literal
            ((key, node),) = node.items()
            run.append(re.escape(key))
        branches = [re.escape(key) + build(child) for key, child in node.items() if key is not end]
        joiner = type(values[0])()
        tail = joiner.join(branches) if len(branches) <= 1 else _wrap(joiner, branches, "|")
        if end in node and branches:
            tail = _wrap(joiner, [tail], "") + _lit(joiner, "?")  # greedy: the longer secret first
        return joiner.join(run) + tail

    return cast(AnyStr, build(trie))


def _lit(kind: Any, text: str) -> Any:
    return text.encode() if isinstance(kind, bytes) else text


def _wrap(kind: Any, parts: list[Any], sep: str) -> Any:
    return _lit(kind, "(?:") + _lit(kind, sep).join(parts) + _lit(kind, ")")


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
