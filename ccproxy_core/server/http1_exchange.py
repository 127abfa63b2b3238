"""One request on a keep-alive connection to a provider and its answer (the `Answer` that
server/upstream.py hands on), for server/http1.py's pool.

The connection's protocol feeds it what the socket reads: `core/http1.py` unframes the bytes,
the body is held for the reader (inflated if the provider compressed it anyway), and the reader's
one waiting future is woken. Timeouts are deadlines checked when the exchange's one timer fires,
never re-armed per received chunk: `idle` ends an exchange whose provider sent nothing for that
long (a stream's stall), `total` one that has not ended by then. A body the reader does not take
is held up to `HIGH_WATER` bytes, then the socket is paused, so a slow client slows its provider
rather than filling memory. The moment the answer ends (read or not) the connection goes back to
its pool, if both sides allow it; a failure, a timeout or `close()` drops it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from multidict import CIMultiDict, CIMultiDictProxy

from ccproxy_core.core.errors import ProxyError
from ccproxy_core.core.http1 import ProtocolError, ResponseParser
from ccproxy_core.core.inbound import Inflater, body_coding

if TYPE_CHECKING:
    from ccproxy_core.server.http1 import Connection

HIGH_WATER = 256 * 1024  # body bytes held for a reader before the socket is paused
_INFLATED_LIMIT = 1 << 40  # a provider's compressed answer is not a bomb we guard against here

# What went wrong, and when: before the answer's head came (HEAD), reading its body before any
# of it was handed on (BODY), or in the middle of a stream (STREAM); returns the error to raise.
ErrorMapper = Callable[[BaseException, int], ProxyError]
HEAD, BODY, STREAM = 0, 1, 2


class ConnectionLost(Exception):
    """The provider closed the connection before its answer ended."""


class Timeouts:
    """Seconds an exchange may go without a byte (`idle`), and in all (`total`); None: no limit."""

    __slots__ = ("idle", "total")

    def __init__(self, idle: float | None, total: float | None) -> None:
        self.idle = idle
        self.total = total


class Exchange:
    """One request on a connection and its answer (the `Answer` of server/upstream.py)."""

    __slots__ = (
        "_chunks",
        "_conn",
        "_deadline",
        "_errors",
        "_failure",
        "_heard",
        "_hold",
        "_idle",
        "_inflater",
        "_last",
        "_loop",
        "_parser",
        "_paused",
        "_size",
        "_started",
        "_timer",
        "_waiter",
        "content_type",
        "headers",
        "status",
    )

    def __init__(self, conn: Connection, loop: asyncio.AbstractEventLoop, timeouts: Timeouts, errors: ErrorMapper):
        self._conn: Connection | None = conn
        self._loop = loop
        self._errors = errors
        self._parser = ResponseParser()
        self._chunks: list[bytes] = []
        self._size = 0
        self._paused = False
        self._hold = HIGH_WATER
        self._waiter: asyncio.Future[None] | None = None
        self._failure: BaseException | None = None
        self._inflater: Inflater | None = None
        self._started = False  # a chunk was handed on: a timeout from now on is a stall mid-stream
        self._heard = False  # a byte of the answer came
        self.status = 0
        self.headers: CIMultiDictProxy[str] = _NO_HEADERS
        self.content_type = ""
        now = loop.time()
        self._last = now
        self._idle = timeouts.idle
        self._deadline = now + timeouts.total if timeouts.total is not None else None
        self._timer: asyncio.TimerHandle | None = None
        self._arm()

    # --- the protocol's side ---------------------------------------------------------------------

    def received(self, data: bytes) -> None:
        self._heard = True
        if self._idle is not None:
            self._last = self._loop.time()
        parser = self._parser
        try:
            body = parser.feed(data)
            if self.status == 0 and parser.head is not None:
                self._read_head()
            if body:
                if self._inflater is not None:
                    body = self._inflater.feed(body)
                if body:
                    self._chunks.append(body)
                    self._size += len(body)
                    if self._size > self._hold and not self._paused and self._conn is not None:
                        self._paused = True
                        self._conn.transport.pause_reading()  # type: ignore[union-attr]
            if parser.done:
                self._finish()
        except (ProtocolError, ProxyError) as exc:
            self._fail(exc)
            return
        self._wake()

    def ended(self, exc: Exception | None) -> None:
        """The connection closed (`exc` says why, if it broke)."""
        if self._conn is None:
            return
        if self._parser.closed():
            self._finish(reusable=False)
        else:
            self._fail(ConnectionLost(reason(exc) if exc else "the connection closed before the answer ended"))
            return
        self._wake()

    def _read_head(self) -> None:
        head = self._parser.head
        assert head is not None
        headers = CIMultiDictProxy(CIMultiDict(head.headers))
        coding = headers.get("content-encoding")
        if coding:  # asked for identity; one that compresses anyway is inflated as it arrives
            try:
                kind = body_coding(coding)
            except ProxyError:
                why = f"it answered in Content-Encoding {coding!r}, which ccproxy cannot decode"
                raise ProtocolError(why) from None
            if kind is not None:
                self._inflater = Inflater(kind, _INFLATED_LIMIT)
        content_type = headers.get("content-type")
        if content_type:
            self.content_type = content_type.partition(";")[0].strip().lower()
        self.headers = headers
        self.status = head.status  # last: a head that fails above never counts as come

    def _detach(self) -> Connection | None:
        """The connection, taken from this exchange (which is over), its timer stopped."""
        conn, self._conn = self._conn, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return conn

    def _finish(self, reusable: bool = True) -> None:
        conn = self._detach()
        if self._inflater is not None:
            try:
                self._inflater.finish()
            except ProxyError as exc:
                self._failure = ProtocolError(exc.message)
        if conn is not None:
            head = self._parser.head
            conn.done(reusable and head is not None and head.keep_alive and not self._parser.extra)

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        if (conn := self._detach()) is not None:
            conn.drop()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def unanswered(self) -> bool:
        """The connection closed before a byte of the answer came."""
        return not self._heard and isinstance(self._failure, ConnectionLost)

    # --- timeouts -----------------------------------------------------------------------------

    def _arm(self) -> None:
        when = self._deadline
        if self._idle is not None and (when is None or self._last + self._idle < when):
            when = self._last + self._idle
        self._timer = self._loop.call_at(when, self._check_time) if when is not None else None

    def _check_time(self) -> None:
        now = self._loop.time()
        if (self._deadline is not None and now >= self._deadline) or (
            self._idle is not None and now - self._last >= self._idle
        ):
            self._timer = None
            self._fail(TimeoutError())
        else:
            self._arm()

    # --- the reader's side --------------------------------------------------------------------

    async def wait_head(self) -> None:
        while self.status == 0:
            if self._failure is not None:
                raise self._errors(self._failure, HEAD) from self._failure
            await self._wait()

    async def _wait(self) -> None:
        self._waiter = waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    async def readany(self) -> bytes:
        """The body bytes that came since the last call; b"" at the end of the body."""
        while not self._chunks:
            if self._failure is not None:
                raise self._errors(self._failure, STREAM if self._started else BODY) from self._failure
            if self._conn is None:
                return b""
            await self._wait()
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        self._started = True
        if self._paused:
            self._resume()
        return data

    async def read(self) -> bytes:
        """The whole body."""
        self._hold = 1 << 62  # all of it is wanted: never pause for it
        if self._paused:
            self._resume()
        while self._conn is not None and self._failure is None:
            await self._wait()
        if self._failure is not None:
            raise self._errors(self._failure, BODY) from self._failure
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data

    def _resume(self) -> None:
        self._paused = False
        if self._conn is not None:
            self._conn.transport.resume_reading()  # type: ignore[union-attr]

    def close(self) -> None:
        """Done with it: a connection still carrying its answer is dropped (the provider sees the
        request cancelled)."""
        self._chunks.clear()
        if (conn := self._detach()) is not None:
            conn.drop()

    def release(self) -> None:
        """Done with a fully read answer: it has already given its connection back, so this is
        `close` (a method of its own, not an alias: mypyc compiles this class)."""
        self.close()


_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


def reason(exc: BaseException) -> str:
    """What went wrong, in words: the exception's message, or its class's name if it has none."""
    text = str(exc).strip()
    return text or type(exc).__name__
