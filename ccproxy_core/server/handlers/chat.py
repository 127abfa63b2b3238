"""`POST /v1/chat/completions`: the OpenAI Chat Completions surface.

Routed to an `openai` provider the request passes through (model set by the route, the
provider's quirks applied) and so does the answer. Routed to an `anthropic` provider it is
translated to Messages and the JSON or SSE answer translated back to `chat.completion` /
`chat.completion.chunk`, ending in `data: [DONE]`; routed to a `responses` provider, the same
Messages request goes on to the Responses API (`responses_translated`).
"""

from __future__ import annotations

import time

import orjson
from aiohttp import web

from ccproxy_core.core.errors import AttemptFailed, ProxyError, openai_status_and_body
from ccproxy_core.core.sse import DONE, SSEEvent, data_event, data_events, event_payload
from ccproxy_core.core.wire import JSON
from ccproxy_core.providers import codex
from ccproxy_core.server import calls, dispatch
from ccproxy_core.server.handlers.common import json_response, read_model_request
from ccproxy_core.server.relay import OPENAI_END, pump_bytes, pump_events, truncated
from ccproxy_core.server.state import STATE
from ccproxy_core.translate.messages_request import chat_to_messages
from ccproxy_core.translate.messages_response import message_to_chat
from ccproxy_core.translate.messages_stream import MessagesStreamTranslator


def openai_stream_error(err: ProxyError) -> bytes:
    return data_event(openai_status_and_body(err)[1])


async def create_completion(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    runtime = state.runtime
    _, body, model, stream = await read_model_request(request)
    options = body.get("stream_options")
    include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
    messages_body, json_mode = chat_to_messages(body, model=model)
    candidates = dispatch.plan_request(state, runtime, messages_body, request.headers)

    async def attempt(candidate: dispatch.Candidate) -> web.StreamResponse:
        if candidate.provider.kind == "codex":  # Responses clients only (the scope rule)
            raise AttemptFailed(codex.refusal(candidate.provider.name, "chat"))
        if candidate.provider.kind == "openai":
            return await _passthrough(request, candidate, body, stream)
        if candidate.provider.kind == "responses":
            from ccproxy_core.server.handlers import responses_translated  # loaded by the first such request

            return await responses_translated.for_chat_client(
                request,
                candidate,
                messages_body,
                model,
                stream,
                include_usage=include_usage,
                json_mode=json_mode,
                effort=body.get("reasoning_effort"),
                on_error=openai_stream_error,
            )
        return await _to_anthropic(request, candidate, messages_body, model, stream, include_usage, json_mode)

    return await dispatch.run(state, candidates, attempt)


async def _passthrough(
    request: web.Request, candidate: dispatch.Candidate, body: JSON, stream: bool
) -> web.StreamResponse:
    async with calls.chat_call(
        request, candidate, {**body, "model": candidate.model}, stream=stream, passthrough=True
    ) as upstream:
        if stream:
            return await pump_bytes(
                request,
                upstream.answer,
                candidate.provider.name,
                candidate.route_header,
                end=OPENAI_END,
                on_error=openai_stream_error,
            )
        return await upstream.whole_reply(candidate.route_header)


async def _to_anthropic(
    request: web.Request,
    candidate: dispatch.Candidate,
    messages_body: JSON,
    client_model: str,
    stream: bool,
    include_usage: bool,
    json_mode: bool,
) -> web.StreamResponse:
    payload = orjson.dumps({**messages_body, "model": candidate.model})
    created = int(time.time())
    # anthropic-version comes from the provider's preset (every Anthropic-kind preset sends it).
    async with calls.anthropic_call(
        request, candidate, payload, "messages", stream=stream, passthrough=False
    ) as upstream:
        if not stream:
            data = await upstream.json_body()
            return json_response(
                message_to_chat(data, model=client_model, json_mode=json_mode, created=created),
                headers=candidate.route_header,
            )
        translator = MessagesStreamTranslator(
            model=client_model, include_usage=include_usage, json_mode=json_mode, created=created
        )

        provider = candidate.provider.name

        def translate(event: SSEEvent) -> list[bytes]:
            payload = event_payload(event, provider)
            if payload is None:
                return []
            return data_events(translator.feed(event.event or str(payload.get("type", "")), payload))

        def finish() -> list[bytes]:
            if not translator.complete:  # the provider never finished its answer
                return data_events(translator.fail(truncated(provider)))
            closing = data_events(translator.finish())
            # An in-band error ended the stream: the error chunk was the last word.
            return closing if translator.failed else [*closing, DONE]

        return await pump_events(
            request,
            upstream.answer,
            provider,
            extra_headers=candidate.route_header,
            first=[],
            translate=translate,
            finish=finish,
            fail=lambda err: data_events(translator.fail(err)),
            on_error=openai_stream_error,
        )
