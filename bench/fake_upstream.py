"""A fast fake provider for benchmarks: precomputed Anthropic and OpenAI answers, JSON or SSE.

Run as a process: `python bench/fake_upstream.py PORT`. `POST /v1/messages` answers like
Anthropic and `POST /v1/chat/completions` like OpenAI; a body containing `"stream":true` gets a
50-event stream written one event at a time, any other a JSON message. Work per request is a substring test and a write,
so the numbers measured through the proxy are the proxy's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
from aiohttp import web

EVENTS = 50


def anthropic_stream() -> list[bytes]:
    def ev(name: str, data: object) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    usage = {"input_tokens": 12, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    parts = [
        ev(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_bench",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": usage,
                },
            },
        ),
        ev(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
    ]
    for i in range(EVENTS - 5):
        parts.append(
            ev(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"word{i} "}},
            )
        )
    parts += [
        ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ev(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": EVENTS},
            },
        ),
        ev("message_stop", {"type": "message_stop"}),
    ]
    assert len(parts) == EVENTS
    return parts


def openai_stream() -> list[bytes]:
    def chunk(delta: dict[str, object], finish: str | None = None, usage: object = None, choices: bool = True) -> bytes:
        body = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4.1",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}] if choices else [],
            "usage": usage,
        }
        return b"data: " + orjson.dumps(body) + b"\n\n"

    parts = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": f"word{i} "}) for i in range(EVENTS - 4)]
    parts += [
        chunk({}, "stop"),
        chunk({}, usage={"prompt_tokens": 12, "completion_tokens": EVENTS, "total_tokens": 12 + EVENTS}, choices=False),
        b"data: [DONE]\n\n",
    ]
    assert len(parts) == EVENTS
    return parts


ANTHROPIC_JSON = orjson.dumps(
    {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hello! " * 20}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 40,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }
)
OPENAI_JSON = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4.1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! " * 20},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52},
    }
)
ANTHROPIC_SSE = anthropic_stream()
OPENAI_SSE = openai_stream()
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}


def _recorded_headers() -> dict[str, str]:
    """The headers of a real Anthropic answer (request id, a dozen rate-limit headers, ...)."""
    path = Path(__file__).resolve().parent.parent / "tests/fixtures/recorded/anthropic/stream_text.headers.json"
    framing = {"content-type", "content-length", "transfer-encoding", "connection", "date", "server"}
    return {k: v for k, v in orjson.loads(path.read_bytes())["headers"].items() if k.lower() not in framing}


# Anthropic answers carry these; the proxy reads its credential's headroom from them.
ANTHROPIC_HEADERS = _recorded_headers()


def _is_stream(body: bytes) -> bool:
    return b'"stream":true' in body or b'"stream": true' in body


async def _answer(
    request: web.Request, json_body: bytes, sse_events: list[bytes], headers: dict[str, str]
) -> web.StreamResponse:
    body = await request.read()
    if not _is_stream(body):
        return web.Response(body=json_body, content_type="application/json", headers=headers)
    response = web.StreamResponse(headers={**SSE_HEADERS, **headers})
    await response.prepare(request)
    for event in sse_events:  # one write per event, as a provider sends them
        await response.write(event)
    await response.write_eof()
    return response


async def messages(request: web.Request) -> web.StreamResponse:
    return await _answer(request, ANTHROPIC_JSON, ANTHROPIC_SSE, ANTHROPIC_HEADERS)


async def chat(request: web.Request) -> web.StreamResponse:
    return await _answer(request, OPENAI_JSON, OPENAI_SSE, {})


def main() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
