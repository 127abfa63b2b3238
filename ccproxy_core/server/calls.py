"""One call to one provider, with its credential, its headers and its error handling.

`anthropic_call` and `chat_call` are async context managers: they walk the provider's
credentials (one upstream call per attempt), and on an error answer decide, before anything
reached the client, whether to try the next credential (a rate-limited account, a refreshed
token), the next provider (`AttemptFailed`, whose `outcome` says whether another may do better),
or to hand the provider's own answer to the client as it is. On success they yield the live
upstream answer and close it when the caller is done, which is what cancels the upstream
request when a client goes away.

What an answer means is decided once, by `core.outcome.classify`; the pool, this loop, the
provider failover and the breaker all read that one `Outcome`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from attrs import frozen

from ccproxy_core.core import sticky
from ccproxy_core.core.errors import AttemptFailed, UpstreamError, UpstreamTimeout, UpstreamUnreachable
from ccproxy_core.core.failover import Step
from ccproxy_core.core.headers import (
    ACCEPT_ENCODING,
    CREDENTIAL_HEADERS,
    IDENTITY,
    client_response_headers,
    error_headers,
    upstream_request_headers,
)
from ccproxy_core.core.outcome import classify, no_answer
from ccproxy_core.core.wire import JSON
from ccproxy_core.providers import rules
from ccproxy_core.server import reqlog, sessions
from ccproxy_core.server.state import STATE, ProviderRuntime
from ccproxy_core.server.upstream import Answer

if TYPE_CHECKING:
    from ccproxy_core.server.dispatch import Candidate


@frozen
class UpstreamReply:
    provider: ProviderRuntime
    answer: Answer

    async def body(self) -> bytes:
        """The whole answer; the client has nothing yet, so a broken read may still fail over."""
        try:
            data = await self.answer.read()
        except (UpstreamUnreachable, UpstreamTimeout) as exc:
            raise AttemptFailed(exc, outcome=no_answer(exc.message)) from exc
        reqlog.upstream_body(data)
        return data

    async def json_body(self) -> Any:
        data = await self.body()
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            error = UpstreamError(
                502,
                "api_error",
                f"provider {self.provider.name!r} answered with invalid JSON: {data[:200].decode('utf-8', 'replace')}",
            )
            raise AttemptFailed(error, outcome=no_answer(error.message)) from None

    async def whole_reply(self, extra_headers: dict[str, str]) -> web.Response:
        return _relayed(self.answer, await self.body(), extra_headers)


def _relayed(answer: Answer, data: bytes, extra_headers: Mapping[str, str]) -> web.Response:
    """The provider's answer as the client gets it: its status, its body (`data`), its end-to-end
    headers, and ccproxy's own (`extra_headers`) set over them."""
    headers = client_response_headers(answer.headers)
    headers.update(extra_headers)
    return web.Response(status=answer.status, body=data, headers=headers)


def _query(request: web.Request) -> str:
    return f"?{request.query_string}" if request.query_string else ""


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


def anthropic_call(
    request: web.Request, candidate: Candidate, payload: bytes, endpoint: str, *, stream: bool, passthrough: bool = True
) -> AbstractAsyncContextManager[UpstreamReply]:
    """Send a Messages-API request to an `anthropic` provider.

    `passthrough`: an Anthropic client is talking, so its headers go along and the provider's own
    error answer is passed on unchanged; otherwise the error is rendered in the client's dialect."""
    provider = candidate.provider
    base = _base_headers(request, provider, passthrough)
    url = provider.url(endpoint) + _query(request)
    return _Call(
        request,
        candidate,
        url,
        base,
        payload,
        stream=stream,
        relay_errors=passthrough,
        read_error=UpstreamError.from_anthropic,
    )


def chat_call(
    request: web.Request, candidate: Candidate, chat: JSON, *, stream: bool, passthrough: bool = False
) -> AbstractAsyncContextManager[UpstreamReply]:
    """Send a Chat Completions request to an `openai` provider, with the provider's quirks applied.

    `passthrough`: an OpenAI client is talking, so its headers go along and the provider's own
    error answer is passed on unchanged; otherwise the error is rendered in the client's dialect."""
    provider = candidate.provider
    body = orjson.dumps(rules.apply_preset(chat, provider.preset, candidate.model))
    base = _base_headers(request, provider, passthrough)
    base.update({"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"})
    return _Call(
        request,
        candidate,
        provider.url("chat"),
        base,
        body,
        stream=stream,
        relay_errors=passthrough,
        read_error=UpstreamError.from_openai,
    )


def responses_call(
    request: web.Request, candidate: Candidate, payload: bytes, *, stream: bool, passthrough: bool = True
) -> AbstractAsyncContextManager[UpstreamReply]:
    """Send a Responses-API request to a provider that speaks it (`kind: "responses"`, a codex pool).

    `passthrough`: a Responses client is talking, so its headers go along and the provider's own
    error answer is passed on unchanged; otherwise the error is rendered in the client's dialect."""
    provider = candidate.provider
    base = _base_headers(request, provider, passthrough)
    base.update({"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"})
    return _Call(
        request,
        candidate,
        provider.url("responses"),
        base,
        payload,
        stream=stream,
        relay_errors=passthrough,
        read_error=UpstreamError.from_openai,
    )


ErrorReader = Callable[[int, Any, "dict[str, str] | None"], UpstreamError]


class _Call:
    """One call to a provider: entering runs the attempt loop over its credentials (one upstream
    call per attempt) and holds the answer that succeeded; leaving closes it. A class rather than
    a generator-based context manager, which costs a generator and its frames on every request."""

    __slots__ = ("_answer", "_args", "_candidate", "_request")

    def __init__(
        self,
        request: web.Request,
        candidate: Candidate,
        url: str,
        base: dict[str, str],
        body: bytes,
        *,
        stream: bool,
        relay_errors: bool,
        read_error: ErrorReader,
    ) -> None:
        self._request = request
        self._candidate = candidate
        self._args = (url, base, body, stream, relay_errors, read_error)
        self._answer: Answer | None = None

    async def __aenter__(self) -> UpstreamReply:
        self._answer = await _attempt_loop(self._request, self._candidate, *self._args)
        return UpstreamReply(self._candidate.provider, self._answer)

    async def __aexit__(self, *_: object) -> None:
        if self._answer is not None:
            self._answer.close()


async def _attempt_loop(
    request: web.Request,
    candidate: Candidate,
    url: str,
    base: dict[str, str],
    body: bytes,
    stream: bool,
    relay_errors: bool,
    read_error: ErrorReader,
) -> Answer:
    """The upstream answer that succeeded (its body still to read), or `AttemptFailed`."""
    provider = candidate.provider
    upstream = provider.upstream
    _add_missing(base, provider.preset.extra_headers)
    attempts = request.app[STATE].attempts(provider, request.headers, sessions.of(request))
    credential = attempts.first()
    resigned = False  # one retry without earlier thinking blocks (a moved conversation's signatures)
    while True:
        headers = {**base, **credential.headers(base)}
        try:
            answer = await upstream.send(url, headers, body, stream=stream)
            if answer.status >= 400:
                data = await answer.read()
                answer.release()
        except (UpstreamUnreachable, UpstreamTimeout) as exc:
            # Nothing has reached the client yet: a provider that cannot be reached or read may be replaced.
            reqlog.attempt(credential.name, None)
            raise AttemptFailed(exc, outcome=no_answer(exc.message)) from exc
        reqlog.attempt(credential.name, answer.status, answer.headers)
        if answer.status < 400:
            attempts.succeeded(answer.headers)
            return answer
        outcome = classify(answer.status, answer.headers, data)
        step = attempts.failed(outcome, answer.headers)
        if step is Step.RELAY and not resigned and (stripped := _without_thinking(answer.status, data, body)):
            body, resigned = stripped, True  # the same credential again, the history's signatures left out
            continue
        if step is Step.REFRESH:
            await attempts.refresh()
        if step is not Step.RELAY:
            credential = attempts.next()  # this credential is limited or stale; the pool has another
            continue
        rejected = attempts.rejection(outcome)
        if rejected is not None:
            raise AttemptFailed(rejected, outcome=outcome)
        error = read_error(answer.status, _json_or_bytes(data), error_headers(answer.headers.items()))
        error.message = f"{provider.name}: {error.message}"
        reply = _relayed(answer, data, candidate.route_header) if relay_errors else None
        raise AttemptFailed(error, outcome=outcome, reply=reply)


def _without_thinking(status: int, data: bytes, body: bytes) -> bytes | None:
    """After a 400 on the history's thinking signatures: the body without earlier thinking, or None."""
    if not sticky.is_signature_error(status, data):
        return None
    try:
        stripped = sticky.without_earlier_thinking(orjson.loads(body))
    except orjson.JSONDecodeError:
        return None
    return None if stripped is None else orjson.dumps(stripped)


def _add_missing(headers: dict[str, str], extra: Mapping[str, str]) -> None:
    """The preset's headers (and the provider's configured ones) unless the client sent them."""
    for name, value in extra.items():
        headers.setdefault(name.lower(), value)


def _json_or_bytes(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
