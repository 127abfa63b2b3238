"""ccproxy's HTTP/1.1 client: keep-alive connections to one provider and the exchanges on them.

A proxy's upstream call is always the same shape: a POST whose body is already in hand, and an
answer whose body is passed on as it arrives. aiohttp's general client built, per request, a
URL object, a request and a response object, a header multidict, a stream reader, a timer
context and a payload writer, and was about a third of ccproxy's CPU per request. Here a request
is one write of bytes serialized by `core/http1.py`, and the answer is parsed by the same module
straight off the socket into the exchange its reader waits on.

    pool = Pool(host, port, ssl_context, connect_timeout, keepalive)
    exchange = await pool.post(target, host_header, headers, body, timeouts, errors)
    exchange.status, exchange.headers       # the head, once it came
    await exchange.readany() / read()       # the body, framing removed, inflated if it came gzipped
    exchange.close()                        # give up on it: the connection is dropped

This module holds the sockets: `Pool` (idle connections, the most recently used first, closed
after `keepalive` seconds unused) and `Connection` (the protocol, carrying one exchange at a
time); server/http1_exchange.py holds the exchange: the answer, its timeouts and flow control.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Mapping
from typing import Any

import aiohappyeyeballs

from ccproxy_core.core.http1 import request_head
from ccproxy_core.server.http1_exchange import ConnectionLost, ErrorMapper, Exchange, Timeouts

AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]
DNS_TTL = 300.0  # seconds a host's addresses are kept, as aiohttp's client kept them
HAPPY_EYEBALLS_DELAY = 0.25  # RFC 8305's recommended delay before the next address is tried


class Connection(asyncio.Protocol):
    """One socket to the provider, carrying one exchange at a time."""

    __slots__ = ("_pool", "exchange", "idle_since", "lost", "transport")

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.lost = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # bytes nobody asked for: this connection cannot be trusted again
            self.drop()
            return
        exchange.received(data)

    def eof_received(self) -> bool:
        if self.exchange is not None:
            self.exchange.ended(None)
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._pool.forget(self)
        if self.exchange is not None:
            self.exchange.ended(exc)

    def drop(self) -> None:
        """Close the socket at once (a request cut short, or a connection not to reuse)."""
        self.exchange = None
        if self.transport is not None and not self.lost:
            self.transport.abort()
        self.lost = True
        self._pool.forget(self)

    def done(self, reusable: bool) -> None:
        """Its exchange has ended: back to the pool, or closed."""
        self.exchange = None
        if reusable and not self.lost:
            self._pool.keep(self)
        else:
            self.drop()


class Pool:
    """Keep-alive connections to one origin, the most recently used first."""

    def __init__(
        self, host: str, port: int, ssl_context: ssl.SSLContext | None, connect_timeout: float, keepalive: float
    ) -> None:
        self.host = host
        self.port = port
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive
        self._idle: list[Connection] = []
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False
        self._resolved: tuple[float, list[AddrInfo]] | None = None  # (until, addresses)
        # The loop of its first request, kept: asyncio.get_running_loop() is a getpid() system call.
        self._loop: asyncio.AbstractEventLoop | None = None

    async def post(
        self,
        target: str,
        host_header: str,
        headers: Mapping[str, str],
        body: bytes,
        timeouts: Timeouts,
        errors: ErrorMapper,
    ) -> Exchange:
        """Send the request; return once the answer's head came (its body still to read)."""
        head = request_head(target, host_header, headers, len(body))
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        conn = self._reuse(loop.time())
        reused = conn is not None
        while True:
            if conn is None:
                conn = await self._connect(loop)
            exchange = Exchange(conn, loop, timeouts, errors)
            conn.exchange = exchange
            transport = conn.transport
            assert transport is not None
            if len(body) < 16 * 1024:
                transport.write(head + body)
            else:
                transport.writelines((head, body))
            try:
                await exchange.wait_head()
            except BaseException:  # cancelled (the client left) or failed: the request dies with its connection
                exchange.close()
                if reused and exchange.unanswered():
                    # A kept-alive connection the provider closed as the request went out (it
                    # drops idle ones about when ccproxy does): sent once more, on a new one, as
                    # browsers do. A new connection that closes unanswered is the provider's answer.
                    conn, reused = None, False
                    continue
                raise
            return exchange

    def _reuse(self, now: float) -> Connection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.lost and now - conn.idle_since < self._keepalive:
                return conn
            conn.drop()
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> Connection:
        """A new connection: the host's addresses (remembered for `DNS_TTL`), tried the way
        aiohttp's client does, by happy eyeballs (RFC 8305: the next address is started after
        `HAPPY_EYEBALLS_DELAY` if the last has not connected, so a host whose IPv6 route is
        broken still connects over IPv4 at once; uvloop's own connect tries them one by one)."""
        if self._closed:
            raise ConnectionLost("the proxy is shutting down")
        extra: dict[str, Any] = {"ssl": self._ssl, "server_hostname": self.host} if self._ssl is not None else {}
        async with asyncio.timeout(self._connect_timeout):
            sock = await aiohappyeyeballs.start_connection(
                await self._addresses(loop), happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY, interleave=1
            )
            try:
                _, conn = await loop.create_connection(lambda: Connection(self), sock=sock, **extra)
            except BaseException:
                sock.close()
                raise
        return conn

    async def _addresses(self, loop: asyncio.AbstractEventLoop) -> list[AddrInfo]:
        now = loop.time()
        if self._resolved is not None and now < self._resolved[0]:
            return self._resolved[1]
        infos: list[AddrInfo] = list(await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM))
        self._resolved = (now + DNS_TTL, infos)
        return infos

    def keep(self, conn: Connection) -> None:
        if self._closed:
            conn.drop()
            return
        loop = self._loop
        assert loop is not None  # a connection comes back only after a request went out
        conn.idle_since = loop.time()
        self._idle.append(conn)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._keepalive, self._sweep)

    def forget(self, conn: Connection) -> None:
        if conn in self._idle:
            self._idle.remove(conn)

    def _sweep(self) -> None:
        """Close connections idle for `keepalive` seconds (providers drop them about then)."""
        self._sweeper = None
        loop = self._loop
        assert loop is not None
        limit = loop.time() - self._keepalive
        for conn in [c for c in self._idle if c.idle_since <= limit]:
            conn.drop()
        if self._idle:
            self._sweeper = loop.call_later(self._keepalive, self._sweep)

    def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._idle):
            conn.drop()
