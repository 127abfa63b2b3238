"""Fake providers: real aiohttp apps on loopback that replay recorded answers and fail on cue.

A test queues what the next requests get (`fake.queue(...)`), or sets what every request gets
(`fake.default`); the fake records every request it received, and notices when a client hung
up in the middle of a stream (`fake.cancelled`).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections import deque
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from attrs import define, field, frozen
from multidict import CIMultiDict

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED = FIXTURES / "recorded"


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


def recorded_json(name: str) -> Any:
    return orjson.loads(recorded(name))


def sse_events(name: str) -> list[bytes]:
    """A recorded SSE body cut into its events (each with its blank line), bytes as recorded."""
    raw = recorded(name).replace(b"\r\n", b"\n")
    if not raw.endswith(b"\n\n"):
        raw = raw.rstrip(b"\n") + b"\n\n"  # some recorders dropped the last blank line
    return [part + b"\n\n" for part in raw.split(b"\n\n") if part.strip()]


def recorded_headers(name: str) -> dict[str, str]:
    data = recorded_json(name)
    return {k: str(v) for k, v in data.get("headers", {}).items()}


@frozen
class Reply:
    """A whole JSON (or other) answer."""

    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] | list[tuple[str, str]] = field(factory=dict)  # pairs: a name may repeat
    content_type: str = "application/json"
    delay: float = 0.0


@frozen
class Stream:
    """An SSE answer, event by event; optionally pausing, stalling or dropping midway."""

    events: list[bytes]
    headers: dict[str, str] = field(factory=dict)
    pause_after: int | None = None  # pause after this many events
    pause: float = 0.0
    stall_after: int | None = None  # after this many events, send nothing ever again
    drop_after: int | None = None  # after this many events, cut the connection (FIN)
    reset_after: int | None = None  # after this many events, reset the connection (RST)
    content_type: str = "text/event-stream; charset=utf-8"
    status: int = 200


@frozen
class Hang:
    """Never answer (a provider that accepted the connection and went silent)."""


@frozen
class Drop:
    """Close the connection without any answer."""


Behavior = Reply | Stream | Hang | Drop


@frozen
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@define
class FakeUpstream:
    default: Behavior = field(factory=lambda: Reply(body=recorded("anthropic/message_tool_use.json")))
    requests: list[Received] = field(factory=list)
    cancelled: asyncio.Event = field(factory=asyncio.Event)
    streams_started: int = 0
    events_sent: int = 0
    # What one credential (x-api-key or bearer token) gets, before the queue and the default.
    by_credential: dict[str, Behavior] = field(factory=dict)
    _queue: deque[Behavior] = field(factory=deque)
    url: str = ""

    def queue(self, *behaviors: Behavior) -> None:
        self._queue.extend(behaviors)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Received(
                request.method,
                request.path,
                request.query_string,
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
        )
        credential = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix(
            "Bearer "
        )
        if credential in self.by_credential:
            behavior = self.by_credential[credential]
        else:
            behavior = self._queue.popleft() if self._queue else self.default
        if isinstance(behavior, Reply):
            if behavior.delay:
                await asyncio.sleep(behavior.delay)
            return web.Response(
                status=behavior.status, body=behavior.body, headers=behavior.headers, content_type=behavior.content_type
            )
        if isinstance(behavior, Hang):
            await asyncio.sleep(3600)
        if isinstance(behavior, Drop):
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(0.1)
            return web.Response()
        assert isinstance(behavior, Stream)
        return await self._stream(request, behavior)

    async def _stream(self, request: web.Request, s: Stream) -> web.StreamResponse:
        headers = CIMultiDict({"content-type": s.content_type})
        headers.update(s.headers)  # a Content-Type of the test's own, in its spelling, replaces the default
        response = web.StreamResponse(status=s.status, headers=headers)
        await response.prepare(request)
        self.streams_started += 1
        try:
            for i, event in enumerate(s.events):
                if i == s.drop_after:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                if i == s.reset_after:
                    assert request.transport is not None
                    sock = request.transport.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    request.transport.abort()
                    return response
                if i == s.stall_after:
                    await asyncio.sleep(3600)
                if i == s.pause_after:
                    await asyncio.sleep(s.pause)
                await response.write(event)
                self.events_sent += 1
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            self.cancelled.set()
            raise
        return response


class FakeTokenEndpoint:
    """Claude's token endpoint as far as ccproxy can tell: JSON in, rotating single-use refresh
    tokens out, `invalid_grant` for a refresh token that was already used."""

    def __init__(self) -> None:
        self.url = ""
        self.valid: set[str] = set()
        self.requests: list[dict[str, Any]] = []
        self.fail_with: deque[int] = deque()
        self.delay = 0.0
        self.omit_refresh = False
        self.issued = 0

    def issue(self) -> str:
        self.issued += 1
        token = f"sk-ant-ort01-r{self.issued}"
        self.valid.add(token)
        return token

    async def handle(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/json"
        body = await request.json()
        self.requests.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with:
            return web.json_response({"error": "server_error"}, status=self.fail_with.popleft())
        if body["grant_type"] == "refresh_token":
            if body["refresh_token"] not in self.valid:
                return web.json_response(
                    {"error": "invalid_grant", "error_description": "Refresh token not found or invalid"}, status=400
                )
            self.valid.discard(body["refresh_token"])  # single use
        elif body.get("code") != "good-code" or not body.get("state") or not body.get("code_verifier"):
            return web.json_response({"error": "invalid_grant"}, status=400)
        refresh_token = self.issue()
        answer = {
            "access_token": f"sk-ant-oat01-a{self.issued}",
            "expires_in": 28800,
            "token_type": "Bearer",
            "scope": "user:inference",
        }
        if not self.omit_refresh:
            answer["refresh_token"] = refresh_token
        return web.json_response(answer)


def json_reply(name: str, status: int = 200, headers_file: str | None = None) -> Reply:
    headers = recorded_headers(headers_file) if headers_file else {}
    framing = {"content-type", "content-length", "transfer-encoding", "connection", "content-encoding"}
    headers = {k: v for k, v in headers.items() if k.lower() not in framing}
    return Reply(status=status, body=recorded(name), headers=headers)
