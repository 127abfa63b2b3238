"""`POST /v1/messages` and `POST /v1/messages/count_tokens`: the Anthropic Messages surface.

To an `anthropic` provider the request goes as it came (only `model` is set by the route) and
the answer comes back byte for byte. To an `openai` provider it is translated to Chat
Completions and the answer, JSON or SSE, translated back; to a `responses` provider, to the
Responses API and back (`responses_translated`).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from ccproxy_core.core.errors import AttemptFailed
from ccproxy_core.core.sse import SSEEvent, anthropic_events, event_payload
from ccproxy_core.core.tokens import estimate_tokens
from ccproxy_core.core.wire import JSON
from ccproxy_core.providers import codex
from ccproxy_core.server import calls, dispatch
from ccproxy_core.server.handlers.common import json_response, read_model_request
from ccproxy_core.server.relay import (
    PING,
    anthropic_stream_error,
    pump_bytes,
    pump_events,
    truncated,
)
from ccproxy_core.server.state import STATE
from ccproxy_core.translate.chat_request import SYNTHETIC_SIGNATURE_PREFIX, messages_to_chat, strip_synthetic_thinking
from ccproxy_core.translate.chat_response import chat_to_message
from ccproxy_core.translate.chat_stream import ChatStreamTranslator

# A cheap byte test first: most bodies never held a thinking block that ccproxy synthesized.
_SYNTHETIC = SYNTHETIC_SIGNATURE_PREFIX.encode()


async def create_message(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    runtime = state.runtime
    raw, body, model, stream = await read_model_request(request)
    candidates = dispatch.plan_request(state, runtime, body, request.headers)

    async def attempt(candidate: dispatch.Candidate) -> web.StreamResponse:
        if candidate.provider.kind == "codex":  # Responses clients only (the scope rule)
            raise AttemptFailed(codex.refusal(candidate.provider.name, "messages"))
        if candidate.provider.kind == "anthropic":
            return await _to_anthropic(request, candidate, raw, body, stream)
        if candidate.provider.kind == "responses":
            from ccproxy_core.server.handlers import responses_translated  # loaded by the first such request

            return await responses_translated.for_messages_client(request, candidate, body, model, stream)
        return await _to_chat(request, candidate, body, model, stream)

    return await dispatch.run(state, candidates, attempt)


def _with_model(raw: bytes, body: JSON, model: str) -> bytes:
    """The body as the client sent it, with only `model` replaced (and forged thinking removed)."""
    cleaned = strip_synthetic_thinking(body) if raw.find(_SYNTHETIC) >= 0 else None
    if cleaned is None and body.get("model") == model:
        return raw
    return orjson.dumps({**(cleaned or body), "model": model})


async def _to_anthropic(
    request: web.Request, candidate: dispatch.Candidate, raw: bytes, body: JSON, stream: bool
) -> web.StreamResponse:
    payload = _with_model(raw, body, candidate.model)
    async with calls.anthropic_call(request, candidate, payload, "messages", stream=stream) as upstream:
        if stream:
            return await pump_bytes(request, upstream.answer, candidate.provider.name, candidate.route_header)
        return await upstream.whole_reply(candidate.route_header)


async def _to_chat(
    request: web.Request, candidate: dispatch.Candidate, body: JSON, client_model: str, stream: bool
) -> web.StreamResponse:
    preset = candidate.provider.preset
    chat, names = messages_to_chat(body, model=candidate.model, dialect=preset.dialect_for(candidate.model))
    async with calls.chat_call(request, candidate, chat, stream=stream) as upstream:
        if not stream:
            data = await upstream.json_body()
            message = chat_to_message(data, model=client_model, names=names)
            return json_response(message, headers=candidate.route_header)
        # message_start needs input tokens before the provider has counted them.
        translator = ChatStreamTranslator(model=client_model, names=names, input_tokens=estimate_tokens(body))

        provider = candidate.provider.name

        def translate(event: SSEEvent) -> list[bytes]:
            if event.data == "[DONE]":
                return anthropic_events(translator.finish())
            chunk = event_payload(event, provider)
            return anthropic_events(translator.feed(chunk)) if chunk is not None else []

        def finish() -> list[bytes]:
            # The body ended: a complete answer is closed; a cut one ends with an error.
            return anthropic_events(
                translator.finish() if translator.complete else translator.fail(truncated(provider))
            )

        return await pump_events(
            request,
            upstream.answer,
            provider,
            extra_headers=candidate.route_header,
            first=anthropic_events(translator.start()),
            translate=translate,
            finish=finish,
            fail=lambda err: anthropic_events(translator.fail(err)),
            on_error=anthropic_stream_error,
            keepalive=PING,
            keepalive_interval=request.app[STATE].config.limits.keepalive_interval,
        )


async def count_tokens(request: web.Request) -> web.StreamResponse:
    """Forwarded to an `anthropic` provider; estimated locally for any other (never a 404)."""
    state = request.app[STATE]
    runtime = state.runtime
    raw, body, _, _ = await read_model_request(request)
    candidates = dispatch.plan_request(state, runtime, body, request.headers)

    def estimate(candidate: dispatch.Candidate) -> web.Response:
        # Made only when it is the answer: Claude Code calls this endpoint constantly.
        return json_response({"input_tokens": estimate_tokens(body)}, headers=candidate.route_header)

    async def attempt(candidate: dispatch.Candidate) -> web.StreamResponse:
        if candidate.provider.kind != "anthropic":
            return estimate(candidate)
        payload = _with_model(raw, body, candidate.model)
        try:
            async with calls.anthropic_call(request, candidate, payload, "count_tokens", stream=False) as upstream:
                return await upstream.whole_reply(candidate.route_header)
        except AttemptFailed as exc:
            if exc.error.http_status == 404:  # an Anthropic-compatible upstream without the endpoint
                return estimate(candidate)
            raise

    return await dispatch.run(state, candidates, attempt)
