"""The upstream boundary: aiohttp's failures become ccproxy errors that name the provider."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from ccproxy_core.config.model import LimitsConfig
from ccproxy_core.core.errors import ProxyError, UpstreamTimeout, UpstreamUnreachable
from ccproxy_core.server.upstream import AiohttpUpstream


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
