"""Responses request -> Messages request: what Codex and the openai SDK send, as Anthropic must get it.

Every translated request validates against the Anthropic spec's CreateMessageParams; errors
name the field path the client has to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.messages_request import THINKING_BUDGETS
from ccproxy_core.translate.responses_request import responses_to_messages
from ccproxy_core.translate.responses_response import (
    CallTarget,
    encode_thinking,
    message_to_response,
    responses_usage,
)
from tests.specs import validator

CODEX = Path(__file__).parents[2] / "fixtures" / "codex"
MODEL = "claude-sonnet-4-5"


def codex_body(name: str) -> JSON:
    body: JSON = orjson.loads((CODEX / name).read_bytes())["body"]
    return body


def translate(body: JSON) -> tuple[JSON, Any]:
    out, plan = responses_to_messages({"model": "m", **body}, model=MODEL)
    errors = list(validator("anthropic", "CreateMessageParams").iter_errors(out))
    assert not errors, [e.message for e in errors[:3]]
    return out, plan


def fn(name: str, **props: str) -> JSON:
    return {
        "type": "function",
        "name": name,
        "description": name,
        "parameters": {"type": "object", "properties": {k: {"type": t} for k, t in props.items()}},
    }


# -- what Codex sends ---------------------------------------------------------------------


def test_codex_first_request() -> None:
    """Codex's developer messages are the system prompt in order; its tools map, web_search is dropped."""
    body = codex_body("exec-shell-0001.json")
    out, plan = translate(body)
    developer = [part["text"] for item in body["input"] if item.get("role") == "developer" for part in item["content"]]
    assert [block["text"] for block in out["system"]] == developer
    assert plan.dropped_tools == ("web_search",)
    names = [tool["name"] for tool in out["tools"]]
    assert "exec_command" in names and "multi_agent_v1__spawn_agent" in names
    assert plan.target("multi_agent_v1__spawn_agent") == CallTarget("function", "spawn_agent", "multi_agent_v1")
    assert out["tool_choice"] == {"type": "auto"}
    assert [turn["role"] for turn in out["messages"]] == ["user"]
    assert "thinking" not in out  # Codex sent reasoning.summary without an effort


def test_codex_follow_up_pairs_the_call_with_its_output() -> None:
    """The function_call and its function_call_output become a tool_use and its tool_result."""
    out, _ = translate(codex_body("exec-shell-0002.json"))
    assistant, result = out["messages"][-2:]
    call = assistant["content"][0]
    assert call == {
        "type": "tool_use",
        "id": "call_bb33d4a079fb4e12aeba40e0",
        "name": "exec_command",
        "input": {"cmd": "echo codex-ran-$((6*7))"},
    }
    assert result["content"][0]["tool_use_id"] == call["id"]
    assert "codex-ran-42" in result["content"][0]["content"]


def test_prompt_is_marked_for_caching() -> None:
    """The system prompt and the newest turn carry cache breakpoints (Codex resends 20 KB every turn)."""
    out, _ = translate(codex_body("exec-shell-0002.json"))
    assert out["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert out["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}


# -- conversation -------------------------------------------------------------------------


def test_instructions_come_before_developer_messages() -> None:
    """instructions, then system and developer messages wherever they sit, in order."""
    out, _ = translate(
        {
            "instructions": "A",
            "input": [
                {"role": "user", "content": "hi"},
                {"role": "developer", "content": "B"},
                {"role": "system", "content": [{"type": "input_text", "text": "C"}]},
            ],
        }
    )
    assert [b["text"] for b in out["system"]] == ["A", "B", "C"]
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}
    ]


def test_a_string_input_is_one_user_message() -> None:
    """`input: "text"` is the simplest request the SDK sends."""
    out, _ = translate({"input": "hello"})
    assert out["messages"][0]["content"][0]["text"] == "hello"


def test_images_become_image_blocks() -> None:
    """input_image with a data URL or an https URL becomes an Anthropic image block."""
    out, _ = translate(
        {
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "what is it"},
                        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
                        {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
                    ],
                }
            ]
        }
    )
    blocks = out["messages"][0]["content"]
    assert blocks[1]["source"] == {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    assert blocks[2]["source"] == {"type": "url", "url": "https://example.com/cat.jpg"}


def test_assistant_history_and_parallel_calls_merge_into_one_turn() -> None:
    """A message and two calls of one model turn land in one assistant turn; both outputs in the next."""
    out, _ = translate(
        {
            "tools": [fn("a"), fn("b")],
            "input": [
                {"role": "user", "content": "go"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Calling."}]},
                {"type": "function_call", "call_id": "c1", "name": "a", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "b", "arguments": '{"x": 1}'},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
            ],
        }
    )
    assistant, results = out["messages"][1:]
    assert [b["type"] for b in assistant["content"]] == ["text", "tool_use", "tool_use"]
    assert [(b["tool_use_id"], b["content"]) for b in results["content"]] == [
        ("c1", "one"),
        ("c2", [{"type": "text", "text": "two"}]),
    ]


def test_a_call_without_output_gets_a_placeholder_result() -> None:
    """Anthropic refuses a tool_use left unanswered; the proxy says no output was recorded."""
    out, _ = translate(
        {
            "tools": [fn("a")],
            "input": [
                {"role": "user", "content": "go"},
                {"type": "function_call", "call_id": "c1", "name": "a", "arguments": ""},
                {"role": "user", "content": "and?"},
            ],
        }
    )
    assert out["messages"][2]["content"][0]["tool_use_id"] == "c1"
    assert out["messages"][2]["content"][1]["text"] == "and?"


def test_an_output_without_its_call_becomes_text() -> None:
    """A history trimmed by the client keeps an output whose call is gone: it reaches the model as text."""
    out, _ = translate(
        {
            "tools": [fn("a")],
            "input": [
                {"type": "function_call_output", "call_id": "gone", "output": "old result"},
                {"role": "user", "content": "go"},
                {"type": "function_call", "call_id": "c1", "name": "a", "arguments": "{}"},
                {
                    "type": "function_call_output",
                    "call_id": "gone2",
                    "output": [{"type": "input_text", "text": "older"}],
                },
                {"type": "function_call_output", "call_id": "c1", "output": "new"},
            ],
        }
    )
    first, _, last = out["messages"]
    assert first["content"][0] == {"type": "text", "text": "[output of tool call gone]\nold result"}
    assert [b["type"] for b in last["content"]] == ["tool_result", "text"]
    assert last["content"][1]["text"] == "[output of tool call gone2]\nolder"


def test_reasoning_items_restore_signed_thinking_and_drop_the_rest() -> None:
    """ccproxy's own encrypted_content restores the thinking block exactly; OpenAI's opaque items are dropped."""
    thinking = {"type": "thinking", "thinking": "Let me see.", "signature": "EoQDsig=="}
    out, _ = translate(
        {
            "tools": [fn("a")],
            "reasoning": {"effort": "low"},
            "input": [
                {"role": "user", "content": "go"},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAforeign"},
                {"type": "compaction", "encrypted_content": "gAAAAsummary"},
                {"type": "web_search_call", "id": "ws_1", "status": "completed"},
                {
                    "type": "reasoning",
                    "id": "rs_2",
                    "summary": [{"type": "summary_text", "text": "Let me see."}],
                    "encrypted_content": encode_thinking(thinking),
                },
                {"type": "function_call", "call_id": "c1", "name": "a", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            ],
        }
    )
    assert out["messages"][1]["content"][0] == thinking
    assert out["thinking"] == {"type": "enabled", "budget_tokens": THINKING_BUDGETS["low"]}


def test_a_tool_loop_without_its_thinking_turns_thinking_off() -> None:
    """Anthropic rejects thinking when the last call's signed thinking is missing; the proxy leaves it off."""
    out, plan = translate(
        {
            "tools": [fn("a")],
            "reasoning": {"effort": "high"},
            "input": [
                {"role": "user", "content": "go"},
                {"type": "function_call", "call_id": "c1", "name": "a", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            ],
        }
    )
    assert "thinking" not in out and plan.effort is None


def test_a_forced_tool_call_leaves_thinking_off() -> None:
    """Anthropic allows no forced tool with thinking: the forced call the client asked for wins."""
    out, plan = translate(
        {"input": "hi", "tools": [fn("a")], "tool_choice": "required", "reasoning": {"effort": "low"}}
    )
    assert "thinking" not in out and out["tool_choice"] == {"type": "any"} and plan.effort is None


@pytest.mark.parametrize(
    ("effort", "max_output_tokens", "budget", "max_tokens"),
    [
        ("low", None, 1024, 4096),
        ("high", 1000, THINKING_BUDGETS["high"], 1000 + (THINKING_BUDGETS["high"] or 0)),
        ("minimal", 500, None, 500),
        (None, 700, None, 700),
    ],
)
def test_reasoning_effort_maps_to_a_thinking_budget(
    effort: str | None, max_output_tokens: int | None, budget: int | None, max_tokens: int
) -> None:
    """reasoning.effort takes its budget from THINKING_BUDGETS; max_tokens grows past the budget."""
    body: JSON = {"input": "hi", "reasoning": {"effort": effort}, "temperature": 1.5}
    if max_output_tokens:
        body["max_output_tokens"] = max_output_tokens
    out, _ = translate(body)
    assert out.get("thinking", {}).get("budget_tokens") == budget
    assert out["max_tokens"] == max_tokens
    assert ("temperature" in out) is (budget is None)  # thinking allows only the default sampling


# -- tools --------------------------------------------------------------------------------


def test_custom_tools_take_one_string() -> None:
    """A custom tool is a function with one string `input`; its grammar goes into the description."""
    grammar = {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}
    out, plan = translate(
        {
            "input": [
                {"role": "user", "content": "patch it"},
                {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch"},
                {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done"},
            ],
            "tools": [{"type": "custom", "name": "apply_patch", "description": "Edit files.", "format": grammar}],
        }
    )
    tool = out["tools"][0]
    assert tool["input_schema"]["properties"]["input"]["type"] == "string"
    assert tool["description"].startswith("Edit files.") and "start: /.+/" in tool["description"]
    assert out["messages"][1]["content"][0]["input"] == {"input": "*** Begin Patch"}
    assert plan.target("apply_patch").kind == "custom"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "name": "a"}, {"type": "tool", "name": "a"}),
        ({"type": "allowed_tools", "mode": "required", "tools": []}, {"type": "any"}),
        ({"type": "web_search_preview"}, None),
    ],
)
def test_tool_choice(choice: Any, expected: JSON | None) -> None:
    """Each tool_choice form maps to Anthropic's; a hosted tool's leaves the choice to the model."""
    out, _ = translate({"input": "hi", "tools": [fn("a")], "tool_choice": choice})
    assert out.get("tool_choice") == expected


def test_parallel_tool_calls_false_disables_parallel_use() -> None:
    """parallel_tool_calls: false becomes disable_parallel_tool_use."""
    out, _ = translate({"input": "hi", "tools": [fn("a")], "parallel_tool_calls": False})
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_json_schema_format_is_the_forced_json_tool() -> None:
    """text.format json_schema becomes the json_tool_call tool, forced when nothing else may be called."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    out, plan = translate({"input": "hi", "text": {"format": {"type": "json_schema", "name": "x", "schema": schema}}})
    assert out["tools"][0]["input_schema"] == schema and plan.json_mode
    assert out["tool_choice"] == {"type": "tool", "name": "json_tool_call"}


# -- refused, each naming the field -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (
            {"input": "hi", "previous_response_id": "resp_123"},
            "previous_response_id: ccproxy keeps no responses, so 'resp_123'",
        ),
        ({"input": 5}, "input:"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input.0: item references"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
            "input.0.content.0.file_id",
        ),
        ({"input": [{"role": "robot", "content": "hi"}]}, "input.0.role"),
        ({"input": [{"type": "function_call", "call_id": "c", "arguments": "{}"}]}, "input.0.name"),
        ({"input": "hi", "reasoning": {"effort": "huge"}}, "reasoning.effort: expected one of"),
        ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "hi", "tools": [fn("a")], "tool_choice": {"type": "function", "name": "b"}}, "tool_choice.name"),
        ({"input": "hi", "tools": [{"type": "namespace", "name": "n", "tools": "x"}]}, "tools.0.tools"),
        ({"input": "hi", "tools": [{"name": "f", "parameters": {}}]}, "tools.0.type"),
        ({"input": "hi", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ],
)
def test_bad_requests_name_the_field(body: JSON, path: str) -> None:
    """Each refusal is a 400 whose message starts with the field to fix."""
    with pytest.raises(InvalidRequest) as caught:
        responses_to_messages({"model": "m", **body}, model=MODEL)
    assert caught.value.message.startswith(path)


# -- the answer side ----------------------------------------------------------------------


def test_usage_counts_the_whole_prompt_and_the_cache_read() -> None:
    """input_tokens = fresh + cache read + cache write; cached_tokens = the cache read."""
    usage = responses_usage(
        {"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5, "output_tokens": 7}
    )
    assert usage == {
        "input_tokens": 115,
        "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 122,
    }


def test_a_whole_message_validates_as_a_response() -> None:
    """message_to_response of a recorded Message is a valid Response with the call the Message made."""
    message = orjson.loads((CODEX.parent / "recorded" / "anthropic" / "message_tool_use.json").read_bytes())
    _, plan = translate({"input": "hi", "tools": [fn("get_weather", location="string")]})
    response = message_to_response(message, model="gpt-5", plan=plan, created_at=1)
    assert validator("openai", "Response", nullable_as_union=True).is_valid(response)
    call = next(item for item in response["output"] if item["type"] == "function_call")
    tool_use = next(b for b in message["content"] if b["type"] == "tool_use")
    assert call["call_id"] == tool_use["id"] and orjson.loads(call["arguments"]) == tool_use["input"]
