"""Responses stream events -> Anthropic stream events: the state machine, recordings replayed, and
the property that a streamed answer adds up to the same Message as the non-streamed one.

Streams come from three places: the Codex fixtures (a Responses stream Codex CLI accepted, in
tests/fixtures/codex, see its README), events written here in the shape of OpenAI's streaming
reference (reasoning with encrypted content, refusals, failures), and the recorded Anthropic
streams turned into Responses events by ccproxy's own `ResponsesStreamTranslator`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from hypothesis import given, settings
from hypothesis import strategies as st

from ccproxy_core.core.errors import UpstreamError
from ccproxy_core.core.sse import SSEDecoder
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.responses_request import responses_to_messages
from ccproxy_core.translate.responses_stream import ResponsesStreamTranslator
from ccproxy_core.translate.responses_upstream import messages_to_responses, response_to_message
from ccproxy_core.translate.responses_upstream_input import REASONING_SIGNATURE_PREFIX
from ccproxy_core.translate.responses_upstream_stream import Phase, ResponsesToMessagesStream
from ccproxy_core.translate.tool_names import ToolNames
from tests.grammar import assert_anthropic_stream_grammar

FIXTURES = Path(__file__).parents[2] / "fixtures"
CODEX = FIXTURES / "codex"
ANTHROPIC_RECORDINGS = sorted((FIXTURES / "recorded" / "anthropic").glob("*.sse"))
MODEL = "claude-via-responses"
Event = tuple[str, JSON]


def sse_payloads(raw: bytes) -> list[JSON]:
    decoder = SSEDecoder()
    return [orjson.loads(e.data) for e in [*decoder.feed(raw), *decoder.flush()] if e.data]


def run(events: list[JSON], *, names: ToolNames | None = None, start: bool = False) -> list[Event]:
    translator = ResponsesToMessagesStream(model=MODEL, names=names, input_tokens=7)
    out = translator.start() if start else []
    for event in events:
        out += translator.feed(event)
    return out + translator.finish()


def final_response(events: list[JSON]) -> JSON:
    last = events[-1]
    assert last["type"] in ("response.completed", "response.incomplete")
    resp: JSON = last["response"]
    return resp


def assert_stream_equals_whole(events: list[JSON], names: ToolNames | None = None) -> JSON:
    """The streamed Message equals `response_to_message` of the final response: content, stop, usage."""
    out = run(events, names=names)
    streamed = assert_anthropic_stream_grammar(out)
    whole = response_to_message(final_response(events), model=MODEL, names=names)
    assert streamed["content"] == whole["content"]
    assert out[-2][1]["delta"]["stop_reason"] == whole["stop_reason"]
    assert out[-2][1]["usage"] == whole["usage"]
    assert out[0][1]["message"]["id"] == whole["id"]
    return whole


# -- a Responses stream written the way the API streams (reference shapes) --------------------


class Stream:
    """Builds a Responses event sequence for some output items, and the final response."""

    def __init__(self) -> None:
        self.events: list[JSON] = []
        self.output: list[JSON] = []
        self.events.append({"type": "response.created", "response": self._response("in_progress", [])})

    def _response(self, status: str, output: list[JSON], **extra: Any) -> JSON:
        return {"id": "resp_r1", "object": "response", "status": status, "output": output, **extra}

    def emit(self, kind: str, **fields: Any) -> None:
        self.events.append({"type": kind, **fields, "sequence_number": len(self.events)})

    def reasoning(self, summaries: list[list[str]], encrypted: str | None = "enc-1") -> None:
        index, item_id = len(self.output), f"rs_{len(self.output)}"
        item: JSON = {"id": item_id, "type": "reasoning", "summary": []}
        self.emit("response.output_item.added", output_index=index, item=item)
        for s, pieces in enumerate(summaries):
            self.emit("response.reasoning_summary_part.added", item_id=item_id, output_index=index, summary_index=s)
            for piece in pieces:
                self.emit(
                    "response.reasoning_summary_text.delta",
                    item_id=item_id,
                    output_index=index,
                    summary_index=s,
                    delta=piece,
                )
        done = {**item, "summary": [{"type": "summary_text", "text": "".join(p)} for p in summaries]}
        if encrypted is not None:
            done["encrypted_content"] = encrypted
        self.emit("response.output_item.done", output_index=index, item=done)
        self.output.append(done)

    def message(self, parts: list[list[str]], *, deltas: bool = True) -> None:
        index, item_id = len(self.output), f"msg_{len(self.output)}"
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        self.emit("response.output_item.added", output_index=index, item=item)
        content = []
        for c, pieces in enumerate(parts):
            place = {"item_id": item_id, "output_index": index, "content_index": c}
            self.emit("response.content_part.added", **place, part={"type": "output_text", "text": ""})
            if deltas:
                for piece in pieces:
                    self.emit("response.output_text.delta", **place, delta=piece)
            part = {"type": "output_text", "text": "".join(pieces), "annotations": []}
            self.emit("response.output_text.done", **place, text=part["text"])
            self.emit("response.content_part.done", **place, part=part)
            content.append(part)
        done = {**item, "status": "completed", "content": content}
        self.emit("response.output_item.done", output_index=index, item=done)
        self.output.append(done)

    def call(self, name: str, fragments: list[str], call_id: str = "call_1") -> None:
        index, item_id = len(self.output), f"fc_{len(self.output)}"
        item = {"id": item_id, "type": "function_call", "call_id": call_id, "name": name, "arguments": ""}
        self.emit("response.output_item.added", output_index=index, item=item)
        for piece in fragments:
            self.emit("response.function_call_arguments.delta", item_id=item_id, output_index=index, delta=piece)
        arguments = "".join(fragments)
        self.emit("response.function_call_arguments.done", item_id=item_id, output_index=index, arguments=arguments)
        done = {**item, "arguments": arguments, "status": "completed"}
        self.emit("response.output_item.done", output_index=index, item=done)
        self.output.append(done)

    def hosted(self) -> None:
        index = len(self.output)
        item = {"id": f"ws_{index}", "type": "web_search_call", "status": "completed", "action": {"type": "search"}}
        self.emit("response.output_item.added", output_index=index, item={**item, "status": "in_progress"})
        self.emit("response.web_search_call.completed", item_id=item["id"], output_index=index)
        self.emit("response.output_item.done", output_index=index, item=item)
        self.output.append(item)

    def complete(self, status: str = "completed", reason: str | None = None, usage: JSON | None = None) -> list[JSON]:
        usage = usage or {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 20}, "output_tokens": 9}
        extra: JSON = {"usage": usage, "incomplete_details": {"reason": reason} if reason else None}
        self.emit(f"response.{status}", response=self._response(status, self.output, **extra))
        return self.events


def test_text_stream_from_the_codex_fixture() -> None:
    """Codex's text answer: message_start with the response's id, one text block, end_turn with its usage."""
    events = sse_payloads((CODEX / "exec-shell-0002.response.sse").read_bytes())
    whole = assert_stream_equals_whole(events)
    assert whole["id"] == "msg_7d4541de002a426ea0b4b7243d9d5273"
    assert whole["content"][0]["text"].startswith("FINAL: the tool returned")
    assert whole["usage"]["input_tokens"] == 25 and whole["usage"]["output_tokens"] == 12


def test_function_call_stream_from_the_codex_fixture() -> None:
    """Codex's call answer: a tool_use block whose input_json_delta fragments are the arguments; stop tool_use."""
    events = sse_payloads((CODEX / "exec-shell-0001.response.sse").read_bytes())
    out = run(events)
    start = next(p for n, p in out if n == "content_block_start")
    assert start["content_block"] == {
        "type": "tool_use",
        "id": "call_a4718ec2da214bd0801863f3",
        "name": "exec_command",
        "input": {},
    }
    fragments = [p["delta"]["partial_json"] for n, p in out if n == "content_block_delta"]
    assert fragments == ['{"cmd": "echo cod', 'ex-ran-$((6*7))"}']
    whole = assert_stream_equals_whole(events)
    assert whole["stop_reason"] == "tool_use"


def test_reasoning_streams_as_thinking_signed_at_item_done() -> None:
    """Summary deltas are thinking_deltas (parts joined by a blank line); the signature comes at the item's end."""
    stream = Stream()
    stream.reasoning([["Think", "ing."], ["More."]], encrypted="gAAAA-secret")
    stream.message([["Answer."]])
    events = stream.complete()
    out = run(events)
    thinking = [p["delta"] for n, p in out if n == "content_block_delta" and p["index"] == 0]
    assert [d.get("thinking") for d in thinking[:-1]] == ["Think", "ing.", "\n\nMore."]
    assert thinking[-1]["type"] == "signature_delta"
    assert thinking[-1]["signature"].startswith(REASONING_SIGNATURE_PREFIX)
    whole = assert_stream_equals_whole(events)
    assert whole["content"][0]["thinking"] == "Think ing.\n\nMore.".replace(" ", "")


def test_streamed_reasoning_round_trips_its_encrypted_content() -> None:
    """The thinking block a stream built goes back, in the next request, as the reasoning item with its encrypted_content."""
    stream = Stream()
    stream.reasoning([["Plan."]], encrypted="gAAAA-exactly-this==")
    stream.call("Bash", ['{"cmd":', '"ls"}'])
    message = assert_anthropic_stream_grammar(run(stream.complete()))
    body = {
        "model": "m",
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": message["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "a.txt"}]},
        ],
    }
    items = messages_to_responses(body, model="gpt-5").body["input"]
    assert items[1] == {
        "type": "reasoning",
        "id": "rs_0",
        "summary": [{"type": "summary_text", "text": "Plan."}],
        "encrypted_content": "gAAAA-exactly-this==",
    }
    assert items[2]["arguments"] == '{"cmd":"ls"}' and items[3]["call_id"] == "call_1"


def test_reasoning_without_summary_sends_its_block_at_item_done() -> None:
    """Encrypted reasoning without summary text is one empty thinking block, signed; with neither it is nothing."""
    stream = Stream()
    stream.reasoning([], encrypted="enc")
    stream.reasoning([], encrypted=None)
    stream.message([["ok"]])
    whole = assert_stream_equals_whole(stream.complete())
    assert [b["type"] for b in whole["content"]] == ["thinking", "text"]
    assert whole["content"][0]["thinking"] == ""


def test_text_sent_only_whole_is_still_sent() -> None:
    """A server that sends a part's text only in content_part.done still gets it to the client."""
    stream = Stream()
    stream.message([["Hello ", "there"], ["P2"]], deltas=False)
    whole = assert_stream_equals_whole(stream.complete())
    assert [b["text"] for b in whole["content"]] == ["Hello there", "P2"]


def test_each_content_part_is_its_own_text_block_and_hosted_calls_vanish() -> None:
    """Two output_text parts are two text blocks; a hosted web_search_call sends nothing."""
    stream = Stream()
    stream.hosted()
    stream.message([["a", "b"], ["c"]])
    whole = assert_stream_equals_whole(stream.complete())
    assert whole["content"] == [{"type": "text", "text": "ab"}, {"type": "text", "text": "c"}]


def test_parallel_calls_each_get_a_block_and_unsafe_names_are_restored() -> None:
    """Two function_call items are two tool_use blocks; an upstream-safe name goes back to the client's."""
    long_name = "mcp__atlassian_confluence__get_confluence_page_footer_comments_with_ids"
    names = ToolNames.of([long_name])
    stream = Stream()
    stream.message([["Both."]])
    stream.call(names.to_upstream(long_name), ['{"id":', "1}"], call_id="call_a")
    stream.call("Read", [], call_id="call_b")
    whole = assert_stream_equals_whole(stream.complete(), names=names)
    calls = [b for b in whole["content"] if b["type"] == "tool_use"]
    assert [(c["id"], c["name"], c["input"]) for c in calls] == [
        ("call_a", long_name, {"id": 1}),
        ("call_b", "Read", {}),
    ]


def test_incomplete_response_stops_with_max_tokens_and_closes_cut_arguments() -> None:
    """response.incomplete (max_output_tokens) gives max_tokens; cut arguments are closed into an object."""
    stream = Stream()
    stream.call("Bash", ['{"cmd": "ec'])
    events = stream.complete("incomplete", "max_output_tokens")
    message = assert_anthropic_stream_grammar(run(events))  # the grammar checks the fragments join to an object
    assert message["content"][0]["input"] == {"cmd": "ec"}
    assert run(events)[-2][1]["delta"]["stop_reason"] == "max_tokens"
    assert response_to_message(final_response(events), model=MODEL)["content"] == message["content"]


def test_content_filter_stops_with_refusal() -> None:
    """response.incomplete (content_filter) gives stop_reason refusal."""
    stream = Stream()
    stream.message([["I can"]])
    out = run(stream.complete("incomplete", "content_filter"))
    assert out[-2][1]["delta"]["stop_reason"] == "refusal"


# -- failures and cut streams -----------------------------------------------------------------


def test_response_failed_becomes_an_error_event_after_closing_the_open_block() -> None:
    """response.failed mid-answer closes the open block and ends with a typed Anthropic error event."""
    stream = Stream()
    stream.emit("response.output_item.added", output_index=0, item={"id": "m", "type": "message", "content": []})
    stream.emit("response.output_text.delta", item_id="m", output_index=0, content_index=0, delta="Hal")
    failed = {"id": "resp_r1", "status": "failed", "error": {"code": "rate_limit_exceeded", "message": "Slow down."}}
    stream.emit("response.failed", response=failed)
    translator = ResponsesToMessagesStream(model=MODEL)
    out = [e for event in stream.events for e in translator.feed(event)]
    assert_anthropic_stream_grammar(out)
    assert out[-1] == ("error", {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down."}})
    assert out[-2][0] == "content_block_stop"
    assert translator.complete and translator.finish() == []


@pytest.mark.parametrize(
    "event",
    [
        {"type": "error", "code": "server_is_overloaded", "message": "Busy.", "param": None, "sequence_number": 0},
        {"type": "error", "error": {"code": "server_is_overloaded", "message": "Busy."}},
    ],
)
def test_an_error_event_first_is_the_only_event(event: JSON) -> None:
    """An `error` before anything was sent is a lone Anthropic error event (overloaded here)."""
    out = ResponsesToMessagesStream(model=MODEL).feed(event)
    assert out == [("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Busy."}})]


def test_a_cut_stream_is_not_complete_and_fail_ends_it() -> None:
    """A body that ends before response.completed is not complete; fail closes the thinking block with a signature."""
    stream = Stream()
    stream.emit("response.output_item.added", output_index=0, item={"id": "rs", "type": "reasoning", "summary": []})
    stream.emit("response.reasoning_summary_text.delta", item_id="rs", output_index=0, summary_index=0, delta="Hm")
    translator = ResponsesToMessagesStream(model=MODEL)
    out = [e for event in stream.events for e in translator.feed(event)]
    assert not translator.complete and translator.phase is Phase.STREAMING
    out += translator.fail(UpstreamError(502, "api_error", "the provider ended the stream early"))
    message = assert_anthropic_stream_grammar(out)
    assert message["error"]["type"] == "api_error"


def test_finish_closes_a_stream_that_had_nothing() -> None:
    """finish() on an empty body still gives a whole message: start, one empty text block, delta, stop."""
    out = ResponsesToMessagesStream(model=MODEL, input_tokens=3).finish()
    message = assert_anthropic_stream_grammar(out)
    assert message["content"] == [{"type": "text", "text": ""}]
    assert out[-2][1]["usage"]["input_tokens"] == 3


def test_start_first_then_events_and_nothing_after_the_end() -> None:
    """start() on the 200 sends message_start once; events after response.completed send nothing."""
    stream = Stream()
    stream.message([["hi"]])
    events = stream.complete()
    translator = ResponsesToMessagesStream(model=MODEL)
    out = translator.start()
    assert out[0][0] == "message_start" and translator.start() == []
    for event in events:
        out += translator.feed(event)
    assert translator.complete and out[-1][0] == "message_stop"
    assert translator.feed({"type": "response.output_text.delta", "output_index": 0, "delta": "late"}) == []
    assert_anthropic_stream_grammar(out)


def test_unknown_events_are_ignored_and_unannounced_text_still_arrives() -> None:
    """Event types newer than this code send nothing; text and reasoning of an item never announced
    still reach the client (lax servers skip output_item.added); arguments without a named call cannot."""
    translator = ResponsesToMessagesStream(model=MODEL)
    out = translator.start()
    assert translator.feed({"type": "response.queued"}) == []
    assert translator.feed({"type": "response.function_call_arguments.delta", "output_index": 4, "delta": "{"}) == []
    out += translator.feed({"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "hm"})
    out += translator.feed({"type": "response.output_text.delta", "output_index": 1, "delta": "x"})
    message = assert_anthropic_stream_grammar(out + translator.finish())
    assert [b["type"] for b in message["content"]] == ["thinking", "text"]


def test_the_official_sdk_accumulates_the_stream_into_the_same_message() -> None:
    """The anthropic SDK's own accumulator builds from the events what `response_to_message` returns."""
    stream = Stream()
    stream.reasoning([["Plan."]])
    stream.message([["Calling."]])
    stream.call("Bash", ['{"cmd"', ':"ls"}'])
    events = stream.complete()
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for name, payload in run(events):
        if name != "message_stop":
            snapshot = accumulate_event(event=payload, current_snapshot=snapshot, json_bufs=json_bufs)  # type: ignore[arg-type]
    assert snapshot is not None
    whole = response_to_message(final_response(events), model=MODEL)
    assert [block.model_dump(exclude_none=True) for block in snapshot.content] == whole["content"]
    assert snapshot.stop_reason == "tool_use"


# -- property: streamed == non-streamed -------------------------------------------------------

pieces = st.lists(st.text(min_size=1, max_size=5), min_size=0, max_size=3)
item = st.one_of(
    st.tuples(st.just("reasoning"), st.lists(pieces, max_size=2), st.one_of(st.none(), st.just("enc"))),
    st.tuples(st.just("message"), st.lists(pieces, min_size=1, max_size=2), st.booleans()),
    st.tuples(
        st.just("call"),
        st.sampled_from([[], ['{"a":1}'], ['{"a"', ":", '"x"}'], ['{"a": "cut']]),
        st.sampled_from(["Bash", "Read"]),
    ),
    st.tuples(st.just("hosted")),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(item, max_size=5), st.sampled_from([("completed", None), ("incomplete", "max_output_tokens")]))
def test_any_stream_adds_up_to_the_non_streamed_message(items: list[tuple[Any, ...]], end: tuple[str, Any]) -> None:
    """For any sequence of output items, the streamed Message equals the non-streamed translation."""
    stream = Stream()
    for n, spec in enumerate(items):
        if spec[0] == "reasoning":
            stream.reasoning(spec[1], encrypted=spec[2])
        elif spec[0] == "message":
            stream.message(spec[1], deltas=spec[2])
        elif spec[0] == "call":
            stream.call(spec[2], spec[1], call_id=f"call_{n}")
        else:
            stream.hosted()
    assert_stream_equals_whole(stream.complete(*end))


# -- recorded Anthropic answers, through Responses and back -----------------------------------


def _through_responses(raw: bytes) -> list[JSON]:
    """A recorded Anthropic stream as the Responses events ccproxy's other translator makes of it."""
    plan = responses_to_messages({"model": MODEL, "input": "hi"}, model=MODEL)[1]
    translator = ResponsesStreamTranslator(model=MODEL, plan=plan, created_at=1)
    decoder = SSEDecoder()
    events: list[JSON] = []
    for event in [*decoder.feed(raw), *decoder.flush()]:
        if event.data:
            events += translator.feed(event.event, orjson.loads(event.data))
    return events + translator.finish()


@pytest.mark.parametrize("path", ANTHROPIC_RECORDINGS, ids=[p.stem for p in ANTHROPIC_RECORDINGS])
def test_recorded_anthropic_answers_survive_the_round_trip(path: Path) -> None:
    """Anthropic SSE -> Responses events -> Anthropic events: grammar holds, and text and tool calls come back."""
    events = _through_responses(path.read_bytes())
    out = run(events)
    message = assert_anthropic_stream_grammar(out)
    if events[-1]["type"] in ("response.completed", "response.incomplete"):
        assert_stream_equals_whole(events)
    original = assert_anthropic_stream_grammar(
        [(e.event, orjson.loads(e.data)) for e in SSEDecoder().feed(path.read_bytes() + b"\n\n") if e.event != "ping"]
    )
    if "error" in original:
        assert "error" in message
        return
    kept = [
        (b["type"], b.get("text"), b.get("input")) for b in original["content"] if b["type"] in ("text", "tool_use")
    ]
    back = [(b["type"], b.get("text"), b.get("input")) for b in message["content"] if b["type"] in ("text", "tool_use")]
    assert back == [k for k in kept if k[0] != "text" or k[1].strip()]  # blank text is not carried


def test_a_call_whose_block_was_closed_is_never_reopened() -> None:
    """Interleaved calls: the second closes the first's block; the first's late arguments and done send nothing."""
    stream = Stream()
    first = {"id": "fc_a", "type": "function_call", "call_id": "call_a", "name": "Read", "arguments": ""}
    second = {"id": "fc_b", "type": "function_call", "call_id": "call_b", "name": "Bash", "arguments": ""}
    stream.emit("response.output_item.added", output_index=0, item=first)
    stream.emit("response.function_call_arguments.delta", item_id="fc_a", output_index=0, delta='{"path":')
    stream.emit("response.output_item.added", output_index=1, item=second)
    stream.emit("response.function_call_arguments.delta", item_id="fc_a", output_index=0, delta='"x"}')
    stream.emit("response.output_item.done", output_index=0, item={**first, "arguments": '{"path":"x"}'})
    stream.emit("response.output_item.done", output_index=1, item={**second, "arguments": "{}"})
    message = assert_anthropic_stream_grammar(run(stream.complete()))
    assert [(b["id"], b["input"]) for b in message["content"]] == [("call_a", {"path": None}), ("call_b", {})]


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.text(max_size=4)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=6,
)
EVENT_TYPES = [
    "response.created",
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.done",
    "response.output_text.delta",
    "response.refusal.delta",
    "response.reasoning_summary_text.delta",
    "response.reasoning_text.delta",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "error",
]
item_values = st.fixed_dictionaries(
    {"type": st.sampled_from(["message", "reasoning", "function_call", "web_search_call"])},
    optional=dict.fromkeys(("call_id", "name", "arguments", "content", "summary", "encrypted_content"), json_values),
)
loose_event = st.fixed_dictionaries(
    {"type": st.sampled_from(EVENT_TYPES)},
    optional={
        "output_index": st.one_of(st.integers(0, 2), json_values),
        "content_index": st.one_of(st.integers(0, 1), json_values),
        "summary_index": st.one_of(st.integers(0, 1), json_values),
        "delta": json_values,
        "arguments": json_values,
        "item": st.one_of(item_values, json_values),
        "part": json_values,
        "response": json_values,
        "error": json_values,
    },
)


@settings(max_examples=150, deadline=None)
@given(st.lists(loose_event, max_size=12), st.booleans())
def test_any_event_sequence_gives_a_well_formed_stream(events: list[JSON], cut: bool) -> None:
    """Whatever events a provider sends, in whatever order, the client gets a grammatical Anthropic stream."""
    translator = ResponsesToMessagesStream(model=MODEL)
    out = [e for event in events for e in translator.feed(event)]
    if cut and not translator.complete:
        out += translator.fail(UpstreamError(502, "api_error", "cut"))
    out += translator.finish()
    assert_anthropic_stream_grammar(out)
