"""Issue 11, item 14: requests aiohttp cannot parse are answered in JSON, with one WARNING line.

Bad or doubled Content-Length, broken chunks, no Host, over 64 KiB of headers, a request line
too long, codings without a decoder, unknown expectations: each gets a 4xx JSON error (in the
dialect of the request line when it can be read) from the server as `ccproxy serve` runs it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import orjson
import pytest

from tests.edge import (
    MESSAGES,
    assert_anthropic_error,
    assert_openai_error,
    config,
    exchange,
    parse_answer,
    request_bytes,
    serving,
    trapped_logs,
)
from tests.fakes import FakeUpstream

# -- 14. framing -----------------------------------------------------------------------------

BODY = orjson.dumps(MESSAGES)
FRAMING = {
    "bad content-length": b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n{}",
    "conflicting content-length": b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "content-length and chunked": b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "bad chunk size": b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "missing host": b"POST /v1/messages HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    "headers past 64 KiB": b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
    "request line too long": b"GET /v1/models?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad header name": b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\nContent-Length: 2\r\n\r\n{}",
}


@pytest.mark.parametrize("case", sorted(FRAMING))
async def test_malformed_framing_gets_json_and_one_warning(fake: FakeUpstream, case: str) -> None:
    """Each kind of bad framing gets a 4xx JSON error and exactly one WARNING line, no traceback."""
    with trapped_logs() as logs:
        async with serving(config(fake)) as port:
            answer = parse_answer(await exchange(port, FRAMING[case]))
    assert 400 <= answer.status < 500, answer
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert logs.tracebacks() == []
    refused = [r for r in logs.warnings() if r.name == "ccproxy"]
    assert len(refused) == 1, [r.getMessage() for r in logs.warnings()]
    assert "malformed HTTP request" in refused[0].getMessage()


async def test_framing_errors_answer_in_the_dialect_of_the_request_line(fake: FakeUpstream) -> None:
    """A chat request with bad framing gets an OpenAI error; an unreadable request line gets one both SDKs parse."""
    bad_chat = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
    async with serving(config(fake)) as port:
        chat = parse_answer(await exchange(port, bad_chat))
        unknown = parse_answer(await exchange(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"))
    assert_openai_error(chat.json())
    assert "type" not in chat.json()
    assert_openai_error(unknown.json())
    assert_anthropic_error(unknown.json(), "invalid_request_error")


async def test_a_request_line_too_long_is_answered_in_the_dialect_its_headers_name(fake: FakeUpstream) -> None:
    """The headers after a request line past aiohttp's limit still name the dialect (found by the fuzz test)."""
    line = b"GET /v1/models?" + b"q" * 9000 + b" HTTP/1.1\r\n"
    async with serving(config(fake)) as port:
        anthropic = parse_answer(await exchange(port, line + b"Host: x\r\nanthropic-version: 2023-06-01\r\n\r\n"))
        openai = parse_answer(await exchange(port, line + b"Host: x\r\n\r\n"))
    assert anthropic.status == openai.status == 400
    assert_anthropic_error(anthropic.json(), "invalid_request_error")
    assert_openai_error(openai.json())
    assert "type" not in openai.json()


async def test_a_credential_in_a_malformed_header_line_is_not_echoed_or_logged(fake: FakeUpstream) -> None:
    """aiohttp quotes the bad header line; a key in it is redacted in both the answer and the log."""
    raw = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-ant-secret\x01\r\nContent-Length: 2\r\n\r\n{}"
    with trapped_logs() as logs:
        async with serving(config(fake)) as port:
            answer = parse_answer(await exchange(port, raw))
    assert answer.status == 400
    assert b"sk-ant-secret" not in answer.body and b"[redacted]" in answer.body
    assert not [r for r in logs.records if "sk-ant-secret" in r.getMessage()]


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip, br", "compress"])
async def test_request_bodies_in_codings_without_a_decoder_get_415(fake: FakeUpstream, coding: str) -> None:
    """br, zstd and other codings get a JSON 415 naming the codings that work, in the client's dialect."""
    with trapped_logs() as logs:
        async with serving(config(fake)) as port:
            messages = parse_answer(
                await exchange(port, request_bytes("POST", "/v1/messages", b"\x00\x01", {"Content-Encoding": coding}))
            )
            chat = parse_answer(
                await exchange(
                    port, request_bytes("POST", "/v1/chat/completions", b"\x00\x01", {"Content-Encoding": coding})
                )
            )
    assert messages.status == chat.status == 415
    assert "gzip, deflate or uncompressed" in messages.json()["error"]["message"]
    assert_anthropic_error(messages.json(), "invalid_request_error")
    assert_openai_error(chat.json())
    assert logs.tracebacks() == []


async def test_an_unknown_expectation_gets_json_417(fake: FakeUpstream) -> None:
    """`Expect: something-else` gets a JSON 417 instead of aiohttp's text page."""
    async with serving(config(fake)) as port:
        answer = parse_answer(await exchange(port, request_bytes("POST", "/v1/messages", BODY, {"Expect": "teapot"})))
    assert answer.status == 417
    assert_anthropic_error(answer.json(), "invalid_request_error")


async def test_a_body_cut_short_is_a_400(fake: FakeUpstream) -> None:
    """A body shorter than its Content-Length (the client gave up) leaves no traceback behind."""
    raw = request_bytes("POST", "/v1/messages", BODY).replace(
        f"Content-Length: {len(BODY)}".encode(), f"Content-Length: {len(BODY) + 50}".encode()
    )
    with trapped_logs() as logs:
        async with serving(config(fake)) as port:
            out = await exchange(port, raw, half_close=True)
    if out:
        assert parse_answer(out).status == 400
    assert logs.tracebacks() == []
    assert not fake.requests


# -- the same through `ccproxy serve` --------------------------------------------------------


@pytest.mark.slow
async def test_ccproxy_serve_answers_bad_framing_in_json_and_stops_cleanly_on_sigterm(
    tmp_path: Path, isolated_home: Path
) -> None:
    """The real command serves through ccproxy's protocol: bad framing gets JSON, one WARNING line,
    no traceback; SIGTERM still drains and exits 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "config.json"
    config.write_text(orjson.dumps({"port": port, "log": {"level": "info"}}).decode())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CCPROXY_", "ANTHROPIC_"))}
    argv = [sys.executable, str(Path(__file__).resolve().parents[2] / "ccproxy.py"), "serve", "--config", str(config)]
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        assert proc.stdout is not None
        while b"listening" not in await asyncio.wait_for(proc.stdout.readline(), 60):
            pass
        answer = parse_answer(await exchange(port, FRAMING["conflicting content-length"]))
        chat = parse_answer(
            await exchange(port, FRAMING["bad chunk size"].replace(b"/v1/messages", b"/v1/chat/completions"))
        )
        proc.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(proc.stdout.read(), 60)).decode()
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert answer.status == 400 and answer.json()["error"]["type"] == "invalid_request_error"
    assert_openai_error(chat.json())
    assert output.count("WARNING ccproxy: refused malformed HTTP request") == 2, output
    assert "Traceback" not in output and " ERROR " not in output, output
