"""The proxy served as `ccproxy serve` serves it (framing.ProxyRunner), a raw-socket client, and a log trap.

Hostile-input tests need the production HTTP protocol (aiohttp's test server would answer bad
framing itself), bytes no HTTP client library would send, and every log record the server
writes, whichever logger it goes to and whether or not that logger propagates.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

import orjson
from aiohttp import web
from attrs import frozen

from ccproxy_core.config.model import Config, structure
from ccproxy_core.server.app import create_app
from ccproxy_core.server.framing import ProxyRunner
from tests.conftest import anthropic_provider
from tests.fakes import FakeUpstream
from tests.specs import validator

MESSAGES = {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
IO_GUARD = 30.0  # seconds: only so a hung socket fails the test instead of hanging the suite


@asynccontextmanager
async def serving(configuration: dict[str, Any] | Config) -> AsyncIterator[int]:
    """The proxy for `configuration` on a loopback port, with the runner and settings `run()` uses."""
    cfg = configuration if isinstance(configuration, Config) else structure(configuration)
    runner = ProxyRunner(create_app(cfg), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


def parse_answer(raw: bytes) -> Answer:
    """The first HTTP response in `raw` (interim 1xx answers skipped)."""
    while True:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, f"no complete response head in {raw[:200]!r}"
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        if status >= 200:
            break
        raw = rest
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(rest)
    elif "content-length" in headers:
        body = rest[: int(headers["content-length"])]
    else:
        body = rest
    return Answer(status, headers, body)


async def exchange(port: int, data: bytes, *, half_close: bool = False) -> bytes:
    """Send `data` on a fresh connection and read the server's answer: one whole response, or
    whatever came before the server closed the connection.

    With `half_close`, the client shuts its side after sending, as a client that gave up: for
    aiohttp that is a client gone, so its handler is cancelled.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if half_close and writer.can_write_eof():
            writer.write_eof()
        return await asyncio.wait_for(_read_answer(reader), IO_GUARD)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()
        with suppress(ConnectionResetError, BrokenPipeError):
            await writer.wait_closed()


async def _read_answer(reader: asyncio.StreamReader) -> bytes:
    got = b""
    while True:  # interim 1xx answers come first
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            return got + exc.partial
        got += head
        if not head.startswith(b"HTTP/1.1 1"):
            break
    headers = head.lower()
    if b"transfer-encoding: chunked" in headers:
        while not got.endswith(b"\r\n0\r\n\r\n") and not got.endswith(b"\r\n\r\n0\r\n\r\n"):
            piece = await reader.read(65536)
            if not piece:
                break
            got += piece
        return got
    length = re.search(rb"\r\ncontent-length: *(\d+)", headers)
    if length is None:
        return got + await reader.read()
    try:
        return got + await reader.readexactly(int(length.group(1)))
    except asyncio.IncompleteReadError as exc:
        return got + exc.partial


def request_bytes(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None, *, host: bool = True
) -> bytes:
    """An HTTP/1.1 request with Content-Length and `Connection: close`."""
    lines = [f"{method} {path} HTTP/1.1"]
    if host:
        lines.append("Host: 127.0.0.1")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


class LogTrap(logging.Handler):
    """Every record from the loggers it is attached to, once each."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._seen: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if id(record) not in self._seen:
            self._seen.add(id(record))
            self.records.append(record)

    def tracebacks(self) -> list[str]:
        """Records at ERROR or above, or carrying a traceback at any level."""
        return [
            f"{r.levelname} {r.name}: {r.getMessage()}"
            for r in self.records
            if r.levelno >= logging.ERROR or r.exc_info
        ]

    def warnings(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno == logging.WARNING]


@contextmanager
def trapped_logs() -> Iterator[LogTrap]:
    """Records of the server's loggers (ccproxy's and aiohttp's), not the root's: an SDK client
    left over from an earlier test may log its own shutdown there meanwhile."""
    trap = LogTrap()
    loggers = [logging.getLogger(name) for name in ("ccproxy", "aiohttp")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(trap)
    logging.getLogger("ccproxy").setLevel(logging.DEBUG)
    logging.getLogger("aiohttp").setLevel(logging.DEBUG)
    try:
        yield trap
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(trap)
            lg.setLevel(level)


def config(fake: FakeUpstream, **extra: Any) -> dict[str, Any]:
    """An Anthropic provider and an OpenAI one on the same fake; `gpt-4.1` and `alias` are routes."""
    return {
        "providers": [
            anthropic_provider(fake),
            {"name": "openai", "kind": "openai", "api_base_url": fake.url + "/v1", "api_key": "sk-up"},
        ],
        "routes": {
            "gpt-4.1": {"provider": "openai", "model": "gpt-4.1"},
            "alias": {"provider": "anthropic", "model": "claude-sonnet-4-6"},
            "to-openai": {"provider": "openai", "model": "gpt-4.1"},
        },
        **extra,
    }


def assert_anthropic_error(body: Any, error_type: str) -> None:
    """An Anthropic error body (the spec's ErrorResponse but for `request_id`, which ccproxy sends as a header)."""
    assert body["type"] == "error" and body["error"]["type"] == error_type, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    # 413's type is documented (docs.claude.com/en/api/errors) but missing from the spec's enum.
    assert error_type == "request_too_large" or not list(validator("anthropic", "ErrorType").iter_errors(error_type))


def assert_openai_error(body: Any) -> None:
    assert not list(validator("openai", "ErrorResponse", nullable_as_union=True).iter_errors(body)), body
