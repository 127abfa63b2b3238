"""ccproxy's HTTP/1.1 client against raw sockets: answers read as they arrive, connections
reused, and every way a provider can cut, stall, lie or be slow read mapped to a ccproxy error
that names the provider, with nothing left open."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ccproxy_core.config.model import LimitsConfig
from ccproxy_core.core.errors import ProxyError, UpstreamTimeout, UpstreamUnreachable
from ccproxy_core.server import http1_exchange
from ccproxy_core.server.upstream import Http1Upstream, StreamStalled

TLS = Path(__file__).resolve().parents[2] / "fixtures" / "tls"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A socket server on 127.0.0.1 that answers each connection with a scripted coroutine."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed_by_client = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer)
            if await reader.read() == b"":  # the script is done: wait for the client to hang up
                self.closed_by_client.set()
        except (ConnectionError, asyncio.IncompleteReadError):
            self.closed_by_client.set()
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], Awaitable[RawServer]]]:
    servers: list[RawServer] = []

    async def start(script: Script) -> RawServer:
        raw = RawServer(script)
        raw.server = await asyncio.start_server(raw._serve, "127.0.0.1", 0)
        servers.append(raw)
        return raw

    yield start
    for raw in servers:
        assert raw.server is not None
        raw.server.close()
        await raw.server.wait_closed()


async def read_request(reader: asyncio.StreamReader, raw: RawServer | None = None) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.startswith(b"content-length"))
    body = await reader.readexactly(length)
    if raw is not None:
        raw.requests.append(head + body)
    return head + body


def sized(body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{extra}content-length: {len(body)}\r\n\r\n".encode()
        + body
    )


def upstream(url: str, **limits: float) -> Http1Upstream:
    return Http1Upstream("acme", url, LimitsConfig(**limits))  # type: ignore[arg-type]


async def test_a_sized_answer_is_read_and_its_connection_reused(
    serve: Callable[[Script], Awaitable[RawServer]],
) -> None:
    """Three requests in turn go over one connection, each framed by its own length."""
    raw: RawServer

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for n in range(3):
            await read_request(reader, raw)
            writer.write(sized(b'{"n":%d}' % n))

    raw = await serve(script)
    client = upstream(raw.url)
    for n in range(3):
        answer = await client.send(f"{raw.url}/v1/messages", {"x-api-key": "k"}, b'{"q":1}', stream=False)
        assert answer.status == 200 and answer.content_type == "application/json"
        assert answer.headers["Content-Type"] == "application/json"
        assert await answer.read() == b'{"n":%d}' % n
        answer.close()
    assert raw.connections == 1
    assert raw.requests[0].startswith(b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"\r\nx-api-key: k\r\ncontent-length: 7\r\n\r\n" in raw.requests[0]
    await client.close()
    await asyncio.wait_for(raw.closed_by_client.wait(), 10)


async def test_a_stream_is_handed_on_chunk_by_chunk_as_it_arrives(
    serve: Callable[[Script], Awaitable[RawServer]],
) -> None:
    """The provider holds its second event until the first has reached the reader: no buffering."""
    first_read = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b"c\r\nevent: one\n\n\r\n")
        await first_read.wait()  # paused until the client has the first event
        writer.write(b"c\r\nevent: two\n\n\r\n0\r\n\r\n")

    raw = await serve(script)
    client = upstream(raw.url)
    answer = await client.send(f"{raw.url}/v1/messages", {}, b"{}", stream=True)
    assert answer.content_type == "text/event-stream"
    assert await answer.readany() == b"event: one\n\n"
    first_read.set()
    assert await answer.readany() == b"event: two\n\n"
    assert await answer.readany() == b""
    answer.close()
    await client.close()


async def test_a_body_cut_mid_way_breaks_off_naming_the_provider(
    serve: Callable[[Script], Awaitable[RawServer]],
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(sized(b'{"long":"answer"}')[:-5])
        await writer.drain()
        writer.transport.abort()

    raw = await serve(script)
    client = upstream(raw.url)
    answer = await client.send(f"{raw.url}/v1/messages", {}, b"{}", stream=False)
    with pytest.raises(UpstreamUnreachable, match="'acme' broke off its answer"):
        await answer.read()
    answer.close()
    await client.close()


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", r"'acme' sent a malformed answer at http://127\.0\.0\.1"),
        (b"", r"'acme' could not be reached at http://127\.0\.0\.1"),
    ],
)
async def test_garbage_or_silence_then_close_before_a_head_is_a_502(
    serve: Callable[[Script], Awaitable[RawServer]], reply: bytes, words: str
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(reply)
        await writer.drain()
        writer.transport.abort()

    raw = await serve(script)
    client = upstream(raw.url)
    with pytest.raises(UpstreamUnreachable, match=words) as info:
        await client.send(f"{raw.url}/v1/messages", {}, b"{}", stream=False)
    assert info.value.http_status == 502
    await client.close()


async def test_a_refused_connection_is_a_502_naming_the_provider_and_its_url() -> None:
    with pytest.raises(UpstreamUnreachable, match=r"'acme' could not be reached at http://127\.0\.0\.1:9"):
        await upstream("http://127.0.0.1:9").send("http://127.0.0.1:9/v1/messages", {}, b"{}", stream=False)


async def test_a_connect_that_times_out_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(*args: object, **kwargs: object) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr("ccproxy_core.server.http1.aiohappyeyeballs.start_connection", never)
    client = upstream("http://127.0.0.1:9", connect_timeout=0.05)
    with pytest.raises(UpstreamUnreachable, match=r"no connection within 0\.05 s"):
        await client.send("http://127.0.0.1:9/v1/messages", {}, b"{}", stream=False)


async def test_a_host_s_addresses_are_tried_in_turn_and_remembered(
    serve: Callable[[Script], Awaitable[RawServer]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first address refuses, the next one serves; the name is resolved once for both connections."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(sized(b"{}", "connection: close\r\n"))
        await writer.drain()

    raw = await serve(script)
    port = int(raw.url.rsplit(":", 1)[1])
    lookups: list[str] = []

    async def getaddrinfo(host: str, *args: object, **kwargs: object) -> list[object]:
        lookups.append(host)
        tcp = (socket.AF_INET, socket.SOCK_STREAM, 6, "")
        return [(*tcp, ("127.0.0.1", 9)), (*tcp, ("127.0.0.1", port))]  # nothing listens on port 9

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    client = upstream(f"http://provider.test:{port}")
    for _ in range(2):  # `connection: close`: a new connection each time
        answer = await client.send(f"http://provider.test:{port}/v1/messages", {}, b"{}", stream=False)
        assert await answer.read() == b"{}"
        answer.close()
    assert raw.connections == 2 and lookups == ["provider.test"]
    await client.close()


async def test_a_silent_provider_times_out_before_the_head_and_after_a_chunk(
    serve: Callable[[Script], Awaitable[RawServer]],
) -> None:
    """Silence before any byte is a 504; silence in the middle of a stream is a stall."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # silent until the client hangs up

    raw = await serve(script)
    client = upstream(raw.url, stream_idle_timeout=0.1)
    with pytest.raises(UpstreamTimeout, match=r"'acme' did not answer within 0\.1 s") as info:
        await client.send(f"{raw.url}/v1/messages", {}, b"{}", stream=True)
    assert not isinstance(info.value, StreamStalled) and info.value.http_status == 504
    await asyncio.wait_for(raw.closed_by_client.wait(), 10)  # the request was given up: its socket too

    async def talks_then_stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b"c\r\nevent: one\n\n\r\n")
        await reader.read()  # then silent until the client hangs up

    raw = await serve(talks_then_stalls)
    client = upstream(raw.url, stream_idle_timeout=0.1)
    answer = await client.send(f"{raw.url}/v1/messages", {}, b"{}", stream=True)
    assert await answer.readany() == b"event: one\n\n"
    with pytest.raises(StreamStalled, match=r"sent nothing for 0\.1 s"):
        await answer.readany()
    answer.close()
    await asyncio.wait_for(raw.closed_by_client.wait(), 10)


async def test_an_answer_that_trickles_past_request_timeout_is_ended(
    serve: Callable[[Script], Awaitable[RawServer]],
) -> None:
    """request_timeout bounds a non-streaming answer in all, however steadily it trickles."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
        for _ in range(1000):
            writer.write(b"x")
            await asyncio.sleep(0.01)

    raw = await serve(script)
    client = upstream(raw.url, request_timeout=0.2)
    answer = await client.send(f"{raw.url}/v1/messages", {}, b"{}", stream=False)
    with pytest.raises(UpstreamTimeout, match=r"did not answer within 0\.2 s"):
        await answer.read()
    answer.close()


async def test_a_slow_reader_pauses_the_provider_instead_of_filling_memory(
    serve: Callable[[Script], Awaitable[RawServer]],
) -> None:
    """8 MB the reader does not take stays mostly in the provider's socket, and all of it arrives."""
    body = bytes(range(256)) * (8 * 4096)
    written = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for i in range(0, len(body), 65536):
            writer.write(b"%x\r\n%s\r\n" % (65536, body[i : i + 65536]))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        written.set()

    raw = await serve(script)
    client = upstream(raw.url)
    answer = await client.send(f"{raw.url}/v1/messages", {}, b"{}", stream=True)
    for _ in range(50):
        await asyncio.sleep(0.01)
    assert not written.is_set()  # the provider is held back by the paused socket
    assert answer._size <= http1_exchange.HIGH_WATER + 65536 * 2  # type: ignore[attr-defined]
    received = bytearray()
    while chunk := await answer.readany():
        received += chunk
    assert bytes(received) == body
    answer.close()
    await client.close()


async def test_closing_an_answer_mid_body_drops_its_connection(
    serve: Callable[[Script], Awaitable[RawServer]],
) -> None:
    """The client went away: the provider sees its request cancelled, and the next one gets a new connection."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b"c\r\nevent: one\n\n\r\n")
        await writer.drain()
        await reader.read()  # until the client hangs up

    raw = await serve(script)
    client = upstream(raw.url)
    answer = await client.send(f"{raw.url}/v1/messages", {}, b"{}", stream=True)
    assert await answer.readany() == b"event: one\n\n"
    answer.close()
    await asyncio.wait_for(raw.closed_by_client.wait(), 10)
    await client.close()


async def test_a_request_cancelled_while_waiting_drops_its_connection(
    serve: Callable[[Script], Awaitable[RawServer]],
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()

    raw = await serve(script)
    client = upstream(raw.url)
    task = asyncio.create_task(client.send(f"{raw.url}/v1/messages", {}, b"{}", stream=True))
    while not raw.connections:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(raw.closed_by_client.wait(), 10)
    await client.close()


@pytest.mark.parametrize(
    "reply",
    [
        sized(b"{}", "connection: close\r\n"),  # the provider says it will not serve another
        sized(b"{}") + b"HTTP/1.1 200 OK\r\n",  # bytes after the answer: not to be trusted again
    ],
)
async def test_a_connection_the_provider_will_not_reuse_is_not_reused(
    serve: Callable[[Script], Awaitable[RawServer]], reply: bytes
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(reply)
        await writer.drain()
        await reader.read()

    raw = await serve(script)
    client = upstream(raw.url)
    for _ in range(2):
        answer = await client.send(f"{raw.url}/v1/messages", {}, b"{}", stream=False)
        assert await answer.read() == b"{}"
        answer.close()
    assert raw.connections == 2
    await client.close()


async def test_a_connection_the_provider_closed_while_idle_is_replaced(
    serve: Callable[[Script], Awaitable[RawServer]],
) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(sized(b"{}"))
        await writer.drain()
        writer.close()  # keep-alive promised, then the idle connection is closed

    raw = await serve(script)
    client = upstream(raw.url)
    for _ in range(2):
        answer = await client.send(f"{raw.url}/v1/messages", {}, b"{}", stream=False)
        assert await answer.read() == b"{}"
        await asyncio.sleep(0.05)
    assert raw.connections == 2
    await client.close()


async def test_a_kept_alive_connection_closed_as_the_request_goes_out_is_retried_once_on_a_new_one(
    serve: Callable[[Script], Awaitable[RawServer]],
) -> None:
    """The provider closes an idle connection just as ccproxy reuses it: the request goes again, on a new connection."""
    raw: RawServer

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader, raw)
        writer.write(sized(b'{"n":1}'))
        await writer.drain()
        if raw.connections == 1:
            await read_request(reader, raw)
            writer.transport.abort()  # the second request on this connection is never answered

    raw = await serve(script)
    client = upstream(raw.url)
    for n in range(2):
        answer = await client.send(f"{raw.url}/v1/messages", {}, b'{"q":%d}' % n, stream=False)
        assert await answer.read() == b'{"n":1}'
        answer.close()
    assert raw.connections == 2
    assert [r.endswith(b'{"q":1}') for r in raw.requests] == [False, True, True]
    await client.close()


async def test_a_gzipped_answer_is_inflated_and_an_unknown_coding_refused(
    serve: Callable[[Script], Awaitable[RawServer]],
) -> None:
    packed = gzip.compress(b'{"type":"message"}')
    replies = [sized(packed, "content-encoding: gzip\r\n"), sized(b"??", "content-encoding: zstd\r\n")]

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while replies:
            await read_request(reader)
            writer.write(replies.pop(0))
            await writer.drain()

    raw = await serve(script)
    client = upstream(raw.url)
    answer = await client.send(f"{raw.url}/v1/messages", {}, b"{}", stream=False)
    assert await answer.read() == b'{"type":"message"}'
    answer.close()
    with pytest.raises(UpstreamUnreachable, match="Content-Encoding 'zstd'"):
        await client.send(f"{raw.url}/v1/messages", {}, b"{}", stream=False)
    await client.close()


async def test_a_header_with_a_line_break_is_refused_before_sending() -> None:
    client = upstream("http://127.0.0.1:9")
    with pytest.raises(ProxyError, match="header configured for provider 'acme'"):
        await client.send("http://127.0.0.1:9/v1/messages", {"x-a": "1\r\nx-b: 2"}, b"{}", stream=False)


def _tls_server_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TLS / "server.pem", TLS / "server.key")
    return context


async def test_https_is_verified_against_the_trusted_cas(monkeypatch: pytest.MonkeyPatch) -> None:
    """A certificate from a CA the system does not trust is refused; trusted, the call goes through."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(sized(b"{}"))
        await writer.drain()

    server = await asyncio.start_server(lambda r, w: _closing(script, r, w), "127.0.0.1", 0, ssl=_tls_server_context())
    url = f"https://localhost:{server.sockets[0].getsockname()[1]}"
    try:
        with pytest.raises(UpstreamUnreachable, match="certificate verify failed"):
            await upstream(url).send(f"{url}/v1/messages", {}, b"{}", stream=False)
        trusting = ssl.create_default_context(cafile=str(TLS / "ca.pem"))
        monkeypatch.setattr("ccproxy_core.server.upstream._tls_context", lambda: trusting)
        client = upstream(url)
        answer = await client.send(f"{url}/v1/messages", {}, b"{}", stream=False)
        assert await answer.read() == b"{}"
        answer.close()
        await client.close()
    finally:
        server.close()
        await server.wait_closed()


async def _closing(script: Script, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await script(reader, writer)
        await reader.read()
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    finally:
        writer.close()
