"""Messages and Chat Completions clients in front of a `responses` provider: translated both ways.

For models served only on the Responses API. The request becomes a Responses one once
(`translate.responses_upstream.messages_to_responses`, reasoning only for models that take it,
then fitted to the model's output limit by the preset);
a Chat client's request is already Messages by then (chat.py), so one translator serves both.
The answer comes back through `ResponsesToMessagesStream` (Responses events -> Anthropic events)
and, for a Chat client, on through `MessagesStreamTranslator` (Anthropic events -> chunks):
one translator per direction, chained as the Responses surface chains Chat -> Messages ->
Responses the other way. Nothing is buffered: each upstream event is translated and written
as it arrives (`relay.pump_events`).

Errors: the provider's error answer before the first byte is rendered in the client's dialect
(not passed on: it is not the client's dialect); a `response.failed` or `error` event, or a
stream cut before `response.completed`, ends the client's stream with its own error event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import orjson
from aiohttp import web

from ccproxy_core.core.sse import DONE, SSEEvent, anthropic_events, data_event, data_events, event_payload
from ccproxy_core.core.tokens import estimate_tokens
from ccproxy_core.core.wire import JSON
from ccproxy_core.providers.rules import fit_responses_request, takes_reasoning_on
from ccproxy_core.server import calls, dispatch
from ccproxy_core.server.handlers.common import json_response
from ccproxy_core.server.relay import PING, Encoder, anthropic_stream_error, pump_events, truncated
from ccproxy_core.server.state import STATE
from ccproxy_core.translate.messages_response import message_to_chat
from ccproxy_core.translate.messages_stream import MessagesStreamTranslator
from ccproxy_core.translate.responses_upstream import ResponsesRequest, messages_to_responses, response_to_message
from ccproxy_core.translate.responses_upstream_stream import Event, ResponsesToMessagesStream

log = logging.getLogger("ccproxy.translate")

Events = Iterable[Event]


def _translate(candidate: dispatch.Candidate, body: JSON) -> tuple[ResponsesRequest, bytes]:
    # Thinking from a Responses reasoning item goes back as that item; any other is dropped there.
    preset = candidate.provider.preset
    translated = messages_to_responses(
        body, model=candidate.model, reasoning=takes_reasoning_on(preset, candidate.model)
    )
    if translated.dropped:  # what the Responses API has no place for (stop_sequences, server tools)
        log.debug("to %s, left out: %s", candidate.provider.name, ", ".join(translated.dropped))
    fitted = fit_responses_request(translated.body, preset, candidate.model)
    return translated, orjson.dumps(fitted)


async def for_messages_client(
    request: web.Request, candidate: dispatch.Candidate, body: JSON, client_model: str, stream: bool
) -> web.StreamResponse:
    """An Anthropic client's request answered by a Responses provider, as Messages."""
    translated, payload = _translate(candidate, body)
    async with calls.responses_call(request, candidate, payload, stream=stream, passthrough=False) as upstream:
        if not stream:
            message = response_to_message(await upstream.json_body(), model=client_model, names=translated.names)
            return json_response(message, headers=candidate.route_header)
        # message_start needs input tokens before the provider has counted them.
        translator = ResponsesToMessagesStream(
            model=client_model, names=translated.names, input_tokens=estimate_tokens(body)
        )
        provider = candidate.provider.name

        def translate(event: SSEEvent) -> list[bytes]:
            data = event_payload(event, provider)
            return anthropic_events(translator.feed(data)) if data is not None else []

        def finish() -> list[bytes]:
            # The body ended: a finished answer is closed; a cut one ends with an error.
            return anthropic_events(
                translator.finish() if translator.complete else translator.fail(truncated(provider))
            )

        return await pump_events(
            request,
            upstream.answer,
            provider,
            extra_headers=candidate.route_header,
            first=[],  # message_start comes with the first event, named after the provider's response
            translate=translate,
            finish=finish,
            fail=lambda err: anthropic_events(translator.fail(err)),
            on_error=anthropic_stream_error,
            keepalive=PING,
            keepalive_interval=request.app[STATE].config.limits.keepalive_interval,
        )


async def for_chat_client(
    request: web.Request,
    candidate: dispatch.Candidate,
    messages_body: JSON,
    client_model: str,
    stream: bool,
    *,
    include_usage: bool,
    json_mode: bool,
    effort: object,
    on_error: Encoder,
) -> web.StreamResponse:
    """An OpenAI Chat client's request (already Messages) answered by a Responses provider, as Chat.

    `effort` is the client's `reasoning_effort`: where thinking is on it goes up as asked, not as
    the budget it became maps back; `on_error` is the Chat surface's last-resort error chunk."""
    if isinstance(effort, str) and "thinking" in messages_body:
        messages_body = {**messages_body, "thinking": {"type": "adaptive"}, "output_config": {"effort": effort}}
    translated, payload = _translate(candidate, messages_body)
    created = int(time.time())
    async with calls.responses_call(request, candidate, payload, stream=stream, passthrough=False) as upstream:
        if not stream:
            message = response_to_message(await upstream.json_body(), model=client_model, names=translated.names)
            answer = message_to_chat(message, model=client_model, json_mode=json_mode, created=created)
            return json_response(answer, headers=candidate.route_header)
        # Responses events -> Anthropic events -> Chat chunks: one translator per direction.
        to_messages = ResponsesToMessagesStream(
            model=client_model, names=translated.names, input_tokens=estimate_tokens(messages_body)
        )
        to_chat = MessagesStreamTranslator(
            model=client_model, include_usage=include_usage, json_mode=json_mode, created=created
        )
        provider = candidate.provider.name

        def relay(events: Events) -> list[bytes]:
            return [data_event(chunk) for name, data in events for chunk in to_chat.feed(name, data)]

        def translate(event: SSEEvent) -> list[bytes]:
            data = event_payload(event, provider)
            return relay(to_messages.feed(data)) if data is not None else []

        def finish() -> list[bytes]:
            if not to_messages.complete:  # the provider never finished its answer
                return data_events(to_chat.fail(truncated(provider)))
            closing = [*relay(to_messages.finish()), *data_events(to_chat.finish())]
            # An in-band error ended the stream: the error chunk was the last word.
            return closing if to_chat.failed else [*closing, DONE]

        return await pump_events(
            request,
            upstream.answer,
            provider,
            extra_headers=candidate.route_header,
            first=[],  # message_start comes with the first event, named after the provider's response
            translate=translate,
            finish=finish,
            fail=lambda err: data_events(to_chat.fail(err)),
            on_error=on_error,
        )
