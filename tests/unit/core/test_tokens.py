"""The local token estimate: close to Anthropic's real counts, never fooled by base64, never decreasing."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccproxy_core.core.tokens import IMAGE_TOKENS, estimate_tokens
from ccproxy_core.core.wire import JSON

FIXTURES = Path(__file__).parents[2] / "fixtures"
ANTHROPIC = FIXTURES / "recorded" / "anthropic"
CLAUDE_CODE = sorted((FIXTURES / "claude-code").glob("*.json"))


def recorded_counts() -> list[tuple[str, JSON, int]]:
    """(name, request body, input tokens Anthropic billed) for every recording that has both."""
    rows = [
        (
            "count_tokens",
            orjson.loads((ANTHROPIC / "count_tokens.request.json").read_bytes()),
            orjson.loads((ANTHROPIC / "count_tokens_response.json").read_bytes())["input_tokens"],
        )
    ]
    for path in sorted(ANTHROPIC.glob("*.request.json")):
        stream = path.with_name(path.name.replace(".request.json", ".sse"))
        if stream.exists():
            billed = re.search(rb'"input_tokens":(\d+)', stream.read_bytes())
            assert billed is not None
            rows.append((stream.stem, orjson.loads(path.read_bytes()), int(billed.group(1))))
    return rows


GIF_300x250 = base64.b64encode(b"GIF89a" + (300).to_bytes(2, "little") + (250).to_bytes(2, "little")).decode()


def png(width: int, height: int, padding: int = 100) -> str:
    """A base64 PNG whose header says width x height (the pixels are never read)."""
    header = b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + b"IHDR"
    return base64.b64encode(
        header + width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00" + b"\x00" * padding
    ).decode()


def one_message(*blocks: JSON) -> JSON:
    return {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": list(blocks)}]}


def image(data: str, media_type: str = "image/png") -> JSON:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


@pytest.mark.parametrize(("name", "body", "billed"), recorded_counts(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_estimate_is_within_ten_percent_of_real_counts(name: str, body: JSON, billed: int) -> None:
    """Calibration: every recorded request (text, thinking, tools, a tool round trip) is within 10%."""
    assert abs(estimate_tokens(body) - billed) <= max(2, billed * 0.10)


def test_the_count_tokens_recording_is_matched() -> None:
    """count_tokens said 19 for the quick brown fox."""
    body = orjson.loads((ANTHROPIC / "count_tokens.request.json").read_bytes())
    assert estimate_tokens(body) == 19


@pytest.mark.parametrize("path", CLAUDE_CODE, ids=lambda p: p.name)
def test_claude_code_requests_land_in_a_plausible_range(path: Path) -> None:
    """~65 KB of tools and a system prompt: between one token per 6 bytes and one per 2.5 bytes of JSON."""
    body = orjson.loads(path.read_bytes())["body"]
    size = len(orjson.dumps(body))
    assert size / 6 < estimate_tokens(body) < size / 2.5


def test_the_main_claude_code_request_is_fifteen_to_thirty_thousand_tokens() -> None:
    """text-0001 (24 tools, 3 system blocks) sits where Claude Code's own /context puts such a prompt."""
    body = orjson.loads((FIXTURES / "claude-code" / "text-0001.json").read_bytes())["body"]
    assert 15_000 <= estimate_tokens(body) <= 30_000


@pytest.mark.parametrize(
    ("source", "tokens"),
    [
        ({"type": "base64", "media_type": "image/png", "data": png(1, 1)}, 1),
        ({"type": "base64", "media_type": "image/png", "data": png(1000, 1000)}, 1334),
        ({"type": "base64", "media_type": "image/png", "data": png(4000, 3000)}, IMAGE_TOKENS),
        ({"type": "base64", "media_type": "image/gif", "data": GIF_300x250}, 100),
        ({"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSkZJRg" + "A" * 4000}, IMAGE_TOKENS),
        ({"type": "url", "url": "https://example.com/cat.png"}, IMAGE_TOKENS),
        ({"type": "base64", "media_type": "image/png", "data": "%%% not base64 %%%"}, IMAGE_TOKENS),
    ],
)
def test_images_cost_by_pixels_or_a_fixed_price(source: JSON, tokens: int) -> None:
    """ceil(w*h/750) capped at 1600 when the PNG/GIF header tells the size, else 1600."""
    with_image = one_message({"type": "text", "text": "x"}, {"type": "image", "source": source})
    assert estimate_tokens(with_image) - estimate_tokens(one_message({"type": "text", "text": "x"})) == tokens


def test_base64_bytes_are_never_counted_as_text() -> None:
    """A bigger file with the same header costs the same."""
    assert estimate_tokens(one_message(image(png(800, 600, 10)))) == estimate_tokens(
        one_message(image(png(800, 600, 500_000)))
    )


@pytest.mark.parametrize(
    "block",
    [
        {"type": "text", "text": "The weather in Paris is mild."},
        {"type": "thinking", "thinking": "The weather in Paris is mild.", "signature": "sig"},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris", "mild": True}},
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "The weather in Paris is mild."},
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "Paris."}]},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Paris is mild."}},
        {"type": "search_result", "title": "Paris", "source": "https://x", "content": []},
        {"type": "some_future_block", "payload": {"words": "are counted from its JSON"}},
    ],
)
def test_every_block_type_counts(block: JSON) -> None:
    """Text, thinking, tool input, tool results (string or blocks), documents, unknown blocks: all count."""
    assert estimate_tokens(one_message({"type": "text", "text": "x"}, block)) > estimate_tokens(
        one_message({"type": "text", "text": "x"})
    )


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("Hello world, this is a normal English sentence with some words. " * 20, 200, 400),
        ("漢字" * 100, 150, 300),
        ('{"additionalProperties": false, "properties": {"x": {"type": "string"}}}' * 10, 150, 400),
        ("    " * 1000, 0, 20),
    ],
)
def test_text_of_different_kinds_gets_plausible_counts(text: str, low: int, high: int) -> None:
    """Prose near 4-5 characters a token, CJK near one a character, JSON denser, blank space nearly free."""
    assert low <= estimate_tokens(one_message({"type": "text", "text": text})) <= high


def test_system_tools_and_thinking_all_count() -> None:
    """A system prompt, a tool definition and enabled thinking each add to the estimate."""
    base = one_message({"type": "text", "text": "hi"})
    plain = estimate_tokens(base)
    assert estimate_tokens({**base, "system": "Be brief."}) > plain
    assert estimate_tokens({**base, "system": [{"type": "text", "text": "Be brief."}]}) > plain
    assert estimate_tokens({**base, "tools": [{"name": "f", "input_schema": {"type": "object"}}]}) > 300
    assert estimate_tokens({**base, "thinking": {"type": "enabled", "budget_tokens": 1024}}) > plain


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messages": None},
        {"messages": ["x", None, {"role": "user"}]},
        {"system": 5, "tools": "x"},
        {"messages": [{"role": "user", "content": [None, {"type": "image"}, {"type": "document", "source": 1}]}]},
        {"messages": [{"role": "user", "content": [{"type": "tool_use", "input": {"n": 2**70}}]}]},
    ],
)
def test_odd_shapes_never_raise(body: JSON) -> None:
    """The estimate runs before validation, so malformed bodies get a number, not an exception."""
    assert estimate_tokens(body) >= 0


# -- monotonicity -------------------------------------------------------------------------

_text = st.text(max_size=40)
_block = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, _text),
    st.builds(lambda t: {"type": "thinking", "thinking": t, "signature": "s"}, _text),
    st.builds(lambda n, v: {"type": "tool_use", "id": "toolu_x", "name": n, "input": {"v": v}}, _text, _text),
    st.builds(lambda t: {"type": "tool_result", "tool_use_id": "toolu_x", "content": t}, _text),
    st.builds(lambda w, h: image(png(w, h)), st.integers(1, 3000), st.integers(1, 3000)),
)
_message = st.builds(
    lambda role, blocks: {"role": role, "content": blocks},
    st.sampled_from(["user", "assistant"]),
    st.lists(_block, max_size=3),
)
_tool = st.builds(lambda n, d: {"name": n, "description": d, "input_schema": {"type": "object"}}, _text, _text)


@settings(max_examples=200, deadline=None)
@given(st.lists(_message, max_size=5), st.lists(_tool, max_size=3), _message, _tool, st.integers(0, 5))
def test_adding_a_message_or_a_tool_never_lowers_the_estimate(
    messages: list[JSON], tools: list[JSON], extra: JSON, extra_tool: JSON, at: int
) -> None:
    """Wherever a message or tool is inserted, the estimate stays or grows."""
    body: JSON = {"model": "claude-sonnet-4-5", "messages": messages, "tools": tools}
    before = estimate_tokens(body)
    more_messages = [*messages[:at], extra, *messages[at:]]
    assert estimate_tokens({**body, "messages": more_messages}) >= before
    assert estimate_tokens({**body, "tools": [*tools[:at], extra_tool, *tools[at:]]}) >= before
