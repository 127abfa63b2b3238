"""SDK mode routes: `/claude/...` and `/sdk/...` answered by the local Claude Code CLI.

    POST /claude/v1/messages                         Anthropic Messages, stream or not
    POST /claude/v1/chat/completions                 OpenAI Chat Completions, stream or not
    GET  /claude/v1/models                           the CLI's models, in the asking client's shape
    POST /claude/{session_id}/v1/messages            the same, continuing one Claude Code session
    POST /claude/{session_id}/v1/chat/completions
    (and all of these under /sdk/ too)

The routes are in server/lazy.py: this module and the runner load with the first of them
(server/sdk_mode.py holds the runner from then on).

The handler parses, asks the runner for a turn, and pumps: each CLI line goes through
`CliTranslator` (Anthropic events) and, for an OpenAI client, through the same
`MessagesStreamTranslator` that serves `/v1/chat/completions`, and is written at once. The
client's response starts with the first content, so an error before it (a missing CLI, a
busy proxy, a failed API call inside the CLI) is a plain HTTP error in the client's dialect.
During silence (a long tool run) the stream gets keep-alives every `limits.keepalive_interval`;
a CLI silent for `limits.stream_idle_timeout` is stopped and the client gets a timeout error.

`record_usage` puts each turn's usage (from the CLI's result line) into the request's log, under
the provider `claude-code` and the model the CLI ran, where the ledger and metrics read it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from ccproxy_core.core.errors import InvalidRequest, ProxyError, UpstreamTimeout
from ccproxy_core.core.headers import ANTHROPIC_VERSION, STREAM_HEADERS
from ccproxy_core.core.sse import DONE, anthropic_events, data_event, data_events
from ccproxy_core.core.wire import JSON
from ccproxy_core.sdk import models
from ccproxy_core.sdk.conversation import refuse_client_tools
from ccproxy_core.sdk.process import Turn
from ccproxy_core.sdk.protocol import CliTranslator, Event, RunUsage, fold_message
from ccproxy_core.server import reqlog
from ccproxy_core.server.handlers.common import json_response, read_model_request
from ccproxy_core.server.relay import PING
from ccproxy_core.server.sdk_mode import SDK_MODE
from ccproxy_core.server.state import STATE
from ccproxy_core.translate.messages_request import chat_to_messages
from ccproxy_core.translate.messages_response import message_to_chat
from ccproxy_core.translate.messages_stream import MessagesStreamTranslator

log = logging.getLogger("ccproxy.sdk")

SDK_PROVIDER = "claude-code"  # the provider name SDK-mode requests are logged and metered under
OPENAI_KEEPALIVE = b": keep-alive\n\n"


def record_usage(request: web.Request, usage: RunUsage) -> None:
    """One finished turn's usage, into the request's log (the ledger and metrics read it from there)."""
    request_log = reqlog.log_of(request)
    request_log.routed(SDK_PROVIDER, usage.model, "sdk mode: the local Claude Code")
    request_log.upstream_event({"type": "message_delta", "usage": usage.anthropic()})
    request_log.session_id = request.match_info.get("session_id") or request_log.session_id
    log.info(
        "sdk turn: model %s, %d in / %d out tokens, $%.6f, %d API call(s), %d ms",
        usage.model,
        usage.input_tokens,
        usage.output_tokens,
        usage.cost_usd,
        usage.num_turns,
        usage.duration_ms,
    )


class _Writer:
    """Anthropic events -> the bytes of the client's dialect."""

    def __init__(self, model: str, openai: bool, include_usage: bool) -> None:
        self.openai = openai
        self.chat = (
            MessagesStreamTranslator(model=model, include_usage=include_usage, created=int(time.time()))
            if openai
            else None
        )

    def encode(self, events: list[Event]) -> bytes:
        if self.chat is None:
            return b"".join(anthropic_events(events))
        return b"".join(data_event(chunk) for name, payload in events for chunk in self.chat.feed(name, payload))

    def fail(self, err: ProxyError, translator: CliTranslator) -> bytes:
        """The error mid-stream; nothing when the client has no bytes yet (`translator.failure` is set)."""
        events = translator.fail(err)
        if self.chat is None or translator.failure is not None:
            return self.encode(events)
        return b"".join(data_events(self.chat.fail(err)))

    def end(self) -> bytes:
        if self.chat is None:
            return b""
        closing = b"".join(data_events(self.chat.finish()))
        return closing if self.chat.failed else closing + DONE

    @property
    def keepalive(self) -> bytes:
        return OPENAI_KEEPALIVE if self.openai else PING


async def messages(request: web.Request) -> web.StreamResponse:
    return await _serve(request, openai=False)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _serve(request, openai=True)


async def list_models(request: web.Request) -> web.Response:
    if ANTHROPIC_VERSION in request.headers:
        return json_response(models.anthropic_list())
    return json_response(models.openai_list(int(time.time())))


async def _serve(request: web.Request, *, openai: bool) -> web.StreamResponse:
    state = request.app[STATE]
    settings = state.config.sdk
    _, body, model, stream = await read_model_request(request)
    reqlog.log_of(request).requested(model, stream)
    include_usage = False
    if openai:
        refuse_client_tools(body)
        if body.get("response_format") not in (None, {"type": "text"}):
            raise InvalidRequest(
                "response_format: SDK mode answers in Claude Code's own words and cannot force "
                "a JSON format; ask for JSON in the prompt, or use /v1/chat/completions"
            )
        options = body.get("stream_options")
        include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
        body, _ = chat_to_messages(body, model=model)
    runner = request.app[SDK_MODE].runner()
    session_id = request.match_info.get("session_id")
    writer = _Writer(model, openai, include_usage)
    async with runner.turn(settings, body, model, session_id) as turn:
        translator = CliTranslator(model=model)
        if stream:
            return await _stream(request, turn, translator, writer, _Silence.of(request))
        events = await _collect(turn, translator, _Silence.of(request))
    if translator.usage is not None:
        record_usage(request, translator.usage)
    if translator.failure is not None:
        raise translator.failure
    message = fold_message(events)
    if openai:
        return json_response(message_to_chat(message, model=model, created=int(time.time())))
    return json_response(message)


class _Silence:
    """Times the gaps between CLI lines: a keep-alive every `keepalive` seconds of silence (None is
    returned), and a timeout once it has lasted `idle` seconds (limits.stream_idle_timeout)."""

    def __init__(self, keepalive: float, idle: float) -> None:
        self.keepalive = keepalive
        self.idle = idle
        self.silent = 0.0

    @classmethod
    def of(cls, request: web.Request) -> _Silence:
        limits = request.app[STATE].config.limits
        return cls(float(limits.keepalive_interval), float(limits.stream_idle_timeout))

    async def next(self, turn: Turn, *, keepalive: bool) -> JSON | None:
        steps = [s for s in (self.keepalive if keepalive else 0.0, self.idle - self.silent if self.idle else 0.0) if s]
        step = max(0.001, min(steps)) if steps else None
        message = await turn.next(step)
        if message is not None:
            self.silent = 0.0
            return message
        self.silent += step or 0.0
        if self.idle and self.silent >= self.idle:
            raise UpstreamTimeout(
                f"Claude Code sent nothing for {self.idle:g} s (limits.stream_idle_timeout); its run was stopped"
            )
        return None


async def _collect(turn: Turn, translator: CliTranslator, silence: _Silence) -> list[Event]:
    events: list[Event] = []
    while not translator.done:
        try:
            message = await silence.next(turn, keepalive=False)
        except ProxyError as err:
            events += translator.fail(err)
            break
        if message is not None:
            events += translator.feed(message, previous_cost=turn.previous_cost)
    return events


async def _stream(
    request: web.Request, turn: Turn, translator: CliTranslator, writer: _Writer, silence: _Silence
) -> web.StreamResponse:
    response: web.StreamResponse | None = None

    async def send(data: bytes) -> None:
        nonlocal response
        if not data:
            return
        try:
            if response is None:
                response = web.StreamResponse(status=200, headers=STREAM_HEADERS)
                await response.prepare(request)
            await response.write(data)
        except ConnectionResetError:
            # The client went away between two lines: end as a disconnect does (the runner stops the run).
            raise asyncio.CancelledError from None

    while not translator.done:
        try:
            message = await silence.next(turn, keepalive=True)
        except ProxyError as err:
            await send(writer.fail(err, translator))
            break
        if message is None:  # silence: keep the client's connection (and its patience) alive
            await send(writer.keepalive)
            continue
        await send(writer.encode(translator.feed(message, previous_cost=turn.previous_cost)))
    if translator.usage is not None:
        record_usage(request, translator.usage)
    if response is None:
        if translator.failure is not None:
            raise translator.failure
        response = web.StreamResponse(status=200, headers=STREAM_HEADERS)
        await response.prepare(request)
    await response.write(writer.end())
    await response.write_eof()
    return response
