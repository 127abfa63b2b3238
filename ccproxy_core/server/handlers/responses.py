"""`POST /v1/responses`: the OpenAI Responses surface (the openai SDK's `responses`, Codex CLI).

The request is translated to Messages once (`responses_request`), routed like a Messages
request (same router, pools, fallback and breaker), and sent to an `anthropic` provider as
it is or, through the Messages -> Chat Completions translator, to an `openai` one. The answer
comes back through `ChatStreamTranslator` (Chat only) and `ResponsesStreamTranslator`, or as
one `response` object. A provider that speaks Responses itself (`kind: "responses"`, codex)
gets the client's body as it came but for `model`, and its answer goes back unchanged
(`responses_upstream.passthrough`); what only such a provider can serve (`previous_response_id`
and the other stored-state fields) is routed by its model and refused by any other kind.

Errors are OpenAI-shaped: an HTTP error before the first byte (the error middleware renders
`/responses` paths in the OpenAI dialect), `response.failed` once streaming. Hosted tools
the provider cannot run are named in `x-ccproxy-dropped-tools`. Codex hangs up as soon as it
has parsed `response.completed`; that is the answer delivered, not a client abort.

Also here: the `/api/codex/...` spellings of the replaced product, routed like `/v1/...`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import orjson
from aiohttp import web

from ccproxy_core.core.errors import AttemptFailed, InvalidRequest, NotFound, ProxyError, openai_status_and_body
from ccproxy_core.core.headers import X_DROPPED_TOOLS
from ccproxy_core.core.sse import SSEEvent, event_payload
from ccproxy_core.core.tokens import estimate_tokens
from ccproxy_core.core.wire import JSON
from ccproxy_core.server import calls, dispatch, sessions
from ccproxy_core.server.handlers import responses_upstream
from ccproxy_core.server.handlers.common import json_response, read_json, require_str
from ccproxy_core.server.keyguard import check_model as keyguard_check_model
from ccproxy_core.server.relay import Translate, pump_events, truncated
from ccproxy_core.server.state import STATE
from ccproxy_core.translate.chat_request import messages_to_chat, strip_synthetic_thinking
from ccproxy_core.translate.chat_response import chat_to_message
from ccproxy_core.translate.chat_stream import ChatStreamTranslator
from ccproxy_core.translate.responses_request import responses_to_messages
from ccproxy_core.translate.responses_response import ResponsesPlan, message_to_response, response_echo
from ccproxy_core.translate.responses_stream import ResponsesStreamTranslator, encode_event

# Responses streams have no ping event; an SSE comment keeps idle connections open.
KEEPALIVE = b": keep-alive\n\n"


async def create_response(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    raw, body = await read_json(request)
    model = require_str(body, "model")
    keyguard_check_model(model)  # a client key's model list
    sessions.note(request, body)  # the conversation, for its sticky credential
    stream = body.get("stream") is True
    refused: InvalidRequest | None = None
    try:
        messages_body, plan = responses_to_messages(body, model=model)
    except InvalidRequest as exc:
        # What only a provider that keeps responses can serve (previous_response_id, stored
        # prompts, file ids): routed by its model alone, refused by any other kind of provider.
        refused, messages_body, plan = exc, {"model": model, "messages": []}, ResponsesPlan(echo=response_echo(body))
    # The router's think rule reads the effort the client named, which the budget alone would hide.
    routed = {**messages_body, "output_config": {"effort": plan.effort}} if plan.effort else messages_body
    candidates = dispatch.plan_request(state, state.runtime, routed, request.headers)
    if refused is not None and not any(c.provider.kind in responses_upstream.PASSTHROUGH_KINDS for c in candidates):
        raise refused
    dropped = {X_DROPPED_TOOLS: ", ".join(plan.dropped_tools)} if plan.dropped_tools else {}
    call = _Call(request, plan, messages_body, model, stream, int(time.time()))

    async def attempt(candidate: dispatch.Candidate) -> web.StreamResponse:
        kind = candidate.provider.kind
        if kind in responses_upstream.PASSTHROUGH_KINDS:
            # Nothing is translated, so nothing is dropped: the route header alone.
            return await responses_upstream.passthrough(
                request, candidate, raw, body, stream=stream, echo=plan.echo, headers=candidate.route_header
            )
        if refused is not None:
            raise AttemptFailed(refused, retryable=True)  # a Responses provider later in the chain may serve it
        headers = {**candidate.route_header, **dropped}
        if kind == "anthropic":
            return await call.to_anthropic(candidate, headers)
        return await call.to_chat(candidate, headers)

    return await dispatch.run(state, candidates, attempt)


class _Call:
    """One Responses request, ready to be tried on each candidate in turn."""

    def __init__(
        self, request: web.Request, plan: ResponsesPlan, messages_body: JSON, model: str, stream: bool, created_at: int
    ) -> None:
        self.request = request
        self.plan = plan
        self.body = messages_body
        self.model = model  # the name the client asked for, which the answer repeats
        self.stream = stream
        self.created_at = created_at

    def _translator(self) -> ResponsesStreamTranslator:
        return ResponsesStreamTranslator(model=self.model, plan=self.plan, created_at=self.created_at)

    def _answer(self, message: JSON, headers: dict[str, str]) -> web.Response:
        return json_response(
            message_to_response(message, model=self.model, plan=self.plan, created_at=self.created_at), headers=headers
        )

    async def to_anthropic(self, candidate: dispatch.Candidate, headers: dict[str, str]) -> web.StreamResponse:
        # Thinking a Chat provider made up has a signature real Anthropic would reject.
        body = strip_synthetic_thinking(self.body) or self.body
        payload = orjson.dumps({**body, "model": candidate.model})
        async with calls.anthropic_call(
            self.request, candidate, payload, "messages", stream=self.stream, passthrough=False
        ) as upstream:
            if not self.stream:
                return self._answer(await upstream.json_body(), headers)
            translator = self._translator()
            provider = candidate.provider.name

            def translate(event: SSEEvent) -> list[bytes]:
                data = event_payload(event, provider)
                if data is None:
                    return []
                return _encode(translator.feed(event.event or str(data.get("type", "")), data))

            return await self._pump(
                upstream,
                candidate,
                headers,
                translator,
                first=[],
                translate=translate,
                finish=lambda: _encode(translator.finish()),
            )

    async def to_chat(self, candidate: dispatch.Candidate, headers: dict[str, str]) -> web.StreamResponse:
        preset = candidate.provider.preset
        body = self.body
        if self.plan.effort:
            # The effort the client named, not the budget bucket it maps back to.
            body = {**body, "thinking": {"type": "adaptive"}, "output_config": {"effort": self.plan.effort}}
        chat_body, names = messages_to_chat(body, model=candidate.model, dialect=preset.dialect_for(candidate.model))
        async with calls.chat_call(self.request, candidate, chat_body, stream=self.stream) as upstream:
            if not self.stream:
                return self._answer(chat_to_message(await upstream.json_body(), model=self.model, names=names), headers)
            # Chat chunks -> Anthropic events -> Responses events: one translator per direction.
            to_messages = ChatStreamTranslator(model=self.model, names=names, input_tokens=estimate_tokens(self.body))
            translator = self._translator()
            provider = candidate.provider.name

            def relay(events: Iterable[tuple[str, JSON]]) -> list[bytes]:
                return [encode_event(out) for name, payload in events for out in translator.feed(name, payload)]

            def translate(event: SSEEvent) -> list[bytes]:
                if event.data == "[DONE]":
                    return relay(to_messages.finish())
                chunk = event_payload(event, provider)
                return relay(to_messages.feed(chunk)) if chunk is not None else []

            def finish() -> list[bytes]:
                if not to_messages.complete:  # the provider never finished its answer
                    return _encode(translator.fail(truncated(provider)))
                return [*relay(to_messages.finish()), *_encode(translator.finish())]

            return await self._pump(
                upstream,
                candidate,
                headers,
                translator,
                first=relay(to_messages.start()),
                translate=translate,
                finish=finish,
            )

    async def _pump(
        self,
        upstream: calls.UpstreamReply,
        candidate: dispatch.Candidate,
        headers: dict[str, str],
        translator: ResponsesStreamTranslator,
        *,
        first: list[bytes],
        translate: Translate,
        finish: Callable[[], list[bytes]],
    ) -> web.StreamResponse:
        def fail(err: ProxyError) -> list[bytes]:
            return _encode(translator.fail(err))

        try:
            return await pump_events(
                self.request,
                upstream.answer,
                candidate.provider.name,
                extra_headers=headers,
                first=first,
                translate=translate,
                finish=finish,
                fail=fail,
                on_error=lambda err: b"".join(fail(err)),
                keepalive=KEEPALIVE,
                keepalive_interval=self.request.app[STATE].config.limits.keepalive_interval,
                done=lambda: translator.done,
            )
        except ConnectionResetError:
            if not translator.done:
                raise
            # The client read response.completed and hung up (Codex does): the answer was
            # delivered. aiohttp finds the connection gone and sends nothing of this one.
            return web.Response(status=200)


async def stored_response(request: web.Request) -> web.Response:
    """Retrieve, delete, cancel, list input items: each needs a stored response, and ccproxy keeps none."""
    wanted = request.match_info["response_id"]
    err = NotFound(
        f"response_id: ccproxy keeps no responses, so {wanted!r} cannot be found; "
        "a stream's final event (response.completed) carries the whole response"
    )
    status, body = openai_status_and_body(err)
    return json_response(body, status=status)


def _encode(events: list[JSON]) -> list[bytes]:
    return [encode_event(event) for event in events]
