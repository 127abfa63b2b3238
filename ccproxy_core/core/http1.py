"""HTTP/1.1 on the wire, sans I/O: a provider's response parsed as its bytes arrive, and the
head of the request that goes to it.

ccproxy's upstream client (server/http1.py) speaks exactly one kind of exchange: a POST with a
body in hand, answered by a response whose body is streamed on. That is a small subset of HTTP,
and doing it here rather than through a general client is what makes the call cheap: no URL
object, header multidict, timer or stream reader built per request. The parser is strict where
a lie would hurt (framing, header syntax) and refuses rather than guesses:

    parser = ResponseParser()
    body = parser.feed(data)     # body bytes in `data` (b"" if none); the head once complete
    parser.head                  # status, reason, headers (as sent), keep-alive
    parser.done                  # the message has ended; `parser.extra`: bytes came after it
    parser.closed()              # the connection ended: is that the body's end or a cut?

Framing follows RFC 9112 section 6.3: no body for 1xx (skipped), 204 and 304; chunked wins over
Content-Length (and then the connection is not reused); neither means the body runs to the
connection's close. Any other transfer coding, differing lengths, a malformed chunk line, an
obsolete folded header or a lone CR or LF is a `ProtocolError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ccproxy_core.core.headers import connection_tokens

MAX_HEAD = 64 * 1024  # a provider's status line and headers; a real one is under 2 KiB
_MAX_CHUNK_LINE = 1024
_HEX = frozenset(b"0123456789abcdefABCDEF")
_CHUNK_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[^\r\n]*)?\r\n")

# Parser states.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = range(8)

# Request headers ccproxy frames itself: given ones are dropped (Host is kept if given).
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class ProtocolError(Exception):
    """The provider's bytes are not a well-formed HTTP/1.1 response; the message says how."""


class Head:
    """A response's status line and headers. `headers` keeps the provider's order, repeats and
    spelling; values as sent (UTF-8, an undecodable byte replaced)."""

    __slots__ = ("headers", "keep_alive", "reason", "status")

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]], keep_alive: bool) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.keep_alive = keep_alive


class ResponseParser:
    """One response, fed its bytes as they arrive."""

    __slots__ = ("_buf", "_remaining", "_state", "done", "extra", "head")

    def __init__(self) -> None:
        self._buf = b""
        self._state = _HEAD
        self._remaining = 0
        self.head: Head | None = None
        self.done = False
        self.extra = False  # bytes came after the message: the connection cannot be trusted again

    def feed(self, data: bytes) -> bytes:
        """The body bytes `data` carries (framing removed); raises `ProtocolError`."""
        if self._state == _LENGTH:  # the common case, a piece of a sized body: no copy
            remaining = self._remaining
            if len(data) < remaining:
                self._remaining = remaining - len(data)
                return data
            self._remaining = 0
            self._finish(len(data) > remaining)
            return data if len(data) == remaining else data[:remaining]
        if self._state == _CHUNK_SIZE and not self._buf:  # one whole chunk of a stream, as it comes
            digits = data.find(b"\r\n", 0, 18)
            if digits > 0 and data[:digits].isalnum() and data[1] not in b"xX":  # (int() takes "0x")
                try:
                    stop = digits + 2 + int(data[:digits], 16)
                except ValueError:
                    stop = 0  # not hex: the general path below says so
                if stop + 2 == len(data) and stop > digits + 2 and data.endswith(b"\r\n"):
                    return data[digits + 2 : stop]
        if self._buf:
            data, self._buf = self._buf + data, b""
        pieces: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end or self._state == _DONE:
            state = self._state
            if state == _DONE:
                self.extra = self.extra or pos < end
                break
            if state == _UNTIL_CLOSE:
                pieces.append(data[pos:] if pos else data)
                break
            if state in (_LENGTH, _CHUNK_DATA):
                remaining = self._remaining
                if end - pos <= remaining:
                    pieces.append(data[pos:] if pos else data)
                    self._remaining = remaining - (end - pos)
                    if self._remaining == 0:
                        self._after_data(end, end)
                    break
                pieces.append(data[pos : pos + remaining])
                pos += remaining
                self._remaining = 0
                self._after_data(pos, end)
            elif state == _HEAD:
                stop = data.find(b"\r\n\r\n", pos)
                if stop < 0:
                    if end - pos > MAX_HEAD:
                        raise ProtocolError(f"its status line and headers run past {MAX_HEAD // 1024} KiB")
                    self._buf = data[pos:]
                    break
                self._read_head(data[pos:stop])
                pos = stop + 4
            elif state == _CHUNK_SIZE:
                # Whole chunks in one step each, the common case of a stream; anything else (a
                # chunk not all here yet, a malformed size line) takes the general path below.
                while (line := _CHUNK_LINE.match(data, pos)) is not None:
                    size = int(line[1], 16)
                    start = line.end()
                    stop = start + size
                    if not size or stop + 2 > end:
                        break
                    if data[stop : stop + 2] != b"\r\n":
                        raise ProtocolError("a chunk is longer than its size line says")
                    pieces.append(data[start:stop])
                    pos = stop + 2
                if pos >= end:
                    break
                stop = data.find(b"\r\n", pos)
                if stop < 0:
                    if end - pos > _MAX_CHUNK_LINE:
                        raise ProtocolError("a chunk-size line runs past 1 KiB")
                    self._buf = data[pos:]
                    break
                size = _chunk_size(data[pos:stop])
                pos = stop + 2
                self._remaining = size
                self._state = _CHUNK_DATA if size else _TRAILERS
            elif state == _CHUNK_END:
                if end - pos < 2:
                    self._buf = data[pos:]
                    break
                if data[pos : pos + 2] != b"\r\n":
                    raise ProtocolError("a chunk is longer than its size line says")
                pos += 2
                self._state = _CHUNK_SIZE
            else:  # _TRAILERS: none, or lines we read past (nothing of them is used)
                if data.startswith(b"\r\n", pos):
                    pos += 2
                    self._finish(False)
                    continue
                stop = data.find(b"\r\n\r\n", pos)
                if stop < 0:
                    if end - pos > MAX_HEAD:
                        raise ProtocolError(f"its trailers run past {MAX_HEAD // 1024} KiB")
                    self._buf = data[pos:]
                    break
                pos = stop + 4
                self._finish(False)
        if not pieces:
            return b""
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def closed(self) -> bool:
        """The connection has ended: True if that completes the response, False if it cut it."""
        if self._state == _UNTIL_CLOSE:
            self._finish(False)
        return self.done

    def _after_data(self, pos: int, end: int) -> None:
        if self._state == _LENGTH:
            self._finish(pos < end)
        else:
            self._state = _CHUNK_END

    def _finish(self, extra: bool) -> None:
        self._state = _DONE
        self.done = True
        self.extra = self.extra or extra

    def _read_head(self, raw: bytes) -> None:
        lines = raw.decode("utf-8", "replace").split("\r\n")
        # The head's control characters, all of them, must be its line ends: a CR or LF besides
        # is a bare one, and any other (a NUL, an ESC) is no part of a header (RFC 9110 5.5), and
        # a client's parser may refuse the answer it is passed on in.
        if raw.translate(None, _NOT_CONTROL) != b"\r\n" * (len(lines) - 1):
            raise ProtocolError("its head holds a bare CR or LF, or another control character")
        match = _STATUS_LINE.fullmatch(lines[0])
        if match is None:
            raise ProtocolError(f"{lines[0][:80]!r} is not an HTTP/1.1 status line")
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name:
                raise ProtocolError(f"{line[:80]!r} is not a header line")
            headers.append((name, value.strip(" \t")))
        if headers and not _tokens("".join([name for name, _ in headers])):
            raise ProtocolError(_bad_name(headers))
        status = int(match[2])
        if 100 <= status < 200:
            if status == 101:
                raise ProtocolError("it switched protocols, which ccproxy never asks for")
            return  # an interim answer: the real one follows
        self._state = _DONE
        keep_alive = match[1] == "1"
        length: int | None = None
        chunked = False
        for name, value in headers:
            if len(name) not in _FRAMING_LENGTHS:  # one test per header on the common path
                continue
            key = name.lower()
            if key == "connection":
                tokens = connection_tokens(value)
                keep_alive = "close" not in tokens and (keep_alive or "keep-alive" in tokens)
            elif key == "content-length":
                length = _content_length(value, length)
            elif key == "transfer-encoding":
                if value.strip().lower() != "chunked" or chunked:
                    raise ProtocolError(f"Transfer-Encoding {value!r} is not supported (only chunked)")
                chunked = True
        if status in (204, 304):
            pass
        elif chunked:
            self._state = _CHUNK_SIZE
            keep_alive = keep_alive and length is None  # both framings given: never trusted again
        elif length is not None:
            self._state = _LENGTH if length else _DONE
            self._remaining = length
        else:
            self._state = _UNTIL_CLOSE
            keep_alive = False
        self.head = Head(status, match[3], headers, keep_alive)
        if self._state == _DONE:
            self.done = True


_STATUS_LINE = re.compile(r"HTTP/1\.([01]) ([0-9]{3})(?: ([^\r\n]*))?")
# What a head may hold besides its line ends: anything but a control character, HTAB excepted.
_NOT_CONTROL = bytes(b for b in range(256) if b == 0x09 or 0x20 <= b != 0x7F)
# Header names are tokens: no blank before the colon, no obsolete folded continuation line.
_TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_FRAMING_LENGTHS = frozenset({len("connection"), len("content-length"), len("transfer-encoding")})


def _tokens(text: str) -> bool:
    """Whether every character of `text` is a token character: deleted from its bytes, all of
    them, nothing is left (one C pass; 0.9 µs for a real answer's 21 names, a regex took 2.3)."""
    return text.isascii() and not text.encode().translate(None, _TOKEN_CHARS)


def _bad_name(headers: list[tuple[str, str]]) -> str:
    name = next(name for name, _ in headers if not _tokens(name))
    return f"{name[:80]!r} is not a header name"


def _chunk_size(line: bytes) -> int:
    size = line.split(b";", 1)[0].strip(b" \t")
    if not size or len(size) > 16 or not _HEX.issuperset(size):
        raise ProtocolError(f"{line[:40]!r} is not a chunk-size line")
    return int(size, 16)


def _content_length(value: str, seen: int | None) -> int:
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1 or not (text := values.pop()).isdigit() or not text.isascii():
        raise ProtocolError(f"Content-Length {value!r} is not one number")
    length = int(text)
    if seen is not None and seen != length:
        raise ProtocolError("it sent two different Content-Lengths")
    return length


def request_head(target: str, host: str, headers: Mapping[str, str], length: int) -> bytes:
    """The head of a POST of `length` body bytes; `headers` names are lower-case. A CR or LF in
    a name or value (which would split it into a header of its own) raises ValueError."""
    if _FRAMING.isdisjoint(headers):
        lines = [f"{name}: {value}\r\n" for name, value in headers.items()]
    else:
        host = headers.get("host", host)
        lines = [f"{name}: {value}\r\n" for name, value in headers.items() if name not in _FRAMING]
    text = f"POST {target} HTTP/1.1\r\nhost: {host}\r\n{''.join(lines)}content-length: {length}\r\n\r\n"
    if text.count("\n") != len(lines) + 4 or text.count("\r") != len(lines) + 4:
        raise ValueError("a request header name or value holds a CR or LF")
    return text.encode("utf-8")
