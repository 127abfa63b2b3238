"""Calling a provider: the `Upstream` interface, its aiohttp implementation, and the one place
where aiohttp's exceptions become ccproxy errors.

    Upstream.send(url, headers, body, stream=) -> Answer   headers read, body not yet consumed
    Answer.read() / readany() / chunks()                    the body, whole or as it arrives
    Answer.close()                                          drop the connection (cancels upstream)

The caller decides, before any byte reached the client, whether to pass an answer on, translate
it, or fail over. Every transport failure, at send or at any read, is raised as a `ProxyError`
(`UpstreamUnreachable`, `UpstreamTimeout`, `StreamStalled`), so nothing above this module knows
aiohttp's exceptions. Streams get a socket-read timeout equal to `stream_idle_timeout`: aiohttp
resets it whenever bytes arrive, so it fires only when the provider goes silent, which is exactly
the stall Claude Code would otherwise wait on forever.

`tests/fake_upstream.py` implements the same interface in memory, so failover, pool and breaker
behaviour are tested without sockets; the integration tests use this module against real fakes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Protocol

import aiohttp
from attrs import define, field

from ccproxy_core.config.model import LimitsConfig
from ccproxy_core.core.errors import ProxyError, UpstreamTimeout, UpstreamUnreachable


class StreamStalled(UpstreamTimeout):
    """The provider sent nothing for `stream_idle_timeout` seconds in the middle of a stream."""

    _type = "overloaded_error"  # what makes Claude Code retry


class Answer(Protocol):
    """One upstream answer: status and headers in hand, the body still to read."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content_type(self) -> str: ...

    async def read(self) -> bytes:
        """The whole body."""
        ...

    async def readany(self) -> bytes:
        """The next bytes of the body as they arrive; b"" at its end. The pumps read a stream with
        it, chunk after chunk: a coroutine per chunk costs less than an async generator's step."""
        ...

    def chunks(self) -> AsyncGenerator[bytes, None]:
        """The rest of the body, piece by piece as it arrives."""
        ...

    def close(self) -> None:
        """Drop the connection (the provider sees the request cancelled)."""
        ...

    def release(self) -> None:
        """Done with a fully read body: the connection may serve another request."""
        ...


class Upstream(Protocol):
    """A provider's connection pool and the timeouts that apply to it."""

    @property
    def name(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    @property
    def limits(self) -> LimitsConfig: ...

    async def send(self, url: str, headers: Mapping[str, str], body: bytes, *, stream: bool) -> Answer: ...

    async def close(self) -> None: ...


def timed_out(name: str, limits: LimitsConfig, *, stream: bool, started: bool) -> UpstreamTimeout:
    """The error for a provider that went silent: mid-stream, or before it answered."""
    if started:
        return StreamStalled(
            f"provider {name!r} sent nothing for {limits.stream_idle_timeout:g} s; the stream was ended"
        )
    limit = limits.stream_idle_timeout if stream else limits.request_timeout
    return UpstreamTimeout(f"provider {name!r} did not answer within {limit:g} s")


def broke_off(name: str, exc: BaseException | None = None) -> UpstreamUnreachable:
    why = f": {_reason(exc)}" if exc is not None else ""
    return UpstreamUnreachable(f"provider {name!r} broke off its answer{why}")


@define
class AiohttpUpstream:
    """`Upstream` over one pooled `aiohttp.ClientSession` per provider."""

    name: str
    base_url: str
    limits: LimitsConfig
    _session: aiohttp.ClientSession | None = field(default=None, init=False)
    _timeouts: dict[bool, aiohttp.ClientTimeout] = field(init=False)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(
                connector=connector,
                # A proxy must not carry one client's provider cookies into another's request,
                # and skipping the jar is measurably cheaper per request.
                cookie_jar=aiohttp.DummyCookieJar(),
                # We ask for identity, and providers send it, so nothing is decoded or re-encoded.
                # One that compresses regardless is decoded chunk by chunk (its header is dropped
                # on the way to the client), so the client never gets bytes it cannot read.
                auto_decompress=True,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
                raise_for_status=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @_timeouts.default
    def _make_timeouts(self) -> dict[bool, aiohttp.ClientTimeout]:
        # Built once: the same two timeouts serve every request to this provider.
        return {
            True: aiohttp.ClientTimeout(
                total=None, sock_connect=self.limits.connect_timeout, sock_read=self.limits.stream_idle_timeout
            ),
            False: aiohttp.ClientTimeout(total=self.limits.request_timeout, sock_connect=self.limits.connect_timeout),
        }

    async def send(self, url: str, headers: Mapping[str, str], body: bytes, *, stream: bool) -> Answer:
        try:
            response = await self.session.post(url, data=body, headers=headers, timeout=self._timeouts[stream])
        except aiohttp.ConnectionTimeoutError as exc:  # before TimeoutError: it is one too
            raise UpstreamUnreachable(
                f"provider {self.name!r} could not be reached at {self.base_url}: no "
                f"connection within {self.limits.connect_timeout:g} s"
            ) from exc
        except (
            aiohttp.ClientConnectorError,
            aiohttp.ServerDisconnectedError,
            aiohttp.ClientOSError,
            aiohttp.ClientPayloadError,
        ) as exc:
            raise UpstreamUnreachable(
                f"provider {self.name!r} could not be reached at {self.base_url}: {_reason(exc)}"
            ) from exc
        except TimeoutError as exc:
            raise timed_out(self.name, self.limits, stream=stream, started=False) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(f"provider {self.name!r} failed: {_reason(exc)}") from exc
        return AiohttpAnswer(response, self, stream)


class AiohttpAnswer:
    """`Answer` over an `aiohttp.ClientResponse`, with its read errors mapped to ccproxy errors."""

    __slots__ = ("_response", "_started", "_stream", "_upstream", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse, upstream: AiohttpUpstream, stream: bool) -> None:
        self._response = response
        self._upstream = upstream
        self._stream = stream
        self._started = False  # a chunk of the body came: a timeout from now on is a stall mid-stream
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    @property
    def content_type(self) -> str:
        return self._response.content_type

    def _error(self, exc: BaseException, *, started: bool) -> ProxyError:
        if isinstance(exc, TimeoutError):
            return timed_out(self._upstream.name, self._upstream.limits, stream=self._stream, started=started)
        return broke_off(self._upstream.name, exc)

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._error(exc, started=False) from exc

    async def readany(self) -> bytes:
        try:
            chunk = await self._response.content.readany()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._error(exc, started=self._started) from exc
        self._started = True
        return chunk

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._error(exc, started=True) from exc

    def close(self) -> None:
        self._response.close()

    def release(self) -> None:
        self._response.release()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
