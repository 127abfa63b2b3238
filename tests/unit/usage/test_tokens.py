"""UsageMeter: the provider's reported usage, from JSON, SSE bytes in any chunking, or decoded events."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from ccproxy_core.core.pricing import TokenCounts
from ccproxy_core.usage.tokens import UsageMeter, from_openai
from tests.fakes import recorded, recorded_json

ANTHROPIC_SSE = recorded("anthropic/stream_text.sse")
OPENAI_SSE = recorded("openai/stream_text_with_usage.sse")


def _metered(data: bytes, cuts: list[int]) -> TokenCounts:
    meter = UsageMeter()
    start = 0
    for cut in sorted(set(cuts)):
        meter.feed(data[start:cut])
        start = cut
    meter.feed(data[start:])
    meter.flush()
    return meter.counts


def test_anthropic_stream_takes_message_start_then_delta() -> None:
    """message_start gives input and cache counts; message_delta's cumulative output wins."""
    assert _metered(ANTHROPIC_SSE, []) == TokenCounts(
        input=17, output=10, cache_read=0, cache_creation=0, cache_creation_1h=0
    )


def test_openai_stream_usage_chunk() -> None:
    """The final usage chunk of an OpenAI stream: prompt, completion, cached."""
    assert _metered(OPENAI_SSE, []) == TokenCounts(input=78, output=9, cache_read=0, cache_creation=0)


@given(st.lists(st.integers(min_value=0, max_value=len(ANTHROPIC_SSE)), max_size=12))
def test_any_chunking_of_an_anthropic_stream_gives_the_same_usage(cuts: list[int]) -> None:
    """Splitting the bytes anywhere, even inside `"usage"`, changes nothing."""
    assert _metered(ANTHROPIC_SSE, cuts) == _metered(ANTHROPIC_SSE, [])


@given(st.lists(st.integers(min_value=0, max_value=len(OPENAI_SSE)), max_size=12))
def test_any_chunking_of_an_openai_stream_gives_the_same_usage(cuts: list[int]) -> None:
    """The same holds for an OpenAI stream."""
    assert _metered(OPENAI_SSE, cuts) == _metered(OPENAI_SSE, [])


def test_every_single_cut_of_a_stream() -> None:
    """Every one-cut split of the recorded Anthropic stream meters the same."""
    whole = _metered(ANTHROPIC_SSE, [])
    assert all(_metered(ANTHROPIC_SSE, [i]) == whole for i in range(len(ANTHROPIC_SSE)))


def test_cached_prompt_tokens_are_cache_reads_not_input() -> None:
    """From OpenAI, input = prompt_tokens - cached_tokens and cache_read = cached_tokens."""
    assert from_openai(
        {"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 60}}
    ) == {"input": 40, "output": 5, "cache_read": 60, "cache_creation": 0}


def test_anthropic_json_with_cache_breakdown() -> None:
    """A whole Anthropic answer: cache creation and its 1-hour part are read."""
    body = orjson.dumps(
        {
            "type": "message",
            "usage": {
                "input_tokens": 3,
                "output_tokens": 7,
                "cache_read_input_tokens": 11,
                "cache_creation_input_tokens": 13,
                "cache_creation": {"ephemeral_5m_input_tokens": 8, "ephemeral_1h_input_tokens": 5},
            },
        }
    )
    meter = UsageMeter()
    meter.feed_body(body)
    assert meter.seen
    assert meter.counts == TokenCounts(input=3, output=7, cache_read=11, cache_creation=13, cache_creation_1h=5)


def test_recorded_json_answers() -> None:
    """Recorded answers from both providers meter as reported."""
    message = recorded_json("anthropic/message_tool_use.json")
    meter = UsageMeter()
    meter.feed_body(orjson.dumps(message))
    assert meter.counts.output == message["usage"]["output_tokens"]
    completion = recorded_json("openai/completion_reasoning_o3_mini.json")
    meter = UsageMeter()
    meter.feed_body(orjson.dumps(completion))
    assert meter.counts.output == completion["usage"]["completion_tokens"]


def test_model_text_saying_usage_is_not_usage() -> None:
    """A text delta containing "usage" is escaped JSON and never parsed as usage."""
    event = orjson.dumps({"type": "content_block_delta", "delta": {"type": "text_delta", "text": '"usage": 5'}})
    meter = UsageMeter()
    meter.feed(b"event: content_block_delta\ndata: " + event + b"\n\n")
    assert not meter.seen


def test_decoded_events_feed_the_same_way() -> None:
    """Events already decoded by a translator's pump give the same counts as the bytes."""
    meter = UsageMeter()
    for line in ANTHROPIC_SSE.splitlines():
        if line.startswith(b"data:"):
            meter.feed_event(orjson.loads(line[5:]))
    assert meter.counts == _metered(ANTHROPIC_SSE, [])


def test_no_usage_means_zero_and_not_seen() -> None:
    """A body without usage leaves the meter empty."""
    meter = UsageMeter()
    meter.feed_body(b'{"error": {"type": "x"}}')
    meter.feed(b'data: not json with "usage"\n\n')
    assert not meter.seen
    assert meter.counts == TokenCounts()


def test_usage_null_chunks_are_passed_over_and_spaced_json_is_read() -> None:
    """OpenAI's `"usage":null` on every chunk is skipped; `"usage": {` written with a space is read."""
    meter = UsageMeter()
    meter.feed(b'data: {"choices":[],"usage":null}\n\n')
    assert not meter.seen
    meter.feed(b'data: {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}}\n\n')
    assert meter.counts == TokenCounts(input=9, output=2)
