"""The upstream boundary: aiohttp's failures become ccproxy errors that name the provider."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from ccproxy_core.config.model import LimitsConfig
from ccproxy_core.core.errors import ProxyError, UpstreamTimeout, UpstreamUnreachable
from ccproxy_core.server.upstream import AiohttpAnswer, AiohttpUpstream, StreamStalled


class _Raising:
    closed = False

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def post(self, *args: Any, **kwargs: Any) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "kind", "status", "words"),
    [
        (aiohttp.ConnectionTimeoutError(), UpstreamUnreachable, 502, "no connection within 3 s"),
        (aiohttp.ServerTimeoutError(), UpstreamTimeout, 504, "did not answer within 9 s"),
        (TimeoutError(), UpstreamTimeout, 504, "did not answer within 9 s"),
        (aiohttp.ServerDisconnectedError(), UpstreamUnreachable, 502, "could not be reached"),
        (aiohttp.ClientPayloadError("cut"), UpstreamUnreachable, 502, "could not be reached"),
    ],
)
async def test_failures_map_to_502_or_504_naming_the_provider(
    exc: BaseException, kind: type, status: int, words: str
) -> None:
    upstream = AiohttpUpstream("acme", "http://127.0.0.1:9", LimitsConfig(connect_timeout=3, request_timeout=9))  # type: ignore[arg-type]
    upstream._session = _Raising(exc)  # type: ignore[assignment]
    with pytest.raises(ProxyError) as info:
        await upstream.send("http://127.0.0.1:9/v1/messages", {}, b"{}", stream=False)
    assert isinstance(info.value, kind)
    assert info.value.http_status == status
    assert "'acme'" in info.value.message and words in info.value.message


class _Content:
    def __init__(self, *reads: bytes | BaseException) -> None:
        self.reads = list(reads)

    async def readany(self) -> bytes:
        item = self.reads.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


class _Response:
    status = 200
    headers: dict[str, str] = {}  # noqa: RUF012 (a stand-in, never mutated)

    def __init__(self, content: _Content) -> None:
        self.content = content


def _answer(*reads: bytes | BaseException) -> AiohttpAnswer:
    upstream = AiohttpUpstream("acme", "http://127.0.0.1:9", LimitsConfig(stream_idle_timeout=7))  # type: ignore[arg-type]
    return AiohttpAnswer(_Response(_Content(*reads)), upstream, stream=True)  # type: ignore[arg-type]


async def test_a_stream_silent_before_its_first_bytes_did_not_answer() -> None:
    """A timeout before any body byte is the provider not answering (504), not a stall."""
    with pytest.raises(UpstreamTimeout) as info:
        await _answer(TimeoutError()).readany()
    assert not isinstance(info.value, StreamStalled)
    assert "did not answer within 7 s" in info.value.message


async def test_a_stream_silent_after_its_first_bytes_has_stalled() -> None:
    """Read chunk by chunk with readany, a timeout after the first bytes is a stall mid-stream."""
    answer = _answer(b"event: ping\n\n", TimeoutError())
    assert await answer.readany() == b"event: ping\n\n"
    with pytest.raises(StreamStalled) as info:
        await answer.readany()
    assert "sent nothing for 7 s" in info.value.message
