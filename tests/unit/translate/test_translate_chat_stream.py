"""Chat Completions chunks -> Anthropic stream events (reference §5): these chunks in, these events out."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccproxy_core.core.errors import Overloaded
from ccproxy_core.core.sse import SSEDecoder
from ccproxy_core.translate.chat_request import SYNTHETIC_SIGNATURE_PREFIX
from ccproxy_core.translate.chat_stream import ChatStreamTranslator, Phase
from ccproxy_core.translate.tool_names import ToolNames, safe_tool_name
from tests.grammar import assert_anthropic_stream_grammar

RECORDED = Path(__file__).parents[2] / "fixtures" / "recorded"
Events = list[tuple[str, dict[str, Any]]]

# -- chunk builders -------------------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "gpt-4.1",
        "usage": None,
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish, **choice}],
    }


def role() -> dict[str, Any]:
    return chunk({"role": "assistant", "content": "", "refusal": None})


def text(value: str) -> dict[str, Any]:
    return chunk({"content": value})


def reasoning(value: str, field: str = "reasoning_content") -> dict[str, Any]:
    return chunk({field: value})


def fragment(
    index: int | None = 0, call_id: str | None = None, name: str | None = None, args: str | None = None
) -> dict[str, Any]:
    frag: dict[str, Any] = {} if index is None else {"index": index}
    if call_id is not None:
        frag.update(id=call_id, type="function")
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if args is not None:
        function["arguments"] = args
    frag["function"] = function
    return frag


def tool(
    index: int | None = 0, call_id: str | None = None, name: str | None = None, args: str | None = None
) -> dict[str, Any]:
    return chunk({"tool_calls": [fragment(index, call_id, name, args)]})


def finish(reason: str = "stop") -> dict[str, Any]:
    return chunk({}, reason)


def usage(prompt: int = 10, completion: int = 5, cached: int = 0) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


# -- running and summarizing ----------------------------------------------------------------


def run(
    chunks: list[dict[str, Any]], names: ToolNames | None = None, input_tokens: int = 0, end: bool = True
) -> Events:
    translator = ChatStreamTranslator(model="claude-sonnet-4-5", names=names or ToolNames(), input_tokens=input_tokens)
    events = translator.start()
    for c in chunks:
        events += translator.feed(c)
    if end:
        events += translator.finish()
    return events


def summary(events: Events) -> list[tuple[Any, ...]]:
    """Events in short form: ("text", 0, "Hi"), ("start", 1, "tool_use", "Bash"), ("stop", 1), ..."""
    out: list[tuple[Any, ...]] = []
    for name, p in events:
        if name == "content_block_start":
            block = p["content_block"]
            extra = (block["name"],) if block["type"] == "tool_use" else ()
            out.append(("start", p["index"], block["type"], *extra))
        elif name == "content_block_delta":
            d = p["delta"]
            kind = d["type"]
            if kind == "text_delta":
                out.append(("text", p["index"], d["text"]))
            elif kind == "input_json_delta":
                out.append(("json", p["index"], d["partial_json"]))
            elif kind == "thinking_delta":
                out.append(("thinking", p["index"], d["thinking"]))
            else:
                out.append(("signature", p["index"]))
        elif name == "content_block_stop":
            out.append(("stop", p["index"]))
        elif name == "message_delta":
            out.append(("message_delta", p["delta"]["stop_reason"]))
        elif name == "error":
            out.append(("error", p["error"]["type"]))
        else:
            out.append((name,))
    return out


def sse_chunks(path: Path) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    events = decoder.feed(path.read_bytes()) + decoder.flush()
    return [orjson.loads(e.data) for e in events if e.data != "[DONE]"]


# -- recorded OpenAI streams ----------------------------------------------------------------

RECORDED_EXPECTATIONS = {
    "stream_text_with_usage": ([("text", "The capital of the UK is London.")], "end_turn", (78, 9)),
    "stream_gpt5_with_extra_moderation_chunk": ([("text", "Paris.")], "end_turn", (13, 11)),
    "stream_reasoning_o3_mini": ([("text", "hello")], "end_turn", (22, 203)),
    "stream_tool_call_with_usage": ([("tool_use", "get_capital", {"country": "UK"})], "tool_use", (53, 15)),
    "stream_parallel_tool_calls": (
        [("tool_use", "get_weather", {"city": "Mexico City"}), ("tool_use", "get_product_name", {})],
        "tool_use",
        (417, 44),
    ),
}


def content_of(message: dict[str, Any]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for block in message["content"]:
        if block["type"] == "tool_use":
            out.append(("tool_use", block["name"], block["input"]))
        else:
            out.append((block["type"], block[block["type"]]))
    return out


@pytest.mark.parametrize("stem", sorted(RECORDED_EXPECTATIONS))
def test_recorded_openai_streams(stem: str) -> None:
    """Every recorded OpenAI stream becomes a well-formed Anthropic stream with the same content and usage."""
    content, stop_reason, (input_tokens, output_tokens) = RECORDED_EXPECTATIONS[stem]
    message = assert_anthropic_stream_grammar(run(sse_chunks(RECORDED / "openai" / f"{stem}.sse")))
    assert content_of(message) == content
    assert message["stop_reason"] == stop_reason
    assert message["usage"]["input_tokens"] == input_tokens
    assert message["usage"]["output_tokens"] == output_tokens
    assert message["model"] == "claude-sonnet-4-5"


def test_every_recorded_stream_has_an_expectation() -> None:
    """A new recording must be added to the table above."""
    assert {p.stem for p in (RECORDED / "openai").glob("*.sse")} == set(RECORDED_EXPECTATIONS)


def test_recorded_parallel_calls_stream_their_fragments_live() -> None:
    """The first call's argument fragments go out one by one, as they arrive."""
    events = summary(run(sse_chunks(RECORDED / "openai" / "stream_parallel_tool_calls.sse")))
    assert events[1:9] == [
        ("start", 0, "tool_use", "get_weather"),
        ("json", 0, '{"ci'),
        ("json", 0, 'ty": '),
        ("json", 0, '"Mexic'),
        ("json", 0, "o Ci"),
        ("json", 0, 'ty"}'),
        ("stop", 0),
        ("start", 1, "tool_use", "get_product_name"),
    ]


# -- the reference's fixture list (§10) -----------------------------------------------------

TABLE: dict[str, tuple[list[dict[str, Any]], list[tuple[Any, ...]]]] = {
    "1 text only": (
        [role(), text("Hel"), text("lo"), finish(), usage()],
        [
            ("message_start",),
            ("start", 0, "text"),
            ("text", 0, "Hel"),
            ("text", 0, "lo"),
            ("stop", 0),
            ("message_delta", "end_turn"),
            ("message_stop",),
        ],
    ),
    "2 text then one tool in five fragments": (
        [
            text("Let me look."),
            tool(0, "call_1", "Read", ""),
            tool(0, args='{"fi'),
            tool(0, args="le_pa"),
            tool(0, args='th": "/'),
            tool(0, args='etc/hosts"'),
            tool(0, args="}"),
            finish("tool_calls"),
            usage(),
        ],
        [
            ("message_start",),
            ("start", 0, "text"),
            ("text", 0, "Let me look."),
            ("stop", 0),
            ("start", 1, "tool_use", "Read"),
            ("json", 1, '{"fi'),
            ("json", 1, "le_pa"),
            ("json", 1, 'th": "/'),
            ("json", 1, 'etc/hosts"'),
            ("json", 1, "}"),
            ("stop", 1),
            ("message_delta", "tool_use"),
            ("message_stop",),
        ],
    ),
    "3a parallel calls one after the other": (
        [tool(0, "call_a", "A", '{"x":1}'), tool(1, "call_b", "B", '{"y":'), tool(1, args="2}"), finish("tool_calls")],
        [
            ("message_start",),
            ("start", 0, "tool_use", "A"),
            ("json", 0, '{"x":1}'),
            ("stop", 0),
            ("start", 1, "tool_use", "B"),
            ("json", 1, '{"y":'),
            ("json", 1, "2}"),
            ("stop", 1),
            ("message_delta", "tool_use"),
            ("message_stop",),
        ],
    ),
    "3b parallel calls interleaved 0,1,0,1": (
        [
            tool(0, "call_a", "A", ""),
            tool(1, "call_b", "B", ""),
            tool(0, args='{"x":'),
            tool(1, args='{"y":'),
            tool(0, args="1}"),
            tool(1, args="2}"),
            finish("tool_calls"),
        ],
        [
            ("message_start",),
            ("start", 0, "tool_use", "A"),
            ("json", 0, '{"x":'),
            ("json", 0, "1}"),
            ("stop", 0),
            ("start", 1, "tool_use", "B"),
            ("json", 1, '{"y":'),
            ("json", 1, "2}"),
            ("stop", 1),
            ("message_delta", "tool_use"),
            ("message_stop",),
        ],
    ),
    "4 name in the second fragment": (
        [
            tool(0, "call_1", args=""),
            tool(0, name="Bash", args='{"command":'),
            tool(0, args='"ls"}'),
            finish("tool_calls"),
        ],
        [
            ("message_start",),
            ("start", 0, "tool_use", "Bash"),
            ("json", 0, '{"command":'),
            ("json", 0, '"ls"}'),
            ("stop", 0),
            ("message_delta", "tool_use"),
            ("message_stop",),
        ],
    ),
    "5 reasoning, content, tool": (
        [reasoning("think"), reasoning("ing"), text("Answer"), tool(0, "call_1", "Bash", "{}"), finish("tool_calls")],
        [
            ("message_start",),
            ("start", 0, "thinking"),
            ("thinking", 0, "think"),
            ("thinking", 0, "ing"),
            ("signature", 0),
            ("stop", 0),
            ("start", 1, "text"),
            ("text", 1, "Answer"),
            ("stop", 1),
            ("start", 2, "tool_use", "Bash"),
            ("json", 2, "{}"),
            ("stop", 2),
            ("message_delta", "tool_use"),
            ("message_stop",),
        ],
    ),
    "6 content and finish_reason in one chunk": (
        [chunk({"content": "All at once"}, "stop")],
        [
            ("message_start",),
            ("start", 0, "text"),
            ("text", 0, "All at once"),
            ("stop", 0),
            ("message_delta", "end_turn"),
            ("message_stop",),
        ],
    ),
    "7 stop after tool calls is tool_use": (
        [tool(0, "call_1", "Bash", '{"command":"ls"}'), finish("stop"), usage()],
        [
            ("message_start",),
            ("start", 0, "tool_use", "Bash"),
            ("json", 0, '{"command":"ls"}'),
            ("stop", 0),
            ("message_delta", "tool_use"),
            ("message_stop",),
        ],
    ),
    "8 in-band error mid-stream": (
        [
            text("Hi"),
            {"error": {"message": "The server had an error", "type": "server_error", "code": 500}},
            text("never"),
        ],
        [("message_start",), ("start", 0, "text"), ("text", 0, "Hi"), ("stop", 0), ("error", "api_error")],
    ),
    "10 no usage chunk": (
        [text("Hi"), finish()],
        [
            ("message_start",),
            ("start", 0, "text"),
            ("text", 0, "Hi"),
            ("stop", 0),
            ("message_delta", "end_turn"),
            ("message_stop",),
        ],
    ),
    "15 Kimi tool id": (
        [tool(0, "functions.Bash:0", "Bash", "{}"), finish("tool_calls")],
        [
            ("message_start",),
            ("start", 0, "tool_use", "Bash"),
            ("json", 0, "{}"),
            ("stop", 0),
            ("message_delta", "tool_use"),
            ("message_stop",),
        ],
    ),
}


@pytest.mark.parametrize("case", list(TABLE))
def test_fixture_table(case: str) -> None:
    """Each hand-built stream of reference §10 gives exactly these events, and a valid stream."""
    chunks, expected = TABLE[case]
    events = run(chunks)
    assert summary(events) == expected
    assert_anthropic_stream_grammar(events)


def test_text_stream_reports_usage_in_message_delta() -> None:
    """The final message_delta carries the usage chunk's counts, all four fields."""
    events = run([text("Hi"), finish(), usage(prompt=100, completion=7, cached=40)])
    assert events[-2][1]["usage"] == {
        "input_tokens": 60,
        "output_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 40,
    }


def test_message_delta_waits_for_the_usage_chunk() -> None:
    """finish_reason closes the blocks but holds message_delta until usage arrives."""
    translator = ChatStreamTranslator(model="m", names=ToolNames())
    translator.start()
    translator.feed(text("Hi"))
    assert [name for name, _ in translator.feed(finish())] == ["content_block_stop"]
    assert translator.phase is Phase.HELD
    assert [name for name, _ in translator.feed(usage())] == ["message_delta"]
    assert translator.feed({"choices": [], "moderation": {"flagged": False}}) == []
    assert [name for name, _ in translator.finish()] == ["message_stop"]


def test_without_usage_the_output_is_estimated() -> None:
    """No usage chunk: message_delta still has all usage fields, the input estimate and a non-zero output."""
    events = run([text("x" * 40), finish()], input_tokens=1234)
    assert events[-2][1]["usage"] == {
        "input_tokens": 1234,
        "output_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_message_start_has_the_full_usage_shape() -> None:
    """message_start is a complete empty Message with both cache fields, and start() is idempotent."""
    translator = ChatStreamTranslator(model="claude-opus-4", names=ToolNames(), input_tokens=42)
    ((name, payload),) = translator.start()
    assert name == "message_start"
    message = payload["message"]
    assert message["id"].startswith("msg_")
    assert len(message["id"]) == 28
    assert message["model"] == "claude-opus-4"
    assert message["content"] == []
    assert message["usage"] == {
        "input_tokens": 42,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert translator.start() == []


# -- more shapes ------------------------------------------------------------------------------

SHAPES: dict[str, tuple[list[dict[str, Any]], list[tuple[Any, ...]]]] = {
    "text after a tool opens a new text block": (
        [text("a"), tool(0, "c1", "T", "{}"), text("b")],
        [
            ("start", 0, "text"),
            ("text", 0, "a"),
            ("stop", 0),
            ("start", 1, "tool_use", "T"),
            ("json", 1, "{}"),
            ("stop", 1),
            ("start", 2, "text"),
            ("text", 2, "b"),
            ("stop", 2),
        ],
    ),
    "leading and empty text deltas are skipped": (
        [role(), text(""), text("x"), text("")],
        [("start", 0, "text"), ("text", 0, "x"), ("stop", 0)],
    ),
    "several payload kinds in one chunk go thinking, text, tool": (
        [chunk({"tool_calls": [fragment(0, "c1", "T", "{}")], "content": "t", "reasoning": "r"})],
        [
            ("start", 0, "thinking"),
            ("thinking", 0, "r"),
            ("signature", 0),
            ("stop", 0),
            ("start", 1, "text"),
            ("text", 1, "t"),
            ("stop", 1),
            ("start", 2, "tool_use", "T"),
            ("json", 2, "{}"),
            ("stop", 2),
        ],
    ),
    "whole call in one chunk": (
        [tool(0, "c1", "Bash", '{"command":"ls"}')],
        [("start", 0, "tool_use", "Bash"), ("json", 0, '{"command":"ls"}'), ("stop", 0)],
    ),
    "two whole calls in one chunk": (
        [chunk({"tool_calls": [fragment(0, "c1", "A", "{}"), fragment(1, "c2", "B", '{"k":1}')]})],
        [
            ("start", 0, "tool_use", "A"),
            ("json", 0, "{}"),
            ("stop", 0),
            ("start", 1, "tool_use", "B"),
            ("json", 1, '{"k":1}'),
            ("stop", 1),
        ],
    ),
    "id and name repeated on every fragment": (
        [tool(0, "c1", "Bash", '{"a":'), tool(0, "c1", "Bash", "1}")],
        [("start", 0, "tool_use", "Bash"), ("json", 0, '{"a":'), ("json", 0, "1}"), ("stop", 0)],
    ),
    "index missing": (
        [tool(None, "c1", "Bash", '{"a":'), tool(None, args="1}")],
        [("start", 0, "tool_use", "Bash"), ("json", 0, '{"a":'), ("json", 0, "1}"), ("stop", 0)],
    ),
    "a reused index with a new id is a new call": (
        [tool(0, "c1", "A", "{}"), tool(0, "c2", "B", "{}")],
        [
            ("start", 0, "tool_use", "A"),
            ("json", 0, "{}"),
            ("stop", 0),
            ("start", 1, "tool_use", "B"),
            ("json", 1, "{}"),
            ("stop", 1),
        ],
    ),
    "a call without arguments gets {}": (
        [tool(0, "c1", "Now", "")],
        [("start", 0, "tool_use", "Now"), ("json", 0, "{}"), ("stop", 0)],
    ),
    "a call that never gets an id starts at its second fragment": (
        [tool(0, name="Bash", args='{"a":'), tool(0, args="1}")],
        [("start", 0, "tool_use", "Bash"), ("json", 0, '{"a":'), ("json", 0, "1}"), ("stop", 0)],
    ),
    "a call that never gets a name is dropped": (
        [text("x"), tool(0, "c1", args="{}")],
        [("start", 0, "text"), ("text", 0, "x"), ("stop", 0)],
    ),
    "a fragment after its block was closed by text is dropped": (
        [tool(0, "c1", "T", '{"a":1}'), text("then"), tool(0, args=" ")],
        [
            ("start", 0, "tool_use", "T"),
            ("json", 0, '{"a":1}'),
            ("stop", 0),
            ("start", 1, "text"),
            ("text", 1, "then"),
            ("stop", 1),
        ],
    ),
    "a waiting call is flushed whole when text arrives": (
        [tool(0, "c1", "A", '{"a":'), tool(1, "c2", "B", "{}"), tool(0, args="1}"), text("done")],
        [
            ("start", 0, "tool_use", "A"),
            ("json", 0, '{"a":'),
            ("json", 0, "1}"),
            ("stop", 0),
            ("start", 1, "tool_use", "B"),
            ("json", 1, "{}"),
            ("stop", 1),
            ("start", 2, "text"),
            ("text", 2, "done"),
            ("stop", 2),
        ],
    ),
    "thinking after text opens a new thinking block": (
        [text("a"), reasoning("r", "reasoning")],
        [
            ("start", 0, "text"),
            ("text", 0, "a"),
            ("stop", 0),
            ("start", 1, "thinking"),
            ("thinking", 1, "r"),
            ("signature", 1),
            ("stop", 1),
        ],
    ),
    "nothing at all still gives one empty text block": ([role()], [("start", 0, "text"), ("stop", 0)]),
}


@pytest.mark.parametrize("case", list(SHAPES))
def test_chunk_shapes(case: str) -> None:
    """Provider variations of the chunk format give these blocks, in a valid stream."""
    chunks, expected = SHAPES[case]
    events = run(chunks)
    assert summary(events)[1:-2] == expected
    assert_anthropic_stream_grammar(events)


def test_cut_off_tool_arguments_are_closed_and_not_run() -> None:
    """finish_reason length mid-arguments: the JSON is closed and stop_reason stays max_tokens."""
    events = run([tool(0, "c1", "Write", '{"path": "a.txt", "content": "hello wor'), finish("length")])
    message = assert_anthropic_stream_grammar(events)
    assert message["content"][0]["input"] == {"path": "a.txt", "content": "hello wor"}
    assert message["stop_reason"] == "max_tokens"


def test_shortened_tool_names_are_restored() -> None:
    """The client sees its own long MCP tool name, not the upstream's 64-character stand-in."""
    long_name = "mcp__atlassian_confluence__get_confluence_page_footer_comments_with_ids"
    events = run([tool(0, "c1", safe_tool_name(long_name), "{}")], names=ToolNames.of([long_name]))
    assert events[1][1]["content_block"]["name"] == long_name


def test_thinking_signature_is_marked_synthetic() -> None:
    """A thinking block made from reasoning is signed with ccproxy's recognisable prefix."""
    events = run([reasoning("r"), text("t")])
    signatures = [
        p["delta"]["signature"]
        for n, p in events
        if n == "content_block_delta" and p["delta"]["type"] == "signature_delta"
    ]
    assert len(signatures) == 1
    assert signatures[0].startswith(SYNTHETIC_SIGNATURE_PREFIX)


def test_usage_on_the_finish_chunk_is_used() -> None:
    """A provider that puts usage on the finish chunk (and sends no usage chunk) is still counted."""
    last = {**finish(), "usage": {"prompt_tokens": 9, "completion_tokens": 3}}
    events = run([text("a"), last])
    assert events[-2][1]["usage"]["output_tokens"] == 3


def test_usage_chunk_with_null_choices() -> None:
    """vLLM's usage chunk has `choices: null`; it releases message_delta like `choices: []`."""
    vllm_usage = {"choices": None, "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    events = run([text("a"), finish(), vllm_usage], end=False)
    assert events[-1][0] == "message_delta"
    assert events[-1][1]["usage"]["output_tokens"] == 2


def test_content_after_finish_reason_is_ignored() -> None:
    """Nothing can be added to the message once its blocks were closed by finish_reason."""
    assert summary(run([text("a"), finish(), text("late")]))[-3:-2] == [("stop", 0)]


def test_openrouter_finish_reason_error_fails_the_stream() -> None:
    """finish_reason "error" with the error in the choice ends the stream with an error event."""
    events = run([text("a"), chunk({}, "error", error={"message": "provider down", "code": 502})])
    assert summary(events)[-2:] == [("stop", 0), ("error", "api_error")]
    assert events[-1][1]["error"]["message"] == "provider down"
    assert_anthropic_stream_grammar(events)


# -- failure ----------------------------------------------------------------------------------


def test_fail_closes_the_open_block_and_ends_the_stream() -> None:
    """fail() stops the open block, emits an Anthropic error event, and then nothing more goes out."""
    translator = ChatStreamTranslator(model="m", names=ToolNames())
    events = translator.start() + translator.feed(reasoning("r"))
    events += translator.fail(Overloaded("Overloaded"))
    assert summary(events)[-3:] == [("signature", 0), ("stop", 0), ("error", "overloaded_error")]
    assert events[-1][1] == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert translator.feed(text("x")) == []
    assert translator.finish() == []
    assert translator.fail(Overloaded("x")) == []
    assert_anthropic_stream_grammar(events)


def test_fail_before_start_sends_only_the_error() -> None:
    """A failure before anything was sent is a lone error event."""
    translator = ChatStreamTranslator(model="m", names=ToolNames())
    events = translator.fail(Overloaded("Overloaded"))
    assert summary(events) == [("error", "overloaded_error")]
    assert_anthropic_stream_grammar(events)


def test_finish_without_start_or_chunks_is_a_complete_empty_message() -> None:
    """An upstream that sends only [DONE] still gives a full, valid message."""
    translator = ChatStreamTranslator(model="m", names=ToolNames())
    events = translator.finish()
    assert summary(events) == [
        ("message_start",),
        ("start", 0, "text"),
        ("stop", 0),
        ("message_delta", "end_turn"),
        ("message_stop",),
    ]
    assert translator.finish() == []


def test_streams_do_not_share_state() -> None:
    """Two translators fed alternately keep their own blocks, ids and indexes."""
    one, two = (ChatStreamTranslator(model="m", names=ToolNames()) for _ in range(2))
    a, b = one.start(), two.start()
    for part in ("x", "y"):
        a += one.feed(text(part))
        b += two.feed(tool(0, "c1", "T", "{}") if part == "x" else text(part))
    a += one.finish()
    b += two.finish()
    assert content_of(assert_anthropic_stream_grammar(a)) == [("text", "xy")]
    assert content_of(assert_anthropic_stream_grammar(b)) == [("tool_use", "T", {}), ("text", "y")]
    assert a[0][1]["message"]["id"] != b[0][1]["message"]["id"]


# -- the grammar checker itself ---------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((RECORDED / "anthropic").glob("*.sse")), ids=lambda p: p.stem)
def test_grammar_accepts_real_anthropic_streams(path: Path) -> None:
    """The checker agrees with the real API: every recorded Anthropic stream passes."""
    decoder = SSEDecoder()
    # one recording lacks the final blank line (see SOURCES.md)
    raw = decoder.feed(path.read_bytes() + b"\n\n") + decoder.flush()
    assert_anthropic_stream_grammar([(e.event, orjson.loads(e.data)) for e in raw])


def block_delta(index: int, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


GOOD = run([text("a"), tool(0, "c1", "T", '{"k":1}'), finish()])
BROKEN: dict[str, Events] = {
    "delta to a closed block": [*GOOD[:4], GOOD[2], *GOOD[4:]],
    "text delta to a tool block": [*GOOD[:6], block_delta(1, {"type": "text_delta", "text": "x"}), *GOOD[6:]],
    "overlapping blocks": GOOD[:3] + GOOD[4:],
    "index skipped": [*GOOD[:4], ("content_block_start", {**GOOD[4][1], "index": 2}), *GOOD[5:]],
    "no message_stop": GOOD[:-1],
    "two message_starts": GOOD[:1] + GOOD,
    "tool input not an object": [
        *GOOD[:5],
        block_delta(1, {"type": "input_json_delta", "partial_json": "[]"}),
        *GOOD[6:],
    ],
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_grammar_rejects_broken_streams(case: str) -> None:
    """The checker catches each protocol violation Claude Code would crash on."""
    assert_anthropic_stream_grammar(GOOD)
    with pytest.raises(AssertionError):
        assert_anthropic_stream_grammar(BROKEN[case])


# -- properties ---------------------------------------------------------------------------------

JSON_LEAVES = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=6)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=4,
)
ARGS = st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=3)


@st.composite
def split(draw: st.DrawFn, whole: str) -> list[str]:
    """`whole` cut at random points (pieces may be empty, as real streams send)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(whole)), max_size=5)))
    bounds = [0, *cuts, len(whole)]
    return [whole[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def plausible_stream(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Chunks as providers send them, and the content they carry (reasoning, text, tool inputs)."""
    chunks: list[dict[str, Any]] = [role()] if draw(st.booleans()) else []
    expected: dict[str, Any] = {"thinking": "", "text": "", "tools": {}}
    next_tool = 0
    for kind in draw(st.lists(st.sampled_from(["reasoning", "text", "tools"]), max_size=5)):
        if kind in ("reasoning", "text"):
            pieces = draw(split(draw(st.text(max_size=12))))
            field = "content"
            if kind == "reasoning":
                field = draw(st.sampled_from(["reasoning_content", "reasoning"]))
            chunks += [chunk({field: piece}) for piece in pieces]
            expected["thinking" if kind == "reasoning" else "text"] += "".join(pieces)
            continue
        # a group of parallel calls whose fragments may interleave
        queues = []
        for _ in range(draw(st.integers(1, 3))):
            index, name = next_tool, f"tool_{next_tool}"
            next_tool += 1
            value = draw(ARGS)
            no_arguments = not value and draw(st.booleans())  # a call that sends no arguments at all
            pieces = [""] if no_arguments else draw(split(orjson.dumps(value).decode()))
            expected["tools"][name] = value
            call_id = draw(st.sampled_from([f"call_{index}", f"functions.{name}:{index}"]))
            repeat_id = draw(st.booleans())
            frags = [fragment(index, call_id, name, pieces[0])]
            if draw(st.booleans()) and len(pieces) > 1:  # name only in the second fragment
                frags = [fragment(index, call_id, None, pieces[0])]
                pieces = [pieces[1], *pieces[2:]]
                frags.append(fragment(index, call_id if repeat_id else None, name, pieces[0]))
            frags += [fragment(index, call_id if repeat_id else None, None, p) for p in pieces[1:]]
            queues.append(frags)
        while any(queues):
            queue = draw(st.sampled_from([q for q in queues if q]))
            chunks.append(chunk({"tool_calls": [queue.pop(0)]}))
    reason = draw(st.sampled_from([None, "stop", "tool_calls", "length"]))
    if reason:
        chunks.append(finish(reason))
    if draw(st.booleans()):
        chunks.append(usage())
        if draw(st.booleans()):
            chunks.append({"choices": [], "moderation": {}})
    return chunks, expected


@settings(max_examples=300, deadline=None)
@given(plausible_stream())
def test_any_plausible_stream_is_well_formed(stream: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    """Whatever mix and interleaving of reasoning, text and tool fragments, the output obeys the grammar."""
    chunks, _ = stream
    assert_anthropic_stream_grammar(run(chunks))


@settings(max_examples=300, deadline=None)
@given(plausible_stream())
def test_translation_keeps_the_content(stream: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    """Reassembled events give back exactly the reasoning, text and tool arguments the chunks carried."""
    chunks, expected = stream
    message = assert_anthropic_stream_grammar(run(chunks))
    blocks = message["content"]
    assert "".join(b["thinking"] for b in blocks if b["type"] == "thinking") == expected["thinking"]
    assert "".join(b["text"] for b in blocks if b["type"] == "text") == expected["text"]
    assert {b["name"]: b["input"] for b in blocks if b["type"] == "tool_use"} == expected["tools"]
    assert len([b for b in blocks if b["type"] == "tool_use"]) == len(expected["tools"])
