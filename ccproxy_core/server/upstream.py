"""Calling a provider: one pooled `aiohttp.ClientSession` per provider, and the one place where
aiohttp's exceptions become ccproxy errors.

`Upstream.send` returns the response with its headers read and its body not yet consumed, so
the caller can decide (before any byte reached the client) whether to pass it on, translate it,
or fail over. Streams get a socket-read timeout equal to `stream_idle_timeout`: aiohttp resets
it whenever bytes arrive, so it fires only when the provider goes silent, which is exactly the
stall Claude Code would otherwise wait on forever.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from attrs import define, field

from ccproxy_core.config.model import LimitsConfig
from ccproxy_core.core.errors import UpstreamTimeout, UpstreamUnreachable


class StreamStalled(UpstreamTimeout):
    """The provider sent nothing for `stream_idle_timeout` seconds in the middle of a stream."""

    error_type = "overloaded_error"  # what makes Claude Code retry


@define
class Upstream:
    """A provider's connection pool and the timeouts that apply to it."""

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

    def timeout(self, stream: bool) -> aiohttp.ClientTimeout:
        return self._timeouts[stream]

    @_timeouts.default
    def _make_timeouts(self) -> dict[bool, aiohttp.ClientTimeout]:
        # Built once: the same two timeouts serve every request to this provider.
        return {
            True: aiohttp.ClientTimeout(
                total=None, sock_connect=self.limits.connect_timeout, sock_read=self.limits.stream_idle_timeout
            ),
            False: aiohttp.ClientTimeout(total=self.limits.request_timeout, sock_connect=self.limits.connect_timeout),
        }

    async def send(self, url: str, headers: Mapping[str, str], body: bytes, *, stream: bool) -> aiohttp.ClientResponse:
        try:
            return await self.session.post(url, data=body, headers=headers, timeout=self.timeout(stream))
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
            raise self.timed_out(stream, started=False) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(f"provider {self.name!r} failed: {_reason(exc)}") from exc

    def timed_out(self, stream: bool, *, started: bool) -> UpstreamTimeout:
        if started:
            return StreamStalled(
                f"provider {self.name!r} sent nothing for {self.limits.stream_idle_timeout:g} s; the stream was ended"
            )
        limit = self.limits.stream_idle_timeout if stream else self.limits.request_timeout
        return UpstreamTimeout(f"provider {self.name!r} did not answer within {limit:g} s")

    async def read_body(self, response: aiohttp.ClientResponse) -> bytes:
        """The whole body of a non-streaming answer, with the same error mapping as `send`."""
        try:
            return await response.read()
        except TimeoutError as exc:
            raise self.timed_out(False, started=False) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(f"provider {self.name!r} dropped the connection: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
