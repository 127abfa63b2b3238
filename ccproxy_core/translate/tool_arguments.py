"""Tool arguments as a JSON object, whatever a provider sent: parsed, repaired, or closed.

Claude Code validates a tool call's `input` against the tool's schema, so arguments are never
handed over as a string. `parse_tool_arguments` parses strictly, then repairs what models get
wrong (trailing commas, unclosed strings and brackets, text around the object), else gives
`{}`. `close_json_object` serves streams, which cannot take back what they sent: it says what
to append so the arguments already sent become an object.

Both rest on one scanner (`_Scanner`), a small state machine over the characters: its mode
says where it is (between tokens, in a string, an escape, a \\u escape, a bare word) and a
stack of frames says what each open object or array waits for (a key, a colon, a value, or
the next item).
"""

from __future__ import annotations

import enum
from typing import Any

import orjson
from attrs import define, field

from ccproxy_core.core.wire import JSON


def parse_tool_arguments(raw: Any) -> JSON:
    """Tool arguments as an object: parsed, else repaired, else `{}`."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _repair(raw)
    if isinstance(value, str):  # double-encoded by some providers
        return parse_tool_arguments(value) if value.lstrip().startswith("{") else {}
    return value if isinstance(value, dict) else {}


def _repair(raw: str) -> JSON:
    start = raw.find("{")
    scanned = _scan(raw[start:]) if start >= 0 else None
    if scanned is None:
        return {}
    body, suffix, _ = scanned
    try:
        value = orjson.loads(body + suffix)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def close_json_object(prefix: str) -> str | None:
    """What to append to already-sent argument text so it becomes a JSON object.

    A stream cannot take back what it sent, so only appending is allowed: `""` when `prefix`
    is complete, `"{}"` when it is blank, None when no suffix can make it an object.
    """
    if not prefix.strip():
        return "{}"
    try:
        value = orjson.loads(prefix)
    except orjson.JSONDecodeError:
        scanned = _scan(prefix)
        if scanned is None or scanned[2] or not prefix.lstrip().startswith("{"):
            return None
        suffix = scanned[1]
        try:
            value = orjson.loads(prefix + suffix)
        except orjson.JSONDecodeError:
            return None
        return suffix if isinstance(value, dict) else None
    return "" if isinstance(value, dict) else None


_LITERALS = ("true", "false", "null")
_BARE = frozenset("0123456789-+.eEtrufalsn")
_SPACE = frozenset(" \t\r\n")


class _NotJson(Exception):
    """The text holds something no JSON value can contain."""


class _Mode(enum.Enum):
    """Where the scanner is inside the text."""

    BETWEEN = enum.auto()  # between tokens: whitespace, punctuation, or the start of a value
    STRING = enum.auto()  # inside a string
    ESCAPE = enum.auto()  # right after a backslash in a string
    UNICODE = enum.auto()  # inside the four hex digits of a \uXXXX escape
    BARE = enum.auto()  # inside a number or a literal (true, false, null)


class _Wait(enum.Enum):
    """What an open object or array waits for next."""

    KEY = enum.auto()
    COLON = enum.auto()
    VALUE = enum.auto()
    NEXT = enum.auto()  # a comma or the closing bracket


# What closes an object, by what it waits for (a key left without its value gets null).
_CLOSE_OBJECT = {_Wait.KEY: "}", _Wait.COLON: ":null}", _Wait.VALUE: "null}", _Wait.NEXT: "}"}


@define(slots=True)
class _Frame:
    opener: str  # "{" or "["
    wait: _Wait


@define(slots=True)
class _Scanner:
    """Reads JSON text one character at a time, knowing only what must be closed.

    Data that goes with a mode: `key` (the open string is an object key), `escape_at` (where
    an escape cut short began, so it can be removed), `hex_left`, `word` (the bare token so
    far); `comma_at` is a trailing comma not yet followed by a value, removed if the container
    closes or the text ends.
    """

    mode: _Mode = _Mode.BETWEEN
    out: list[str] = field(factory=list)
    frames: list[_Frame] = field(factory=list)
    key: bool = False
    escape_at: int = -1
    hex_left: int = 0
    word: list[str] = field(factory=list)
    comma_at: int = -1
    edited: bool = False

    def step(self, ch: str) -> bool:
        """Take one character; True once the top-level value has closed."""
        mode = self.mode
        if mode is _Mode.BETWEEN:
            return self._between(ch)
        if mode is _Mode.BARE:
            if ch in _BARE:
                self.word.append(ch)
                self.out.append(ch)
                return False
            self.word.clear()
            self.mode = _Mode.BETWEEN
            self._value_done()
            return self._between(ch)
        self.out.append(ch)
        if mode is _Mode.STRING:
            if ch == "\\":
                self.mode, self.escape_at = _Mode.ESCAPE, len(self.out) - 1
            elif ch == '"':
                self.mode = _Mode.BETWEEN
                self._string_done()
        elif mode is _Mode.ESCAPE:
            if ch == "u":
                self.mode, self.hex_left = _Mode.UNICODE, 4
            else:
                self.mode, self.escape_at = _Mode.STRING, -1
        else:  # UNICODE: any four characters end it; orjson judges them later
            self.hex_left -= 1
            if not self.hex_left:
                self.mode, self.escape_at = _Mode.STRING, -1
        return False

    def _between(self, ch: str) -> bool:
        if ch in _SPACE:
            self.out.append(ch)
            return False
        if ch in "}]":
            self._drop_comma()
            if not self.frames:
                raise _NotJson
            self.frames.pop()
            self.out.append(ch)
            if not self.frames:
                return True
            self._value_done()
            return False
        self.comma_at = -1
        top = self.frames[-1] if self.frames else None
        if ch == '"':
            self.mode = _Mode.STRING
            self.key = top is not None and top.opener == "{" and top.wait is _Wait.KEY
        elif ch in "{[":
            self._value_done()  # the new container is the parent's value
            self.frames.append(_Frame(ch, _Wait.KEY if ch == "{" else _Wait.VALUE))
        elif ch in ":," and top is None:
            raise _NotJson
        elif ch == ":" and top is not None:
            top.wait = _Wait.VALUE
        elif ch == "," and top is not None:
            top.wait = _Wait.KEY if top.opener == "{" else _Wait.VALUE
            self.comma_at = len(self.out)
        elif ch in _BARE:
            self.mode = _Mode.BARE
            self.word.append(ch)
        else:
            raise _NotJson
        self.out.append(ch)
        return False

    def _string_done(self) -> None:
        if self.key:
            self.frames[-1].wait = _Wait.COLON
        else:
            self._value_done()

    def _value_done(self) -> None:
        if self.frames:
            self.frames[-1].wait = _Wait.NEXT

    def _drop_comma(self) -> None:
        if self.comma_at >= 0:
            self.out[self.comma_at] = ""
            self.edited = True
        self.comma_at = -1

    def suffix(self) -> str:
        """What closes everything still open when the text ends here (the text may be cut)."""
        suffix: list[str] = []
        if self.mode in (_Mode.ESCAPE, _Mode.UNICODE):  # an escape cut in half cannot be completed sensibly
            del self.out[self.escape_at :]
            self.edited = True
        if self.mode in (_Mode.STRING, _Mode.ESCAPE, _Mode.UNICODE):
            suffix.append('"')
            self._string_done()
        elif self.mode is _Mode.BARE:
            word = "".join(self.word)
            rest = next((lit[len(word) :] for lit in _LITERALS if lit.startswith(word)), None)
            if rest is not None:
                suffix.append(rest)
            elif word[-1] in "-+.eE":
                suffix.append("0")
            self._value_done()
        if self.comma_at >= 0:
            self._drop_comma()
            self.frames[-1].wait = _Wait.NEXT
        for frame in reversed(self.frames):
            suffix.append(_CLOSE_OBJECT[frame.wait] if frame.opener == "{" else "]")
        return "".join(suffix)


def _scan(text: str) -> tuple[str, str, bool] | None:
    """Close what a truncated JSON value left open.

    Returns (body, suffix, edited): `body` is `text` cut after the top-level value, minus
    trailing commas and a half-written escape (`edited` says whether any was removed), and
    `body + suffix` is complete. None when `text` holds something no JSON can contain.
    """
    scanner = _Scanner()
    try:
        for ch in text:
            if scanner.step(ch):
                return "".join(scanner.out), "", scanner.edited
    except _NotJson:
        return None
    if not scanner.frames:
        return None
    suffix = scanner.suffix()
    return "".join(scanner.out), suffix, scanner.edited
