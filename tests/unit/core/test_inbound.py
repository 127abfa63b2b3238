"""core.inbound: the limits on what a client may send, without a network."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccproxy_core.core.errors import InvalidRequest, RequestTooLarge, UnsupportedEncoding
from ccproxy_core.core.inbound import (
    MAX_JSON_DEPTH,
    ORJSON_MAX_DEPTH,
    Inflater,
    body_coding,
    check_json_depth,
    header_problem,
    json_too_deep,
)


def nested(levels: int) -> Any:
    value: Any = 0
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


def test_orjson_writes_exactly_the_depth_the_module_assumes() -> None:
    """orjson encodes ORJSON_MAX_DEPTH nested containers and refuses one more (the depth check relies on it)."""
    orjson.dumps(nested(ORJSON_MAX_DEPTH))
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(nested(ORJSON_MAX_DEPTH + 1))


@pytest.mark.parametrize("levels", [0, 1, 10, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH])
def test_json_up_to_the_limit_is_accepted(levels: int) -> None:
    """Values nested up to MAX_JSON_DEPTH pass the check."""
    assert not json_too_deep(nested(levels))
    check_json_depth(nested(levels))


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 200, 600, 1024])
def test_json_past_the_limit_is_refused_naming_it(levels: int) -> None:
    """Values nested past MAX_JSON_DEPTH, including ones orjson itself cannot write, are refused by name."""
    value = orjson.loads(b"[" * levels + b"]" * levels)
    assert json_too_deep(value)
    with pytest.raises(InvalidRequest, match=f"more than {MAX_JSON_DEPTH} levels"):
        check_json_depth(value)


@pytest.mark.parametrize("levels", [1, 10, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 200, 600])
def test_the_text_at_hand_gives_the_same_answer(levels: int) -> None:
    """With the text a value was parsed from (short ones are counted, not encoded), the answer is
    the same as without it, on either side of the limit and past the length that is counted."""
    text = b"[" * levels + b"]" * levels
    value = orjson.loads(text)
    assert json_too_deep(value, text=text) == json_too_deep(value) == (levels > MAX_JSON_DEPTH)
    assert json_too_deep(value, text=text.decode()) == (levels > MAX_JSON_DEPTH)


def test_brackets_inside_strings_never_make_a_short_text_too_deep() -> None:
    """A string full of brackets over-counts; the value is then encoded, and found shallow."""
    text = orjson.dumps({"a": "[{" * 200})
    assert not json_too_deep(orjson.loads(text), text=text)


@given(
    st.recursive(
        st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(alphabet="[]{}ab"),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=60,
    )
)
def test_counting_agrees_with_encoding_on_any_json(value: Any) -> None:
    """Whatever the value, the text given or not changes nothing but the cost."""
    text = orjson.dumps(value)
    assert json_too_deep(value, limit=6, text=text) == json_too_deep(value, limit=6)


def test_header_values_are_checked_as_utf8() -> None:
    """ASCII and UTF-8 header values pass; a byte that is not UTF-8 names its header."""
    assert header_problem([(b"x-api-key", b"sk-1"), (b"user-agent", "clé".encode())]) is None
    assert "header X-Account-Name" in (header_problem([(b"X-Account-Name", b"a\xff")]) or "")


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        (None, None),
        ("", None),
        ("identity", None),
        ("gzip", "gzip"),
        ("X-GZIP", "gzip"),
        ("deflate, identity", "deflate"),
    ],
)
def test_body_codings_that_can_be_read(header: str | None, coding: str | None) -> None:
    """identity, gzip (x-gzip) and deflate are read; identity alongside another coding is no coding."""
    assert body_coding(header) == coding


@pytest.mark.parametrize("header", ["br", "zstd", "compress", "gzip, gzip", "gzip, br"])
def test_body_codings_without_a_decoder_are_415(header: str) -> None:
    """Anything else is a 415 that names what works."""
    with pytest.raises(UnsupportedEncoding, match="gzip, deflate or uncompressed") as info:
        body_coding(header)
    assert info.value.http_status == 415


def inflate_in(coding: str, packed: bytes, pieces: int, limit: int = 10**8) -> bytes:
    inflater = Inflater(coding, limit)
    step = max(1, len(packed) // pieces)
    out = b"".join(inflater.feed(packed[i : i + step]) for i in range(0, len(packed), step))
    inflater.finish()
    return out


@given(data=st.binary(max_size=5000), pieces=st.integers(1, 40))
def test_any_split_of_a_gzip_body_inflates_to_the_same_bytes(data: bytes, pieces: int) -> None:
    """However the compressed bytes arrive, the inflated body is the original."""
    assert inflate_in("gzip", gzip.compress(data), pieces) == data


@pytest.mark.parametrize("packed", [zlib.compress(b"x" * 100_000), zlib.compress(b"x" * 100_000)[2:-4]])
def test_deflate_is_read_with_or_without_its_zlib_header(packed: bytes) -> None:
    """`deflate` bodies are zlib streams, but raw deflate (what some clients send) is read too."""
    assert inflate_in("deflate", packed, 7) == b"x" * 100_000


def test_concatenated_gzip_members_are_read_in_turn() -> None:
    """A gzip body of two members inflates to both."""
    assert inflate_in("gzip", gzip.compress(b"one ") + gzip.compress(b"two"), 3) == b"one two"


def test_inflation_stops_as_soon_as_the_limit_is_passed() -> None:
    """A bomb is refused with 413 after at most one piece past the limit, not after inflating it all."""
    bomb = gzip.compress(b"\0" * 50_000_000)
    inflater = Inflater("gzip", 1_000_000)
    with pytest.raises(RequestTooLarge, match="inflates to more than 1000000 bytes"):
        inflater.feed(bomb)
    assert inflater.size <= 1_000_000 + 64 * 1024


@pytest.mark.parametrize(
    ("packed", "why"),
    [(b"not gzip at all", "not valid gzip"), (gzip.compress(b"{}" * 100)[:-12], "ends before its stream")],
)
def test_damaged_gzip_is_a_400(packed: bytes, why: str) -> None:
    """Bytes that are not gzip, or a stream cut short, are a 400 that says to check Content-Encoding."""
    with pytest.raises(InvalidRequest, match=why):
        inflate_in("gzip", packed, 1)


def test_data_after_a_deflate_stream_is_a_400() -> None:
    """deflate has a single stream: trailing bytes are refused."""
    with pytest.raises(InvalidRequest, match="after the end"):
        inflate_in("deflate", zlib.compress(b"{}") + b"junk", 1)
