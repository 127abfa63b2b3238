"""Calling a provider: the `Upstream` interface, its implementation over ccproxy's own HTTP/1.1
client (server/http1.py), and the one place where transport failures become ccproxy errors.

    Upstream.send(url, headers, body, stream=) -> Answer   headers read, body not yet consumed
    Answer.read() / readany()                               the body, whole or as it arrives
    Answer.close()                                          drop the connection (cancels upstream)

The caller decides, before any byte reached the client, whether to pass an answer on, translate
it, or fail over. Every transport failure, at send or at any read, is raised as a `ProxyError`
(`UpstreamUnreachable`, `UpstreamTimeout`, `StreamStalled`), so nothing above this module knows
socket or protocol exceptions. A stream may run as long as it keeps talking: it ends when the
provider sends nothing for `stream_idle_timeout`, exactly the stall Claude Code would otherwise
wait on forever. Any other answer must be complete within `request_timeout`.

`tests/fake_upstream.py` implements the same interface in memory, so failover, pool and breaker
behaviour are tested without sockets; the integration tests use this module against real fakes.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

from attrs import define, field
from multidict import CIMultiDictProxy

from ccproxy_core.config.model import LimitsConfig
from ccproxy_core.core.errors import ProxyError, UpstreamTimeout, UpstreamUnreachable
from ccproxy_core.core.http1 import ProtocolError
from ccproxy_core.server.http1 import Pool
from ccproxy_core.server.http1_exchange import HEAD, STREAM, ConnectionLost, ErrorMapper, Timeouts, reason

KEEPALIVE = 15.0  # seconds an idle connection to a provider is kept for the next request


class StreamStalled(UpstreamTimeout):
    """The provider sent nothing for `stream_idle_timeout` seconds in the middle of a stream."""

    _type = "overloaded_error"  # what makes Claude Code retry


class Answer(Protocol):
    """One upstream answer: status and headers in hand, the body still to read."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> CIMultiDictProxy[str]: ...

    @property
    def content_type(self) -> str: ...

    async def read(self) -> bytes:
        """The whole body."""
        ...

    async def readany(self) -> bytes:
        """The next bytes of the body as they arrive; b"" at its end. The pumps read a stream with
        it, chunk after chunk: a coroutine per chunk costs less than an async generator's step."""
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
    why = f": {reason(exc)}" if exc is not None else ""
    return UpstreamUnreachable(f"provider {name!r} broke off its answer{why}")


@define
class Http1Upstream:
    """`Upstream` over ccproxy's own HTTP/1.1 client (server/http1.py): one keep-alive pool per
    provider origin, the request's URL split once and remembered."""

    name: str
    base_url: str
    limits: LimitsConfig
    _targets: dict[str, tuple[Pool, str, str]] = field(factory=dict, init=False)
    _pools: dict[tuple[str, str, int], Pool] = field(factory=dict, init=False)
    _timeouts: dict[bool, Timeouts] = field(init=False)
    _errors: dict[bool, ErrorMapper] = field(init=False)

    @_timeouts.default
    def _make_timeouts(self) -> dict[bool, Timeouts]:
        # A stream may last as long as it keeps talking; any other answer has request_timeout in all.
        limits = self.limits
        return {True: Timeouts(limits.stream_idle_timeout, None), False: Timeouts(None, limits.request_timeout)}

    @_errors.default
    def _make_errors(self) -> dict[bool, ErrorMapper]:
        return {stream: functools.partial(self._error, stream) for stream in (True, False)}

    async def send(self, url: str, headers: Mapping[str, str], body: bytes, *, stream: bool) -> Answer:
        try:
            pool, target, host = self._targets[url]
        except KeyError:
            pool, target, host = self._target(url)
        try:
            return await pool.post(target, host, headers, body, self._timeouts[stream], self._errors[stream])
        except TimeoutError as exc:  # only the connect can time out here: the answer's wait maps its own
            raise UpstreamUnreachable(
                f"provider {self.name!r} could not be reached at {self.base_url}: no "
                f"connection within {self.limits.connect_timeout:g} s"
            ) from exc
        except (OSError, ConnectionLost) as exc:
            raise UpstreamUnreachable(
                f"provider {self.name!r} could not be reached at {self.base_url}: {reason(exc)}"
            ) from exc
        except ValueError as exc:
            raise ProxyError(f"a header configured for provider {self.name!r} is invalid: {exc}") from exc

    def _target(self, url: str) -> tuple[Pool, str, str]:
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname or ""
        if scheme not in ("http", "https") or not host:
            raise UpstreamUnreachable(f"provider {self.name!r}: {url!r} is not an http(s) URL")
        default_port = 443 if scheme == "https" else 80
        port = parts.port or default_port
        key = (scheme, host, port)
        pool = self._pools.get(key)
        if pool is None:
            tls = _tls_context() if scheme == "https" else None
            pool = self._pools[key] = Pool(host, port, tls, self.limits.connect_timeout, KEEPALIVE)
        host_header = (f"[{host}]" if ":" in host else host) + ("" if port == default_port else f":{port}")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        entry = (pool, target, host_header)
        if len(self._targets) < 256:  # a provider's URLs are a handful; never grow without bound
            self._targets[url] = entry
        return entry

    def _error(self, stream: bool, exc: BaseException, stage: int) -> ProxyError:
        if isinstance(exc, TimeoutError):
            return timed_out(self.name, self.limits, stream=stream, started=stage == STREAM)
        if stage == HEAD:
            what = "sent a malformed answer" if isinstance(exc, ProtocolError) else "could not be reached"
            return UpstreamUnreachable(f"provider {self.name!r} {what} at {self.base_url}: {reason(exc)}")
        return broke_off(self.name, exc)

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self._targets.clear()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The system's trusted CAs, certificates and host names verified (built on first use)."""
    return ssl.create_default_context()
