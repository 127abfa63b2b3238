"""The SSE decoder: any chunking of a byte stream gives the same events."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccproxy_core.core.sse import DONE, SSEDecoder, SSEEvent, anthropic_event, data_event
from tests.fakes import FIXTURES

RECORDINGS = sorted((FIXTURES / "recorded").glob("*/*.sse"))


def decode(chunks: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    return events + decoder.flush()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"event: ping\ndata: {}\n\n", [SSEEvent("ping", "{}")]),
        (b"data: a\ndata: b\n\n", [SSEEvent("", "a\nb")]),
        (b"data:no-space\n\n", [SSEEvent("", "no-space")]),
        (b"data:  two-spaces\n\n", [SSEEvent("", " two-spaces")]),
        (b": keep-alive comment\n\ndata: x\n\n", [SSEEvent("", "x")]),
        (b"event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\r", [SSEEvent("a", "1"), SSEEvent("b", "2")]),
        (b"event: only-a-name\n\ndata: x\n\n", [SSEEvent("", "x")]),
        (b"id: 7\nretry: 10\ndata: x\n\n", [SSEEvent("", "x")]),
        (b"data: unterminated", [SSEEvent("", "unterminated")]),
        (b"event: a\ndata: 1\n\ndata: 2\n\n", [SSEEvent("a", "1"), SSEEvent("", "2")]),
        (b"data: a\n\ndata: b\ndata: c\n\n", [SSEEvent("", "a"), SSEEvent("", "b\nc")]),
        (b"data: a\n\n: comment\n\nevent: e\ndata: b\n\n", [SSEEvent("", "a"), SSEEvent("e", "b")]),
        (b"data: a\n\n\ndata: b\n\n", [SSEEvent("", "a"), SSEEvent("", "b")]),
        ("data: caf\u00e9 \u2603\n\n".encode(), [SSEEvent("", "caf\u00e9 \u2603")]),
    ],
)
def test_decoder_follows_the_event_stream_rules(raw: bytes, expected: list[SSEEvent]) -> None:
    """Line endings, comments, the optional space, multi-line data and a final unterminated event."""
    assert decode([raw]) == expected


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_every_split_point_of_a_recording_gives_the_same_events(path: object) -> None:
    """Splitting a real recording at every single byte boundary never changes the events."""
    raw = path.read_bytes()  # type: ignore[attr-defined]
    whole = decode([raw])
    assert whole, "a recording has events"
    for cut in range(len(raw)):
        assert decode([raw[:cut], raw[cut:]]) == whole


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_a_recording_read_whole_gives_what_its_lines_give(path: object) -> None:
    """A read holding many whole events (as under load) gives what the same bytes give a line at a time."""
    raw = path.read_bytes()  # type: ignore[attr-defined]
    assert decode([raw]) == decode(raw.splitlines(keepends=True))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_chunking_of_a_recording_gives_the_same_events(data: st.DataObject) -> None:
    """Random chunkings (including one-byte chunks and CR/LF splits) give the same events."""
    raw = data.draw(st.sampled_from(RECORDINGS)).read_bytes()
    cuts = sorted(data.draw(st.sets(st.integers(min_value=1, max_value=max(1, len(raw) - 1)), max_size=60)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert decode(chunks) == decode([raw])


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", "message_start", "ping"]),
            # any text a stream can carry: no line breaks, no lone surrogates (not UTF-8)
            st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30),
        ),
        max_size=8,
    ),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_encoded_events_decode_back(events: list[tuple[str, str]], newline: bytes) -> None:
    """What the writer produces, with any line ending, the decoder reads back."""
    raw = b"".join(
        (f"event: {n}".encode() + newline if n else b"") + b"data: " + d.encode() + newline + newline for n, d in events
    )
    assert decode([raw]) == [SSEEvent(n, d) for n, d in events]


def test_writers_produce_the_wire_format() -> None:
    assert anthropic_event("ping", {"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert data_event({"a": 1}) == b'data: {"a":1}\n\n'
    assert DONE == b"data: [DONE]\n\n"
