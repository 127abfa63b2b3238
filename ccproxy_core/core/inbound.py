"""What a client may send: how deep its JSON nests, which bytes its headers hold, how far its body inflates.

Each rule here guards a later step that would otherwise fail with a 500 (or cost the proxy
more than the client paid for), so the request is refused at the door instead, with a 4xx
that names the limit:

- JSON depth. orjson reads 1024 levels but writes at most 254, so a body nested 255-1024
  deep would parse, then fail wherever the proxy re-encodes it (a routed model name, a
  translation, a local token count). `MAX_JSON_DEPTH` leaves room for the few levels a
  translation adds.
- Header bytes. aiohttp keeps a non-UTF-8 header byte as a lone surrogate, which neither
  orjson nor an HTTP writer can encode; such a request is refused by name.
- Content-Encoding. A gzip or deflate body is inflated piece by piece (`Inflater`), and the
  size limit applies to the inflated bytes as they come out, so a small bomb costs no more
  than an honest body of the limit's size.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

import orjson

from ccproxy_core.core.errors import InvalidRequest, RequestTooLarge, UnsupportedEncoding

MAX_JSON_DEPTH = 128

# orjson refuses to encode more than this many nested containers (pinned by a unit test).
ORJSON_MAX_DEPTH = 254


class _Nest:
    """`ORJSON_MAX_DEPTH - MAX_JSON_DEPTH` nested lists built once, and the innermost one, where the
    value under test is put for one encode (building the lists per call cost more than the encode
    itself on a typical request)."""

    __slots__ = ("hole", "outer")

    def __init__(self) -> None:
        self.hole: list[Any] = [None]
        outer: list[Any] = self.hole
        for _ in range(ORJSON_MAX_DEPTH - MAX_JSON_DEPTH - 1):
            outer = [outer]
        self.outer = outer


# Free nests: each check takes one for itself (list.pop and append are atomic), so two threads
# never share one; there are never more than the checks ever run at once.
_NESTS: list[_Nest] = []


def json_too_deep(value: Any, limit: int = MAX_JSON_DEPTH, text: bytes | str | None = None) -> bool:
    """Whether `value` nests more than `limit` arrays/objects.

    orjson's own C walk does the counting: `value` wrapped in `ORJSON_MAX_DEPTH - limit`
    lists encodes exactly when `value` itself is at most `limit` deep. That costs one
    encode (about a tenth of the parse) and no Python-level walk.

    `text`, the JSON that `value` was parsed from, when at hand: a short text that opens at most
    `limit` arrays and objects in all cannot nest deeper (a bracket inside a string is counted
    too, which only over-counts), and counting its brackets costs less than the encode.
    """
    if text is not None and len(text) <= _COUNTED_UP_TO and _opened(text) <= limit:
        return False
    if limit != MAX_JSON_DEPTH:
        wrapped: Any = value
        for _ in range(ORJSON_MAX_DEPTH - limit):
            wrapped = [wrapped]
        return _too_deep(wrapped)
    try:
        nest = _NESTS.pop()
    except IndexError:
        nest = _Nest()
    nest.hole[0] = value
    try:
        return _too_deep(nest.outer)
    finally:
        nest.hole[0] = None  # hold no reference to the body after the check
        _NESTS.append(nest)


# Up to this length a text's brackets are counted before its value is encoded: two C counts cost
# less than the encode up to about 1.5 KiB (0.8 against 2.6 microseconds at 300 bytes), and a long
# text, which would need the encode anyway (a Claude Code request opens hundreds), skips them.
_COUNTED_UP_TO = 1024


def _opened(text: bytes | str) -> int:
    """How many arrays and objects `text` opens, at most (brackets in strings are counted too)."""
    if isinstance(text, str):
        return text.count("[") + text.count("{")
    return text.count(b"[") + text.count(b"{")


def _too_deep(wrapped: Any) -> bool:
    try:
        orjson.dumps(wrapped)
    except orjson.JSONEncodeError:
        return True
    return False


def check_json_depth(value: Any, where: str = "the request body", text: bytes | None = None) -> None:
    """Refuse JSON nested deeper than the proxy can pass on (`text`: what `value` was parsed from)."""
    if json_too_deep(value, text=text):
        raise InvalidRequest(
            f"{where} nests arrays/objects more than {MAX_JSON_DEPTH} levels deep; "
            f"ccproxy accepts at most {MAX_JSON_DEPTH}"
        )


def header_problem(raw_headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Why these raw header lines cannot be read safely, or None when they can."""
    for name, value in raw_headers:
        if value.isascii():
            continue
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            shown = name.decode("ascii", "backslashreplace")
            return f"header {shown}: its value is not valid UTF-8; send header values as ASCII or UTF-8"
    return None


# Content codings a request body may have; br and zstd are refused (no decoder shipped).
GZIP, DEFLATE = "gzip", "deflate"
_CODINGS = {"gzip": GZIP, "x-gzip": GZIP, "deflate": DEFLATE}
_IDENTITY = frozenset({"", "identity"})
_PIECE = 64 * 1024  # inflated bytes per decompress call: the most that can overshoot the limit


def body_coding(header: str | None) -> str | None:
    """The one content coding of a request body (None for identity); 415 for anything else."""
    codings = [c.strip().lower() for c in (header or "").split(",")]
    codings = [c for c in codings if c not in _IDENTITY]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in _CODINGS:
        return _CODINGS[codings[0]]
    raise UnsupportedEncoding(
        f"Content-Encoding: {', '.join(codings)} is not supported for request bodies; "
        "send the body as gzip, deflate or uncompressed"
    )


class Inflater:
    """Inflates a gzip or deflate body as it arrives, refusing it once it passes `limit` bytes.

    Sans-I/O: `feed` takes compressed bytes and returns what they inflate to; `finish` checks
    that the stream ended where the body did. Concatenated gzip members are read in turn.
    """

    def __init__(self, coding: str, limit: int) -> None:
        self.coding = coding
        self.limit = limit
        self.size = 0
        self._inflater: Any = None  # chosen on the first byte (deflate comes with or without its zlib header)

    def _start(self, first: int) -> Any:
        if self.coding == GZIP:
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        return zlib.decompressobj(zlib.MAX_WBITS if first & 0x0F == 8 else -zlib.MAX_WBITS)

    def feed(self, data: bytes) -> bytes:
        pieces: list[bytes] = []
        while data:
            if self._inflater is None:
                self._inflater = self._start(data[0])
            elif self._inflater.eof:
                if self.coding != GZIP:
                    raise self._bad("data after the end of the compressed stream")
                self._inflater = self._start(data[0])  # the next gzip member
            data = self._drain(data, pieces)
        return b"".join(pieces)

    def _drain(self, data: bytes, pieces: list[bytes]) -> bytes:
        """Inflate `data` in bounded pieces; return what is left after the end of the stream."""
        inflater = self._inflater
        while True:
            try:
                piece = inflater.decompress(data, _PIECE)
            except zlib.error as exc:
                raise self._bad(str(exc)) from None
            self.size += len(piece)
            if self.size > self.limit:
                raise RequestTooLarge(
                    f"the request body inflates to more than {self.limit} bytes "
                    f"(limits.max_request_body_size applies to the inflated size)"
                )
            pieces.append(piece)
            data = inflater.unconsumed_tail
            if inflater.eof:
                return bytes(inflater.unused_data)
            if not data and len(piece) < _PIECE:
                return b""

    def finish(self) -> None:
        if self._inflater is None or not self._inflater.eof:
            raise self._bad("the compressed body ends before its stream does")

    def _bad(self, why: str) -> InvalidRequest:
        return InvalidRequest(f"the request body is not valid {self.coding} data ({why}); check Content-Encoding")
