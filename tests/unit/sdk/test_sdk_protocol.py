"""CLI stream-json lines -> one Anthropic message: recorded runs of the real CLI, and table cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from ccproxy_core.core.errors import UpstreamError
from ccproxy_core.sdk.protocol import CliTranslator, Event, Phase, fold_message, result_error, run_usage
from tests.grammar import assert_anthropic_stream_grammar

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sdk"


def recorded(name: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (FIXTURES / name).read_bytes().splitlines() if line.strip()]


def run(lines: list[dict[str, Any]]) -> tuple[CliTranslator, list[Event]]:
    translator = CliTranslator(model="sonnet", message_id="msg_test")
    events: list[Event] = []
    for line in lines:
        events += translator.feed(line)
    return translator, events


def names(events: list[Event]) -> list[str]:
    return [name for name, _ in events]


def test_text_run_streams_each_delta_as_it_comes() -> None:
    """A plain answer becomes message_start, one text block fed delta by delta, message_delta, message_stop."""
    translator, events = run(recorded("text.ndjson"))
    assert names(events)[:2] == ["message_start", "content_block_start"]
    deltas = [p["delta"]["text"] for n, p in events if n == "content_block_delta"]
    assert len(deltas) > 1 and "".join(deltas) == "Echo: hello there"
    assert names(events)[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert translator.phase is Phase.CLOSED


def test_streamed_text_is_not_repeated_from_the_assistant_line() -> None:
    """The assistant line that repeats a streamed block adds nothing."""
    _, events = run(recorded("text.ndjson"))
    assert fold_message(events)["content"] == [{"type": "text", "text": "Echo: hello there"}]


def test_folded_message_is_a_complete_anthropic_message() -> None:
    """The non-streaming answer has the client's model, a stop reason and the result's usage."""
    translator, events = run(recorded("text.ndjson"))
    message = fold_message(events)
    assert message["id"] == "msg_test" and message["model"] == "sonnet" and message["role"] == "assistant"
    assert message["stop_reason"] == "end_turn"
    assert message["usage"] == {
        "input_tokens": 11,
        "output_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert translator.usage is not None and translator.usage.cost_usd > 0
    assert translator.usage.model == "claude-opus-5-5"  # what the CLI ran (its default), from its init line


def test_claude_codes_own_tool_use_reaches_the_client_as_text() -> None:
    """A Bash round trip inside the CLI shows as text naming the tool, its input and its result; no tool_use."""
    _, events = run(recorded("tool-bash.ndjson"))
    message = fold_message(events)
    assert {b["type"] for b in message["content"]} == {"text"}
    text = "".join(b["text"] for b in message["content"])
    assert '[Claude Code ran Bash: {"command":"echo hello"' in text
    assert "[Bash result: hello]" in text
    assert text.endswith("The command printed: hello")
    assert message["stop_reason"] == "end_turn"


def test_streams_keep_the_grammar_claude_code_clients_rely_on() -> None:
    """Every recorded run gives a stream the Anthropic clients accept (blocks opened, fed, closed in order)."""
    for name in ("text.ndjson", "tool-bash.ndjson"):
        _, events = run(recorded(name))
        assert_anthropic_stream_grammar(events)


def test_block_indices_count_up_across_api_calls() -> None:
    """Blocks of several API calls get the client's own indices 0, 1, 2, ... each started and stopped once."""
    _, events = run(recorded("tool-bash.ndjson"))
    starts = [p["index"] for n, p in events if n == "content_block_start"]
    stops = [p["index"] for n, p in events if n == "content_block_stop"]
    assert starts == list(range(len(starts))) == stops


def test_api_error_before_any_content_is_a_failure_not_a_stream() -> None:
    """An API error inside the CLI (404 model) sends nothing and leaves an error with that status."""
    translator, events = run(recorded("api-error.ndjson"))
    assert events == []
    assert isinstance(translator.failure, UpstreamError)
    assert translator.failure.http_status == 404 and translator.failure.type == "not_found_error"
    assert "selected model" in translator.failure.message


def test_error_after_content_is_an_error_event() -> None:
    """Once the client has bytes, a failed result ends the stream with an `error` event."""
    lines = recorded("text.ndjson")
    result = {**lines[-1], "is_error": True, "subtype": "error_during_execution", "result": "boom"}
    translator, events = run([*lines[:-1], result])
    assert events[-1][0] == "error" and events[-1][1]["error"]["message"] == "Claude Code: boom"
    assert translator.failure is None and translator.done


def test_subagent_lines_are_skipped() -> None:
    """Lines that belong to a subagent (parent_tool_use_id set) do not reach the client."""
    lines = [{**line, "parent_tool_use_id": "toolu_1"} for line in recorded("text.ndjson")[:-1]]
    _, events = run(lines)
    assert events == []


def test_unstreamed_thinking_and_text_are_sent_whole() -> None:
    """An assistant line without stream events (a non-streaming fallback) is sent as whole blocks."""
    line = {
        "type": "assistant",
        "parent_tool_use_id": None,
        "message": {
            "id": "msg_x",
            "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}, {"type": "text", "text": "hi"}],
        },
    }
    _, events = run([line, {"type": "result", "subtype": "success", "is_error": False, "usage": {}}])
    assert fold_message(events)["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "hi"},
    ]


@pytest.mark.parametrize(
    ("result", "status"),
    [
        ({"subtype": "success", "is_error": True, "api_error_status": 429, "result": "rate limited"}, 429),
        ({"subtype": "error_max_turns", "is_error": True}, 500),
        ({"subtype": "error_during_execution", "errors": ["x"]}, 500),
    ],
)
def test_failed_results_map_to_errors(result: dict[str, Any], status: int) -> None:
    """A failed result is an error with the API's status when the CLI reports one, else 500."""
    err = result_error(result)
    assert err is not None and err.http_status == status and err.message.startswith("Claude Code: ")


def test_turn_cost_is_this_turns_share() -> None:
    """A warm process reports its session's total cost; the turn's cost is what this result added."""
    usage = run_usage({"total_cost_usd": 0.5, "usage": {"input_tokens": 3}}, model="m", previous_cost=0.2)
    assert usage.cost_usd == pytest.approx(0.3) and usage.input_tokens == 3
