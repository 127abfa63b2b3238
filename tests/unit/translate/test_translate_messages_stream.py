"""Anthropic SSE -> OpenAI chunks: every recorded stream, replayed, means the same to an OpenAI client."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ccproxy_core.core.errors import RateLimited
from ccproxy_core.core.sse import SSEDecoder
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.messages_stream import MessagesStreamTranslator
from tests.specs import validator

FIXTURES = Path(__file__).parents[2] / "fixtures"
ANTHROPIC = FIXTURES / "recorded" / "anthropic"
RECORDINGS = sorted(ANTHROPIC.glob("*.sse"))
CREATED = 1_700_000_000
MODEL = "claude-via-proxy"

# -- helpers ------------------------------------------------------------------------------


def events_of(raw: bytes, cuts: list[int] | None = None) -> list[tuple[str, JSON]]:
    decoder = SSEDecoder()
    edges = [0, *(cuts or []), len(raw)]
    events = [e for a, b in itertools.pairwise(edges) for e in decoder.feed(raw[a:b])]
    return [(e.event, orjson.loads(e.data)) for e in events + decoder.flush()]


def translate(events: list[tuple[str, JSON]], **options: Any) -> list[JSON]:
    translator = MessagesStreamTranslator(
        model=MODEL, include_usage=options.pop("include_usage", True), created=CREATED, **options
    )
    chunks = [chunk for event, payload in events for chunk in translator.feed(event, payload)]
    return chunks + translator.finish()


def replay(name: str, **options: Any) -> list[JSON]:
    return translate(events_of((ANTHROPIC / name).read_bytes()), **options)


def accumulate(chunks: list[JSON]) -> ChatCompletion:
    """What the openai SDK's own stream accumulator makes of the chunks."""
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks:
        list(state.handle_chunk(ChatCompletionChunk.model_validate(chunk)))
    return state.get_final_completion()


def reasoning(chunks: list[JSON]) -> str:
    return "".join(c["choices"][0]["delta"].get("reasoning_content", "") for c in chunks if c["choices"])


def sse_event(name: str, **payload: Any) -> tuple[str, JSON]:
    return name, {"type": name, **payload}


def start(message_id: str = "msg_01abc", **usage: int) -> tuple[str, JSON]:
    return sse_event(
        "message_start",
        message={
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "usage": {"input_tokens": 5, **usage},
        },
    )


def block(index: int, **content_block: Any) -> tuple[str, JSON]:
    return sse_event("content_block_start", index=index, content_block=content_block)


def delta(index: int, **body: Any) -> tuple[str, JSON]:
    return sse_event("content_block_delta", index=index, delta=body)


def stop(index: int) -> tuple[str, JSON]:
    return sse_event("content_block_stop", index=index)


def end(reason: str = "end_turn", **usage: int) -> list[tuple[str, JSON]]:
    return [
        sse_event(
            "message_delta", delta={"stop_reason": reason, "stop_sequence": None}, usage={"output_tokens": 7, **usage}
        ),
        sse_event("message_stop"),
    ]


def deltas(chunks: list[JSON]) -> list[JSON]:
    return [c["choices"][0]["delta"] for c in chunks if c.get("choices")]


# -- every recording ----------------------------------------------------------------------

THINKING_TEXT = "".join(
    payload["delta"]["thinking"]
    for _, payload in events_of((ANTHROPIC / "stream_thinking_then_text.sse").read_bytes())
    if payload.get("delta", {}).get("type") == "thinking_delta"
)
PELICAN_CODE = (
    '\ndef pelican():\n    return "A large waterbird with a long bill and a throat pouch for catching fish."\n'
)

# recording -> (content, [(id, name, arguments)], finish_reason, prompt_tokens, completion_tokens).
# Tool-only answers accumulate to content "": the role chunk must carry `content: ""` before
# the translator can know whether text will follow.
MEANING: dict[str, tuple[str, list[tuple[str, str, str]], str, int, int]] = {
    "stream_text.sse": ("- Captain\n- Scoop", [], "stop", 17, 10),
    "stream_stop_sequence.sse": (PELICAN_CODE, [], "stop", 16, 28),
    "stream_after_tool_result_text.sse": (
        "The weather in San Francisco, CA is currently:\n- **Temperature:** 68°F\n- **Condition:** Sunny\n\n"
        "It's a nice sunny day!",
        [],
        "stop",
        770,
        38,
    ),
    "stream_adaptive_thinking_opus46.sse": ("1. **Captain Scoop**\n2. **Gullet**", [], "stop", 34, 44),
    "stream_thinking_then_text.sse": (
        "1. **Pouch** – references their distinctive bill pouch\n2. **Captain Bill** – nautical and fun",
        [],
        "stop",
        46,
        234,
    ),
    "stream_parallel_tool_use.sse": (
        "",
        [
            ("toolu_01LtHJmixrs9NcWQkK8hu8hj", "pelican_name_generator", "{}"),
            ("toolu_01N8a4jWyf116qKTMqKKmjyt", "pelican_name_generator", "{}"),
        ],
        "tool_calls",
        542,
        62,
    ),
    "stream_thinking_then_tool_use.sse": (
        "",
        [("toolu_01825dXWLSoJwCst1qTsiWdb", "fixed_version", "{}")],
        "tool_calls",
        598,
        92,
    ),
    "stream_tool_use_input_json_delta.sse": (
        "",
        [
            ("toolu_018acGYLtfR52q9yDbWaEdQZ", "get_weather", '{"location": "San Francisco, CA", "units": "f"}'),
        ],
        "tool_calls",
        656,
        74,
    ),
    "stream_text_then_tool_use.sse": (
        "I'll check the current weather in Paris for you.",
        [
            ("toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather", '{"location": "Paris"}'),
        ],
        "tool_calls",
        377,
        65,
    ),
    "stream_text_then_two_tool_uses.sse": (
        "I'll help you get the weather in New York and calculate the distance to Los Angeles. "
        "Let me fetch this information for you.",
        [
            ("toolu_01V8FdsLpokGb6tJ3okwkSDe", "get_weather", '{"location": "New York"}'),
            (
                "toolu_01LaXuzSn9P2JiYc1U99SZRv",
                "calculate_distance",
                '{"lat1": "40.7128", "lon1": "-74.0060", "lat2": "34.0522", "lon2": "-118.2437"}',
            ),
        ],
        "tool_calls",
        572,
        186,
    ),
}


def test_the_table_covers_every_recording() -> None:
    """Each recorded Anthropic stream has its expected meaning written down below."""
    assert sorted(MEANING) == [path.name for path in RECORDINGS]


@pytest.mark.parametrize("name", sorted(MEANING))
def test_a_recording_means_the_same_to_the_openai_sdk(name: str) -> None:
    """Text, tool calls (ids, names, whole arguments), finish_reason and usage survive translation."""
    content, tools, finish, prompt, completion = MEANING[name]
    result = accumulate(replay(name))
    choice = result.choices[0]
    assert choice.message.content == content
    calls = [
        (c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or [] if c.type == "function"
    ]
    assert calls == tools
    assert choice.finish_reason == finish
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (prompt, completion)
    assert result.usage.total_tokens == prompt + completion
    assert result.model == MODEL


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
@pytest.mark.parametrize("include_usage", [True, False])
def test_every_chunk_matches_the_openai_spec(path: Path, include_usage: bool) -> None:
    """Each chunk validates against CreateChatCompletionStreamResponse and shares one id and created."""
    chunks = replay(path.name, include_usage=include_usage)
    schema = validator("openai", "CreateChatCompletionStreamResponse", nullable_as_union=True)
    for chunk in chunks:
        schema.validate(chunk)
    message_id = events_of(path.read_bytes())[0][1]["message"]["id"]
    assert {c["id"] for c in chunks} == {"chatcmpl-" + message_id.removeprefix("msg_")}
    assert {c["created"] for c in chunks} == {CREATED}


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_the_stream_has_the_openai_shape(path: Path) -> None:
    """Role first, one finish_reason, then the usage chunk with `choices: []`; usage null elsewhere."""
    chunks = replay(path.name)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    finishes = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"] is not None]
    assert [c["choices"][0]["delta"] for c in finishes] == [{}]
    assert chunks[-2] is finishes[0]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])


def test_without_include_usage_there_is_no_usage_chunk() -> None:
    """include_usage false: no `usage` key at all and no `choices: []` chunk."""
    chunks = replay("stream_text.sse", include_usage=False)
    assert all("usage" not in c and c["choices"] for c in chunks)


def test_tool_index_counts_tool_calls_not_blocks() -> None:
    """Tools at Anthropic blocks 1 and 2 are OpenAI tool calls 0 and 1."""
    chunks = replay("stream_text_then_two_tool_uses.sse")
    indexes = {call["index"] for d in deltas(chunks) for call in d.get("tool_calls", [])}
    assert indexes == {0, 1}


def test_a_tool_without_arguments_gets_an_empty_object_not_an_empty_string() -> None:
    """A tool whose only input_json_delta is "" ends with arguments "{}" (LiteLLM's empty-args fix)."""
    chunks = replay("stream_parallel_tool_use.sse")
    fragments = [call["function"]["arguments"] for d in deltas(chunks) for call in d.get("tool_calls", [])]
    assert fragments == ["", "{}", "", "{}"]


def test_thinking_becomes_reasoning_content_with_the_signed_block_alongside() -> None:
    """thinking_delta -> reasoning_content; the signature arrives in a `thinking_blocks` delta."""
    chunks = replay("stream_thinking_then_text.sse")
    assert reasoning(chunks) == THINKING_TEXT
    signed = [d["thinking_blocks"][0] for d in deltas(chunks) if "thinking_blocks" in d]
    assert len(signed) == 1
    assert signed[0]["thinking"] == THINKING_TEXT
    assert signed[0]["signature"].startswith("EugGCmMI")


def test_adaptive_thinking_drops_the_blank_leading_block() -> None:
    """Opus 4.6's block 0 holding only "\\n\\n" is not sent; thinking and the answer are."""
    chunks = replay("stream_adaptive_thinking_opus46.sse")
    contents = [d["content"] for d in deltas(chunks) if d.get("content")]
    assert contents[0] == "1"
    assert reasoning(chunks) == "Brief answer with two pet pelican names."


def test_the_mid_stream_overloaded_error_becomes_one_openai_error() -> None:
    """The recorded `error` payload -> one `{"error": …}` chunk; the stream is over after it."""
    payload = orjson.loads((ANTHROPIC / "stream_error_event_overloaded.json").read_bytes())
    translator = MessagesStreamTranslator(model=MODEL, include_usage=True, created=CREATED)
    assert len(translator.feed(*start())) == 1
    assert len(translator.feed(*block(0, type="text", text=""))) == 0
    assert len(translator.feed(*delta(0, type="text_delta", text="Hel"))) == 1
    assert translator.feed("error", payload) == [
        {"error": {"message": "Overloaded", "type": "server_error", "param": None, "code": "overloaded"}}
    ]
    assert translator.feed(*delta(0, type="text_delta", text="lo")) == []
    assert translator.finish() == []
    assert translator.fail(RateLimited("late")) == []


def test_an_error_body_validates_against_the_openai_error_schema() -> None:
    """What `fail` returns is an OpenAI ErrorResponse."""
    translator = MessagesStreamTranslator(model=MODEL, include_usage=False, created=CREATED)
    (body,) = translator.fail(RateLimited("slow down", retry_after=3))
    validator("openai", "ErrorResponse", nullable_as_union=True).validate(body)
    assert body["error"]["code"] == "rate_limit_exceeded"


# -- the state machine, event by event ----------------------------------------------------


def test_ping_and_unknown_events_send_nothing() -> None:
    """`ping` and event types this code does not know are ignored wherever they come."""
    translator = MessagesStreamTranslator(model=MODEL, include_usage=True, created=CREATED)
    translator.feed(*start())
    assert translator.feed("ping", {"type": "ping"}) == []
    assert translator.feed("future_event", {"type": "future_event", "x": 1}) == []
    assert translator.feed(*delta(0, type="text_delta", text="no block is open")) == []


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            [block(0, type="text", text=""), delta(0, type="text_delta", text="\n\nHi"), stop(0)],
            [{"content": "\n\nHi"}],
            id="leading-blank-kept-when-text-follows-in-the-block",
        ),
        pytest.param(
            [
                block(0, type="text", text=""),
                delta(0, type="text_delta", text=" "),
                delta(0, type="text_delta", text="\n"),
                delta(0, type="text_delta", text="Hi"),
                stop(0),
            ],
            [{"content": " \nHi"}],
            id="held-whitespace-is-flushed-with-the-first-word",
        ),
        pytest.param(
            [
                block(0, type="text", text=""),
                delta(0, type="text_delta", text="A"),
                stop(0),
                block(1, type="text", text=""),
                delta(1, type="text_delta", text="\n\n"),
                stop(1),
            ],
            [{"content": "A"}, {"content": "\n\n"}],
            id="blank-later-block-is-sent",
        ),
        pytest.param(
            [block(0, type="tool_use", id="t1", name="f", input={"a": 1}), stop(0)],
            [
                {
                    "tool_calls": [
                        {"index": 0, "id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
                    ]
                }
            ],
            id="input-given-at-start-is-sent-at-once",
        ),
        pytest.param(
            [
                block(0, type="server_tool_use", id="s1", name="web_search", input={}),
                delta(0, type="input_json_delta", partial_json='{"q":1}'),
                stop(0),
            ],
            [],
            id="server-tools-are-not-client-tool-calls",
        ),
        pytest.param(
            [block(0, type="redacted_thinking", data="abc"), stop(0)],
            [{"thinking_blocks": [{"type": "redacted_thinking", "data": "abc"}]}],
            id="redacted-thinking",
        ),
        pytest.param(
            [block(0, type="text", text=""), delta(0, type="citations_delta", citation={}), stop(0)],
            [],
            id="citations-are-dropped",
        ),
        pytest.param(
            [
                block(0, type="thinking", thinking="", signature=""),
                delta(0, type="thinking_delta", thinking=""),
                delta(0, type="text_delta", text="wrong block"),
                stop(0),
            ],
            [],
            id="empty-and-mismatched-deltas-send-nothing",
        ),
    ],
)
def test_block_events_translate_to_these_deltas(events: list[tuple[str, JSON]], expected: list[JSON]) -> None:
    """Table: Anthropic block events in, OpenAI deltas out (between the role and finish chunks)."""
    chunks = translate([start(), *events, *end()])
    assert deltas(chunks)[1:-1] == expected


def test_events_before_message_start_still_open_the_stream() -> None:
    """A compatible upstream that skips message_start still gets a role chunk first."""
    events = [block(0, type="text", text=""), delta(0, type="text_delta", text="x"), stop(0), *end()]
    chunks = translate(events)
    assert deltas(chunks)[0] == {"role": "assistant", "content": ""}
    assert chunks[0]["id"] == "chatcmpl-ccproxy"


def test_a_given_chunk_id_is_used_for_every_chunk() -> None:
    """`chunk_id` overrides the id derived from the message id."""
    chunks = translate([start(), *end()], chunk_id="chatcmpl-fixed")
    assert {c["id"] for c in chunks} == {"chatcmpl-fixed"}


def test_usage_is_cumulative_and_every_field_optional() -> None:
    """A second message_delta updates usage but sends no second finish_reason; cache tokens add up."""
    events = [
        start(cache_read_input_tokens=100, cache_creation_input_tokens=20),
        sse_event("message_delta", delta={"stop_reason": "max_tokens"}, usage={"output_tokens": 3}),
        sse_event("message_delta", delta={"stop_reason": "max_tokens"}, usage={"output_tokens": 9}),
        sse_event("message_stop"),
    ]
    chunks = translate(events)
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]] == [None, "length"]
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 125,
        "completion_tokens": 9,
        "total_tokens": 134,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 20},
    }


def test_finish_closes_a_stream_that_ended_without_message_stop() -> None:
    """finish() on an open message sends finish_reason and usage; on an empty one, nothing."""
    chunks = translate([start(), block(0, type="tool_use", id="t", name="f", input={})])
    assert deltas(chunks)[1:] == [
        {"tool_calls": [{"index": 0, "id": "t", "type": "function", "function": {"name": "f", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]},
        {},
    ]
    assert chunks[-1]["choices"] == []
    assert translate([]) == []


@pytest.mark.parametrize(
    ("fragments", "content", "finish"),
    [
        (["", '{"a"', ": 1}"], '{"a": 1}', "stop"),
        ([""], "{}", "stop"),
    ],
)
def test_json_mode_streams_the_json_tool_as_content(fragments: list[str], content: str, finish: str) -> None:
    """json_tool_call arguments arrive as `content`, and the stop is a plain `stop`."""
    pieces = [delta(0, type="input_json_delta", partial_json=f) for f in fragments]
    events = [
        start(),
        block(0, type="tool_use", id="t", name="json_tool_call", input={}),
        *pieces,
        stop(0),
        *end("tool_use"),
    ]
    result = accumulate(translate(events, json_mode=True))
    assert result.choices[0].message.content == content
    assert result.choices[0].message.tool_calls is None
    assert result.choices[0].finish_reason == finish


def test_json_mode_leaves_other_tools_as_tool_calls() -> None:
    """With json_mode on, a real tool is still a tool call and the stop stays tool_calls."""
    events = [
        start(),
        block(0, type="tool_use", id="t", name="lookup", input={}),
        delta(0, type="input_json_delta", partial_json="{}"),
        stop(0),
        *end("tool_use"),
    ]
    result = accumulate(translate(events, json_mode=True))
    assert result.choices[0].finish_reason == "tool_calls"
    assert result.choices[0].message.tool_calls is not None


# -- properties ---------------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_any_chunking_of_a_recording_gives_the_same_chunks(data: st.DataObject) -> None:
    """Splitting the upstream bytes anywhere never changes what the client receives."""
    raw = data.draw(st.sampled_from(RECORDINGS)).read_bytes()
    cuts = sorted(data.draw(st.sets(st.integers(min_value=1, max_value=len(raw) - 1), max_size=40)))
    assert translate(events_of(raw, cuts)) == translate(events_of(raw))


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(MEANING)),
    extra=st.lists(st.sampled_from([("ping", {"type": "ping"}), ("mystery", {"type": "mystery"})]), max_size=5),
    at=st.integers(0, 40),
)
def test_pings_and_unknown_events_anywhere_change_nothing(name: str, extra: list[tuple[str, JSON]], at: int) -> None:
    """Keep-alives and new event types may be inserted at any point without effect."""
    events = events_of((ANTHROPIC / name).read_bytes())
    at = min(at, len(events) - 1)
    assert translate([*events[:at], *extra, *events[at:]]) == translate(events)


_ANY_EVENT = st.sampled_from(
    [
        ("message_start", {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3}}}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_start", {"index": 1, "content_block": {"type": "text", "text": "hi"}}),
        ("content_block_start", {"index": 1, "content_block": {"type": "thinking", "thinking": ""}}),
        ("content_block_start", {"index": 2, "content_block": {"type": "tool_use", "id": "t", "name": "f"}}),
        ("content_block_start", {"index": 2, "content_block": {"type": "tool_use", "name": "json_tool_call"}}),
        ("content_block_start", {"index": 3, "content_block": {"type": "redacted_thinking", "data": "x"}}),
        ("content_block_start", {"index": 3, "content_block": {"type": "server_tool_use"}}),
        ("content_block_delta", {"delta": {"type": "text_delta", "text": "\n\n"}}),
        ("content_block_delta", {"delta": {"type": "text_delta", "text": "word"}}),
        ("content_block_delta", {"delta": {"type": "thinking_delta", "thinking": "hmm"}}),
        ("content_block_delta", {"delta": {"type": "signature_delta", "signature": "sig"}}),
        ("content_block_delta", {"delta": {"type": "input_json_delta", "partial_json": ""}}),
        ("content_block_delta", {"delta": {"type": "input_json_delta", "partial_json": '{"a":1}'}}),
        ("content_block_stop", {"index": 0}),
        ("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
        ("message_stop", {}),
        ("ping", {}),
    ]
)


@settings(max_examples=200, deadline=None)
@given(events=st.lists(_ANY_EVENT, max_size=25), json_mode=st.booleans(), end=st.sampled_from(["finish", "fail"]))
def test_any_order_of_events_follows_the_transition_table(
    events: list[tuple[str, JSON]], json_mode: bool, end: str
) -> None:
    """Events in any order never raise; after the end or an error the translator sends nothing more."""
    translator = MessagesStreamTranslator(model=MODEL, include_usage=True, json_mode=json_mode, created=CREATED)
    for event, payload in events:
        translator.feed(event, payload)
    if end == "finish":
        translator.finish()
    else:
        out = translator.fail(RateLimited("slow down"))  # one error chunk, unless already closed
        assert translator.complete and translator.failed is (len(out) == 1)
    assert translator.feed("content_block_delta", {"delta": {"type": "text_delta", "text": "late"}}) == []
    assert translator.finish() == []
    if translator.complete:  # a stream that never started may still fail
        assert translator.fail(RateLimited("again")) == []
