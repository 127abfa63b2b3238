"""One call to one provider, with its credential, its headers and its error handling.

`anthropic_call` and `chat_call` are async context managers: they pick a credential, send the
request, and on an error answer decide, before anything reached the client, whether to try the
next credential of the same provider (a rate-limited account), the next provider (`AttemptFailed`
with `retryable=True`), or to hand the provider's own answer to the client as it is. On success
they yield the live upstream response, and close it when the caller is done, which is what
cancels the upstream request when a client goes away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import aclosing, asynccontextmanager, contextmanager
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from attrs import frozen

from ccproxy_core.core.errors import JSON, AttemptFailed, UpstreamError, UpstreamTimeout, UpstreamUnreachable
from ccproxy_core.core.headers import (
    ACCEPT_ENCODING,
    CREDENTIAL_HEADERS,
    IDENTITY,
    client_response_headers,
    error_headers,
    upstream_request_headers,
)
from ccproxy_core.providers import presets
from ccproxy_core.server.credentials import Credentials
from ccproxy_core.server.state import STATE, ProviderRuntime

# Statuses after which another provider may do better: rate limits, server errors, overload.
FAILOVER_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@frozen
class UpstreamReply:
    provider: ProviderRuntime
    response: aiohttp.ClientResponse

    async def body(self) -> bytes:
        """The whole answer; the client has nothing yet, so a broken read may still fail over."""
        with _before_first_byte():
            return await self.provider.upstream.read_body(self.response)

    async def json_body(self) -> Any:
        data = await self.body()
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                502,
                "api_error",
                f"provider {self.provider.name!r} answered with invalid JSON: {data[:200].decode('utf-8', 'replace')}",
            ) from None

    async def whole_reply(self, extra_headers: dict[str, str]) -> web.Response:
        data = await self.body()
        headers = client_response_headers(self.response.headers.items())
        headers.update(extra_headers)
        return web.Response(status=self.response.status, body=data, headers=headers)


def _query(request: web.Request) -> str:
    return f"?{request.query_string}" if request.query_string else ""


@contextmanager
def _before_first_byte() -> Iterator[None]:
    """Nothing has reached the client yet: a provider that cannot be reached or read may be replaced."""
    try:
        yield
    except (UpstreamUnreachable, UpstreamTimeout) as exc:
        raise AttemptFailed(exc, retryable=True) from exc


def _base_headers(request: web.Request, provider: ProviderRuntime, passthrough: bool) -> dict[str, str]:
    """What goes upstream besides the provider's credential.

    A client speaking the provider's own dialect has its end-to-end headers forwarded as they
    are (what it says about itself is not ccproxy's to change). A translated request carries only
    what the protocol needs; either way a transparent provider gets the client's own credential.
    """
    keep = provider.transparent and not request.app[STATE].config.apikey
    if passthrough:
        return upstream_request_headers(request.headers.items(), keep_credentials=keep)
    base = {"content-type": "application/json", ACCEPT_ENCODING: IDENTITY}
    if keep:
        base.update(
            (name.lower(), value) for name, value in request.headers.items() if name.lower() in CREDENTIAL_HEADERS
        )
    return base


@asynccontextmanager
async def anthropic_call(
    request: web.Request, candidate: Any, payload: bytes, endpoint: str, *, stream: bool, passthrough: bool = True
) -> AsyncIterator[UpstreamReply]:
    """Send a Messages-API request to an `anthropic` provider.

    `passthrough`: an Anthropic client is talking, so its headers go along and the provider's own
    error answer is passed on unchanged; otherwise the error is rendered in the client's dialect."""
    provider: ProviderRuntime = candidate.provider
    base = _base_headers(request, provider, passthrough)
    url = provider.url(endpoint) + _query(request)
    async with _call(
        request,
        candidate,
        url,
        base,
        payload,
        stream=stream,
        relay_errors=passthrough,
        read_error=UpstreamError.from_anthropic,
    ) as reply:
        yield reply


@asynccontextmanager
async def chat_call(
    request: web.Request, candidate: Any, chat: JSON, *, stream: bool, passthrough: bool = False
) -> AsyncIterator[UpstreamReply]:
    """Send a Chat Completions request to an `openai` provider, with the provider's quirks applied.

    `passthrough`: an OpenAI client is talking, so its headers go along and the provider's own
    error answer is passed on unchanged; otherwise the error is rendered in the client's dialect."""
    provider: ProviderRuntime = candidate.provider
    body = orjson.dumps(presets.apply_preset(chat, provider.preset, candidate.model))
    base = _base_headers(request, provider, passthrough)
    base.update({"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"})
    async with _call(
        request,
        candidate,
        provider.url("chat"),
        base,
        body,
        stream=stream,
        relay_errors=passthrough,
        read_error=UpstreamError.from_openai,
    ) as reply:
        yield reply


ErrorReader = Callable[[int, Any, "dict[str, str] | None"], UpstreamError]


@asynccontextmanager
async def _call(
    request: web.Request,
    candidate: Any,
    url: str,
    base: dict[str, str],
    body: bytes,
    *,
    stream: bool,
    relay_errors: bool,
    read_error: ErrorReader,
) -> AsyncIterator[UpstreamReply]:
    """The attempt loop over a provider's credentials: one upstream call per attempt."""
    provider: ProviderRuntime = candidate.provider
    _add_missing(base, provider.preset.extra_headers)
    credentials: Credentials = request.app[STATE].credentials(provider, request.headers)
    async with aclosing(credentials.attempts()) as attempts:
        async for credential in attempts:
            headers = {**base, **credential.headers(base)}
            with _before_first_byte():
                response = await provider.upstream.send(url, headers, body, stream=stream)
            if response.status < 400:
                credentials.succeeded(credential, response.headers)
                try:
                    yield UpstreamReply(provider, response)
                finally:
                    response.close()
                return
            with _before_first_byte():
                data = await provider.upstream.read_body(response)
            response.release()
            if credentials.failed(credential, response.status, response.headers, data):
                continue  # this credential is limited or stale; the pool has the next one
            reply_headers = client_response_headers(response.headers.items())
            reply_headers.update(candidate.route_header)
            error = read_error(response.status, _json_or_bytes(data), error_headers(response.headers.items()))
            error.message = f"{provider.name}: {error.message}"
            reply = web.Response(status=response.status, body=data, headers=reply_headers) if relay_errors else None
            retryable = credentials.worth_another_provider(response.status, response.status in FAILOVER_STATUSES)
            raise AttemptFailed(error, reply=reply, retryable=retryable)


def _add_missing(headers: dict[str, str], extra: Mapping[str, str]) -> None:
    """The preset's headers (and the provider's configured ones) unless the client sent them."""
    for name, value in extra.items():
        headers.setdefault(name.lower(), value)


def _json_or_bytes(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
