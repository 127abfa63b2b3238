"""HTTP/1.1 framing, sans I/O: a provider's response parsed from any split of its bytes, the
lies it may tell refused, and the request head ccproxy writes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccproxy_core.core.http1 import MAX_HEAD, ProtocolError, ResponseParser, request_head

SIZED = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
CHUNKED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"7\r\nevent: \r\n"
    b"18;ext=1\r\nmessage_start\ndata: {}\n\n\r\n"
    b"0\r\nx-trailer: 1\r\n\r\n"
)


def parse(*pieces: bytes) -> tuple[ResponseParser, bytes]:
    parser = ResponseParser()
    body = b"".join(parser.feed(piece) for piece in pieces)
    return parser, body


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_split_of_a_sized_answer_gives_the_same_head_and_body(cuts: list[int]) -> None:
    parser, body = parse(*split(SIZED, cuts))
    assert parser.done and not parser.extra
    assert parser.head is not None and parser.head.status == 200 and parser.head.keep_alive
    assert ("Content-Type", "application/json") in parser.head.headers
    assert body == b'{"ok":true}'


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_split_of_a_chunked_answer_gives_the_same_body(cuts: list[int]) -> None:
    parser, body = parse(*split(CHUNKED, cuts))
    assert parser.done and not parser.extra
    assert body == b"event: message_start\ndata: {}\n\n"


def test_a_body_piece_is_handed_on_as_it_arrives() -> None:
    """Nothing is held back: each piece of a chunk comes out of the feed that brought it."""
    parser = ResponseParser()
    head = CHUNKED.index(b"\r\n\r\n") + 4
    assert parser.feed(CHUNKED[: head + 5]) == b"ev"
    assert parser.feed(CHUNKED[head + 5 : head + 8]) == b"ent"
    assert not parser.done


def test_interim_answers_are_skipped() -> None:
    parser, body = parse(b"HTTP/1.1 100 Continue\r\n\r\n" + SIZED)
    assert parser.head is not None and parser.head.status == 200 and body == b'{"ok":true}'


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_end_at_their_head(status: int) -> None:
    parser, body = parse(f"HTTP/1.1 {status} X\r\nContent-Length: 5\r\n\r\n".encode())
    assert parser.done and body == b""


def test_an_answer_without_length_runs_to_the_close_and_is_not_reused() -> None:
    parser, body = parse(b"HTTP/1.1 200 OK\r\n\r\nabc", b"def")
    assert not parser.done and body == b"abcdef"
    assert parser.closed() and parser.head is not None and not parser.head.keep_alive


def test_a_sized_body_cut_short_is_not_complete() -> None:
    parser, _ = parse(SIZED[:-3])
    assert not parser.closed()


def test_bytes_after_the_message_are_noticed() -> None:
    parser, body = parse(SIZED + b"HTTP/1.1 200")
    assert parser.done and parser.extra and body == b'{"ok":true}'


@pytest.mark.parametrize(
    ("head", "keep"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0", False),
        (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0", True),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3", False),
    ],
)
def test_keep_alive_follows_the_version_and_the_connection_header(head: bytes, keep: bool) -> None:
    parser, _ = parse(head + b"\r\n\r\n" + (b"0\r\n\r\n" if b"chunked" in head else b""))
    assert parser.head is not None and parser.head.keep_alive is keep


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "status line"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nno-colon\r\n\r\n", "header line"),
        (b"HTTP/1.1 200 OK\r\nA: 1\r\n: x\r\n\r\n", "header line"),  # a name left empty among others
        (b"HTTP/1.1 200 OK\r\n: x\r\n\r\n", "header line"),
        (b"HTTP/1.1 200 OK\r\nA: 1\r\n folded: x\r\n\r\n", "header name"),
        (b"HTTP/1.1 200 OK\r\nA : 1\r\n\r\n", "header name"),
        (b"HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\n\r\n", "bare CR or LF"),
        (b"HTTP/1.1 200 OK\r\nA: 1\rB: 2\r\n\r\n", "bare CR or LF"),
        (b"HTTP/1.1 200 OK\r\nA: 1\n\rB: 2\r\n\r\n", "bare CR or LF"),  # as many of each, neither a line end
        (b"HTTP/1.1 200 OK\r\nA: 1\r\r\nB: 2\r\n\r\n", "bare CR or LF"),
        (b"HTTP/1.1 200 OK\r\nx-id: a\x00b\r\n\r\n", "control character"),
        (b"HTTP/1.1 200 OK\r\nx-id: a\x1bb\r\n\r\n", "control character"),
        (b"HTTP/1.1 200 OK\r\nx-id: a\x7fb\r\n\r\n", "control character"),
        (b"HTTP/1.1 200 O\x00K\r\n\r\n", "control character"),
        (b"HTTP/1.1 200 OK\r\nx-caf\xc3\xa9: 1\r\n\r\n", "header name"),
        (b"HTTP/1.1 200 OK\r\nA: 1\r\nx@y: 1\r\n\r\n", "header name"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", "one number"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "one number"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "two different"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "only chunked"),
        (b"HTTP/1.1 101 Switching\r\n\r\n", "switched protocols"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk-size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\n", "chunk-size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "longer than its size"),
    ],
)
def test_a_malformed_answer_is_refused_saying_how(data: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        parse(data)


def test_a_head_that_never_ends_is_refused_at_the_limit() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(ProtocolError, match="KiB"):
        parser.feed(b"x-filler: " + b"a" * MAX_HEAD)


def test_every_token_character_may_name_a_header() -> None:
    parser, _ = parse(b"HTTP/1.1 200 OK\r\nx_a.b~c!#$%&'*+^`|: 1\r\nX-Y-9: 2\r\nContent-Length: 0\r\n\r\n")
    assert parser.head is not None and [n for n, _ in parser.head.headers][:2] == ["x_a.b~c!#$%&'*+^`|", "X-Y-9"]


TOKEN = set("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


@given(st.text(st.characters(exclude_characters="\r\n:", exclude_categories=("Cs",)), max_size=12))
def test_a_header_name_is_taken_exactly_when_it_is_a_token(name: str) -> None:
    """RFC 9110's token: one or more of its characters, and nothing else (a blank, a non-ASCII
    letter, a control character, an empty name: the answer is refused)."""
    head = b"HTTP/1.1 200 OK\r\nx-first: 1\r\n" + name.encode() + b": v\r\nContent-Length: 0\r\n\r\n"
    if name and set(name) <= TOKEN:
        parser, _ = parse(head)
        assert parser.head is not None and (name, "v") in parser.head.headers
    else:
        with pytest.raises(ProtocolError, match=r"header|control character"):
            parse(head)


def test_a_tab_and_non_ascii_bytes_are_kept_in_a_value() -> None:
    """HTAB and obs-text are a field value's own; only the other control characters are refused."""
    parser, _ = parse(b"HTTP/1.1 200 OK\r\nx-a: 1\t2\r\nx-b: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n")
    assert parser.head is not None and parser.head.headers[:2] == [("x-a", "1\t2"), ("x-b", "café")]


def test_undecodable_header_bytes_are_replaced_not_fatal() -> None:
    parser, _ = parse(b"HTTP/1.1 200 OK\r\nx-name: caf\xe9\r\nContent-Length: 0\r\n\r\n")
    assert parser.head is not None and ("x-name", "caf\ufffd") in parser.head.headers


def test_the_request_head_frames_the_body_itself() -> None:
    head = request_head("/v1/messages?beta=true", "api.example:8443", {"x-api-key": "k", "content-length": "9"}, 42)
    assert head == (
        b"POST /v1/messages?beta=true HTTP/1.1\r\nhost: api.example:8443\r\nx-api-key: k\r\ncontent-length: 42\r\n\r\n"
    )


def test_a_configured_host_header_is_used() -> None:
    assert b"host: vhost.internal\r\n" in request_head("/", "10.0.0.1", {"host": "vhost.internal"}, 0)


@pytest.mark.parametrize(
    "headers", [{"x-a": "1\r\nx-injected: 1"}, {"x-a": "1\n"}, {"x-a\r": "1"}, {"host": "h\r\nx: 1"}]
)
def test_a_line_break_in_a_header_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        request_head("/", "h", headers, 0)


@pytest.mark.parametrize(("target", "host"), [("/v1\r\nx: 1", "h"), ("/", "h\nx: 1"), ("/\r", "h")])
def test_a_line_break_in_the_target_or_host_is_refused(target: str, host: str) -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        request_head(target, host, {"x-a": "1"}, 0)


def test_a_stream_fed_one_whole_chunk_at_a_time_gives_each_chunk_s_data() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") == b""
    assert [parser.feed(b"%x\r\n%s\r\n" % (len(e), e)) for e in (b"event: a\n\n", b"x" * 300)] == [
        b"event: a\n\n",
        b"x" * 300,
    ]
    assert parser.feed(b"0\r\n\r\n") == b"" and parser.done


@pytest.mark.parametrize(
    ("chunk", "why"),
    [(b"zz\r\nabc\r\n", "chunk-size"), (b"0x3\r\nabc\r\n", "chunk-size"), (b"2\r\nabc\r\n", "longer than")],
)
def test_a_malformed_chunk_arriving_alone_is_refused(chunk: bytes, why: str) -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    with pytest.raises(ProtocolError, match=why):
        parser.feed(chunk)
