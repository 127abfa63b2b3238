"""Anthropic Messages request -> Chat Completions request (reference §3)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.translate.anthropic_blocks import NO_VISION
from ccproxy_core.translate.chat_request import (
    MISSING_RESULT,
    SYNTHETIC_SIGNATURE_PREFIX,
    messages_to_chat,
    strip_synthetic_thinking,
)
from ccproxy_core.translate.dialect import ChatDialect
from ccproxy_core.translate.tool_names import mistral_tool_id
from tests.specs import keys_anywhere, validator

FIXTURES = Path(__file__).parents[2] / "fixtures"
CLAUDE_CODE = sorted((FIXTURES / "claude-code").glob("*.json"))
PNG = "iVBORw0KGgo="
MCP_70 = "mcp__atlassian_confluence__get_confluence_page_footer_comments_with_ids"  # 71 chars

# Everything a translated request may contain; anything else would be a leak.
ALLOWED_KEYS = {
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "reasoning_effort",
    "reasoning",
    "user",
    "stream",
    "stream_options",
}
ANTHROPIC_ONLY = {
    "system",
    "stop_sequences",
    "top_k",
    "thinking",
    "metadata",
    "context_management",
    "output_config",
    "container",
    "mcp_servers",
    "service_tier",
    "anthropic_version",
    "cache_control",
    "input_schema",
    "is_error",
    "tool_use_id",
    "media_type",
}


def chat(body: dict[str, Any], dialect: ChatDialect | None = None) -> dict[str, Any]:
    body = {"model": "claude-sonnet-4", "max_tokens": 100, **body}
    out, _ = messages_to_chat(body, model="gpt-4.1", dialect=dialect or ChatDialect())
    return out


def user(*blocks: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def text(value: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": value, **extra}


def tool_use(tool_id: str, name: str = "Bash", **tool_input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


def tool_result(tool_id: str, content: Any = "ok", **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": content, **extra}


def image(data: str = PNG, media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


# -- system ---------------------------------------------------------------------------------


def test_system_string_becomes_first_message() -> None:
    """A system string is the first message, role system."""
    out = chat({"system": "be brief", "messages": [{"role": "user", "content": "hi"}]})
    assert out["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


def test_system_blocks_join_into_one_string() -> None:
    """System text blocks join with a blank line into one string; cache_control goes."""
    out = chat(
        {
            "system": [text("one"), text("two", cache_control={"type": "ephemeral", "ttl": "1h"})],
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    assert out["messages"][0] == {"role": "system", "content": "one\n\ntwo"}


def test_system_message_inside_messages_keeps_its_place() -> None:
    """Claude Code's mid-conversation `role: system` message stays where it was."""
    out = chat(
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "system", "content": "agents: x"},
                {"role": "user", "content": [text("b")]},
            ]
        }
    )
    assert [m["role"] for m in out["messages"]] == ["user", "system", "user"]
    assert out["messages"][1]["content"] == "agents: x"


# -- user content ---------------------------------------------------------------------------


def test_text_blocks_collapse_to_a_string_and_empty_ones_drop() -> None:
    """All-text user content becomes one string; empty text blocks are dropped."""
    out = chat({"messages": [user(text("<reminder>"), text(""), text("question", cache_control={}))]})
    assert out["messages"] == [{"role": "user", "content": "<reminder>\n\nquestion"}]


@pytest.mark.parametrize(
    ("source", "url"),
    [
        ({"type": "base64", "media_type": "image/jpeg", "data": PNG}, f"data:image/jpeg;base64,{PNG}"),
        (
            {"type": "base64", "media_type": "image/png", "data": f"data:image/png;base64,{PNG}"},
            f"data:image/png;base64,{PNG}",
        ),
        ({"type": "url", "url": "https://example.com/a.png"}, "https://example.com/a.png"),
    ],
)
def test_images_become_image_url_parts(source: dict[str, Any], url: str) -> None:
    """base64 and URL images become image_url parts, a doubled base64 prefix is removed, no media_type."""
    out = chat({"messages": [user({"type": "image", "source": source}, text("what is it?"))]})
    content = out["messages"][0]["content"]
    assert content == [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "what is it?"}]


def test_images_for_a_model_without_vision_become_a_note() -> None:
    """A target without vision gets a text note instead of the image, also inside tool results."""
    out = chat(
        {"messages": [assistant(tool_use("t1")), user(tool_result("t1", [image()]), image(), text("see"))]},
        ChatDialect(supports_images=False),
    )
    assert out["messages"][1] == {"role": "tool", "tool_call_id": "t1", "content": NO_VISION}
    assert out["messages"][2] == {"role": "user", "content": f"{NO_VISION}\n\nsee"}


def test_documents_are_inlined_or_noted() -> None:
    """A text document is inlined with its title; a PDF becomes a note."""
    out = chat(
        {
            "messages": [
                user(
                    {
                        "type": "document",
                        "title": "notes.txt",
                        "source": {"type": "text", "media_type": "text/plain", "data": "line 1"},
                    },
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"},
                    },
                )
            ]
        }
    )
    content = out["messages"][0]["content"]
    assert content.startswith("notes.txt\n\nline 1\n\n[PDF document omitted")


# -- tool results ---------------------------------------------------------------------------


def test_tool_results_come_first_then_images_and_text() -> None:
    """[tool_result(text), tool_result(image), text] gives two tool messages, then image + text (§10.11)."""
    out = chat(
        {
            "messages": [
                assistant(tool_use("t1"), tool_use("t2", "Read")),
                user(tool_result("t1", "hello"), tool_result("t2", [text("a chart"), image()]), text("thoughts?")),
            ]
        }
    )
    assert out["messages"][1:] == [
        {"role": "tool", "tool_call_id": "t1", "content": "hello"},
        {"role": "tool", "tool_call_id": "t2", "content": "a chart"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "text", "text": "thoughts?"},
            ],
        },
    ]


def test_tool_messages_precede_text_that_came_first() -> None:
    """Text before a tool_result in the same turn still goes after the tool message."""
    out = chat({"messages": [assistant(tool_use("t1")), user(text("note"), tool_result("t1"))]})
    assert [m["role"] for m in out["messages"]] == ["assistant", "tool", "user"]


@pytest.mark.parametrize(
    ("block", "content"),
    [
        (tool_result("t1", "plain"), "plain"),
        (tool_result("t1", [text("a"), text("b")]), "a\nb"),
        ({"type": "tool_result", "tool_use_id": "t1"}, ""),
        (tool_result("t1", "no such file", is_error=True), "Error: no such file"),
        (tool_result("t1", [image()]), "[the tool returned image(s); they follow in the next user message]"),
    ],
)
def test_tool_result_content(block: dict[str, Any], content: str) -> None:
    """String, blocks (joined by newlines), missing (empty), is_error (prefixed) and image-only results."""
    out = chat({"messages": [assistant(tool_use("t1")), user(block)]})
    assert out["messages"][1] == {"role": "tool", "tool_call_id": "t1", "content": content}


def test_orphan_tool_use_gets_a_placeholder_answer() -> None:
    """A call that never got a result is answered by a placeholder so the upstream accepts the history."""
    out = chat(
        {
            "messages": [
                assistant(tool_use("t1"), tool_use("t2")),
                user(tool_result("t2")),
                {"role": "user", "content": "next"},
            ]
        }
    )
    assert out["messages"][1:3] == [
        {"role": "tool", "tool_call_id": "t2", "content": "ok"},
        {"role": "tool", "tool_call_id": "t1", "content": MISSING_RESULT},
    ]


def test_orphan_tool_use_at_the_end_is_answered_too() -> None:
    """Even a trailing assistant tool call is followed by a tool message."""
    out = chat({"messages": [{"role": "user", "content": "go"}, assistant(tool_use("t1"))]})
    assert out["messages"][-1] == {"role": "tool", "tool_call_id": "t1", "content": MISSING_RESULT}


def test_orphan_tool_result_is_dropped() -> None:
    """A result whose call is not in the previous assistant turn is dropped."""
    out = chat({"messages": [user(tool_result("nobody"), text("hi"))]})
    assert out["messages"] == [{"role": "user", "content": "hi"}]


def test_system_message_between_call_and_result_waits() -> None:
    """A system message between a tool call and its result moves behind the tool message."""
    out = chat(
        {"messages": [assistant(tool_use("t1")), {"role": "system", "content": "note"}, user(tool_result("t1"))]}
    )
    assert [m["role"] for m in out["messages"]] == ["assistant", "tool", "system"]


# -- assistant content ----------------------------------------------------------------------


def test_assistant_tool_use_becomes_tool_calls() -> None:
    """tool_use blocks become tool_calls with JSON-string arguments; content null when there is no text."""
    out = chat({"messages": [assistant(tool_use("toolu_1", command="ls -la"))]})
    assert out["messages"][0] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "Bash", "arguments": '{"command":"ls -la"}'}}
        ],
    }


def test_assistant_text_joins_without_separator() -> None:
    """Assistant text blocks are contiguous model output and join with nothing between."""
    out = chat({"messages": [assistant(text("Hel"), text("lo"))]})
    assert out["messages"] == [{"role": "assistant", "content": "Hello"}]


def test_thinking_is_dropped_unless_the_dialect_echoes_it() -> None:
    """Thinking goes nowhere by default, to `reasoning_content` for DeepSeek; redacted thinking never."""
    turn = assistant(
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "redacted_thinking", "data": "xx"},
        text("done"),
    )
    assert chat({"messages": [turn]})["messages"] == [{"role": "assistant", "content": "done"}]
    echoed = chat({"messages": [turn]}, ChatDialect(echo_reasoning=True))
    assert echoed["messages"] == [{"role": "assistant", "content": "done", "reasoning_content": "hmm"}]


def test_server_tool_history_becomes_short_text() -> None:
    """An earlier web search turn becomes a short text summary, not unknown blocks."""
    out = chat(
        {
            "messages": [
                assistant(
                    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                    {
                        "type": "web_search_tool_result",
                        "tool_use_id": "srvtoolu_1",
                        "content": [
                            {"type": "web_search_result", "title": "T", "url": "https://t", "encrypted_content": "x"}
                        ],
                    },
                    text("answer"),
                )
            ]
        }
    )
    content = out["messages"][0]["content"]
    assert "web_search" in content
    assert "T (https://t)" in content
    assert content.endswith("answer")
    assert "encrypted_content" not in content


# -- tools and tool_choice ------------------------------------------------------------------


def test_tools_keep_only_name_description_parameters() -> None:
    """A tool becomes a function with name, description and parameters; cache_control and the rest go."""
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    out = chat(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [
                {
                    "name": "Search",
                    "description": "find",
                    "input_schema": schema,
                    "cache_control": {"type": "ephemeral"},
                    "defer_loading": True,
                },
                {"type": "custom", "name": "Plain", "input_schema": schema},
            ],
        }
    )
    assert out["tools"] == [
        {"type": "function", "function": {"name": "Search", "description": "find", "parameters": schema}},
        {"type": "function", "function": {"name": "Plain", "description": "", "parameters": schema}},
    ]


@pytest.mark.parametrize(
    "server_tool",
    [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"type": "web_fetch_20250910", "name": "web_fetch"},
        {"type": "bash_20250124", "name": "bash"},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
        {"type": "computer_20250124", "name": "computer", "display_width_px": 1024},
        {"type": "code_execution_20250825", "name": "code_execution"},
    ],
)
def test_server_tools_are_dropped(server_tool: dict[str, Any]) -> None:
    """Anthropic server tools cannot run elsewhere and never become functions."""
    out = chat(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [server_tool],
            "tool_choice": {"type": "tool", "name": server_tool["name"]},
        }
    )
    assert "tools" not in out
    assert "tool_choice" not in out


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "Bash"}, {"type": "function", "function": {"name": "Bash"}}),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    """auto -> auto, any -> required (never "any"), tool -> function, none -> none."""
    out = chat(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
            "tool_choice": choice,
        }
    )
    assert out["tool_choice"] == expected
    assert "parallel_tool_calls" not in out


def test_disable_parallel_tool_use_only_with_tools() -> None:
    """disable_parallel_tool_use -> parallel_tool_calls false, and neither is sent without tools."""
    choice = {"type": "any", "disable_parallel_tool_use": True}
    out = chat(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "tool_choice": choice,
            "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        }
    )
    assert out["tool_choice"] == "required"
    assert out["parallel_tool_calls"] is False
    bare = chat({"messages": [{"role": "user", "content": "hi"}], "tool_choice": choice})
    assert "tool_choice" not in bare
    assert "parallel_tool_calls" not in bare


def test_long_mcp_name_is_mapped_everywhere_and_restored() -> None:
    """A 70+ character name is shortened alike in tools, tool_choice and history, then restored (§10.12)."""
    body = {
        "model": "claude",
        "max_tokens": 10,
        "tools": [{"name": MCP_70, "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": MCP_70},
        "messages": [{"role": "user", "content": "hi"}, assistant(tool_use("t1", MCP_70)), user(tool_result("t1"))],
    }
    out, names = messages_to_chat(body, model="gpt-4.1")
    short = out["tools"][0]["function"]["name"]
    assert len(short) == 64
    assert short != MCP_70
    assert out["tool_choice"]["function"]["name"] == short
    assert out["messages"][1]["tool_calls"][0]["function"]["name"] == short
    assert names.to_client(short) == MCP_70


# -- ids ------------------------------------------------------------------------------------


def test_mistral_ids_match_in_calls_and_results() -> None:
    """For Mistral, ids become 9 alphanumerics, the same in tool_calls and tool messages (§10.15)."""
    out = chat(
        {"messages": [assistant(tool_use("toolu_01ABCDEF")), user(tool_result("toolu_01ABCDEF"))]},
        ChatDialect(tool_id_style="mistral9"),
    )
    call_id = out["messages"][0]["tool_calls"][0]["id"]
    assert call_id == mistral_tool_id("toolu_01ABCDEF")
    assert len(call_id) == 9
    assert call_id.isalnum()
    assert out["messages"][1]["tool_call_id"] == call_id


# -- top-level fields -----------------------------------------------------------------------


def test_sampling_and_limits() -> None:
    """max_tokens, temperature, top_p pass; stop_sequences -> stop (at most 4); top_k is dropped."""
    out = chat(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 321,
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "stop_sequences": ["a", "b", "c", "d", "e"],
        }
    )
    assert (out["max_tokens"], out["temperature"], out["top_p"]) == (321, 0.2, 0.9)
    assert out["stop"] == ["a", "b", "c", "d"]
    assert "top_k" not in out


def test_max_tokens_field_follows_the_dialect() -> None:
    """Reasoning models get max_completion_tokens instead of max_tokens."""
    out = chat({"messages": [{"role": "user", "content": "hi"}]}, ChatDialect(max_tokens_field="max_completion_tokens"))
    assert out["max_completion_tokens"] == 100
    assert "max_tokens" not in out


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 1025}, "medium"),
        ({"type": "enabled", "budget_tokens": 8192}, "medium"),
        ({"type": "enabled", "budget_tokens": 31999}, "high"),
        ({"type": "adaptive"}, "medium"),
        ({"type": "disabled"}, None),
        (None, None),
    ],
)
def test_thinking_budget_to_effort(thinking: dict[str, Any] | None, effort: str | None) -> None:
    """One bucket table: <=1024 low, <=8192 medium, more high, adaptive medium, else nothing."""
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
    if thinking is not None:
        body["thinking"] = thinking
    assert chat(body).get("reasoning_effort") == effort


def test_reasoning_style_per_dialect() -> None:
    """Effort goes to reasoning_effort, to OpenRouter's reasoning object, or nowhere."""
    body = {"messages": [{"role": "user", "content": "hi"}], "thinking": {"type": "enabled", "budget_tokens": 500}}
    assert chat(body, ChatDialect(reasoning="openrouter"))["reasoning"] == {"effort": "low"}
    none = chat(body, ChatDialect(reasoning="none"))
    assert "reasoning" not in none
    assert "reasoning_effort" not in none


def test_user_and_stream_options_follow_the_dialect() -> None:
    """metadata.user_id -> user, stream -> stream + include_usage; both can be switched off."""
    body = {"messages": [{"role": "user", "content": "hi"}], "metadata": {"user_id": "u1"}, "stream": True}
    out = chat(body)
    assert out["user"] == "u1"
    assert out["stream"] is True
    assert out["stream_options"] == {"include_usage": True}
    quiet = chat(body, ChatDialect(send_user=False, stream_usage=False))
    assert "user" not in quiet
    assert "stream_options" not in quiet
    assert quiet["stream"] is True
    assert "stream" not in chat({"messages": [{"role": "user", "content": "hi"}]})


def test_anthropic_only_fields_never_leave() -> None:
    """Only whitelisted keys come out, whatever Anthropic-only fields came in."""
    out = chat(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "context_management": {"edits": []},
            "output_config": {"effort": "high"},
            "container": "c",
            "mcp_servers": [],
            "service_tier": "auto",
            "anthropic_beta": ["x"],
        }
    )
    assert set(out) <= ALLOWED_KEYS


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": "hi"}, "messages: expected a list"),
        ({"messages": ["hi"]}, "messages.0: expected an object"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages.0.content: expected a string or a list"),
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"},
                    user(text("x"), {"text": "no type"}),
                ]
            },
            'messages.3.content.1: expected an object with "type"',
        ),
        ({"messages": [user({"type": "text", "text": 5})]}, "messages.0.content.0.text: expected a string"),
        (
            {"messages": [assistant({"type": "tool_use", "name": "Bash", "input": {}})]},
            "messages.0.content.0.id: expected a string",
        ),
        ({"messages": [user({"type": "image"})]}, "messages.0.content.0.source: expected an object"),
        ({"messages": [], "tools": [{"input_schema": {}}]}, "tools.0.name: expected a string"),
        ({"messages": [], "tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({"messages": [], "system": 7}, "system: expected a string or a list"),
        ({"messages": [], "max_tokens": "many"}, "max_tokens: expected an integer"),
    ],
)
def test_bad_input_names_the_field(body: dict[str, Any], message: str) -> None:
    """Malformed requests raise InvalidRequest (400) whose message starts with the field path."""
    with pytest.raises(InvalidRequest) as caught:
        messages_to_chat({"model": "m", **body}, model="gpt")
    assert caught.value.message.startswith(message)
    assert caught.value.http_status == 400


# -- synthetic thinking ---------------------------------------------------------------------


def test_strip_synthetic_thinking_removes_only_ours() -> None:
    """Thinking blocks signed by ccproxy are removed, real ones stay, the input is untouched."""
    ours = {"type": "thinking", "thinking": "x", "signature": SYNTHETIC_SIGNATURE_PREFIX + "abc"}
    real = {"type": "thinking", "thinking": "y", "signature": "EqQBCkYIBxgCKkA"}
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "q"},
            assistant(ours, text("a")),
            {"role": "user", "content": "q2"},
            assistant(real, text("b")),
            assistant(ours),
        ],
    }
    before = copy.deepcopy(body)
    stripped = strip_synthetic_thinking(body)
    assert stripped is not None
    assert stripped["messages"][1]["content"] == [text("a")]
    assert stripped["messages"][3]["content"] == [real, text("b")]
    assert len(stripped["messages"]) == 4  # the turn holding only our thinking is gone
    assert body == before


def test_strip_synthetic_thinking_returns_none_when_nothing_to_strip() -> None:
    """A request without ccproxy thinking needs no copy."""
    assert strip_synthetic_thinking({"messages": [{"role": "user", "content": "q"}]}) is None


# -- real Claude Code requests against the OpenAI spec ---------------------------------------


@pytest.fixture(scope="module")
def chat_request_validator() -> Draft202012Validator:
    return validator("openai", "CreateChatCompletionRequest")


def test_spec_validator_rejects_a_broken_request(chat_request_validator: Draft202012Validator) -> None:
    """The spec check has teeth: an Anthropic-shaped message is refused."""
    assert not chat_request_validator.is_valid(
        {"model": "gpt-4.1", "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}
    )


@pytest.mark.parametrize("path", CLAUDE_CODE, ids=[p.stem for p in CLAUDE_CODE])
def test_real_claude_code_requests_become_valid_chat_requests(
    path: Path, chat_request_validator: Draft202012Validator
) -> None:
    """Each recorded Claude Code body translates to a spec-valid request that lost nothing it needs."""
    body = orjson.loads(path.read_bytes())["body"]
    out, names = messages_to_chat(body, model="gpt-4.1")
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in chat_request_validator.iter_errors(out)]
    assert errors == []
    assert set(out) <= ALLOWED_KEYS
    assert not keys_anywhere(out, schemas_under="parameters") & ANTHROPIC_ONLY
    source_tools = {t["name"]: t["input_schema"] for t in body.get("tools", [])}
    assert {
        names.to_client(t["function"]["name"]): t["function"]["parameters"] for t in out.get("tools", [])
    } == source_tools
    assert all(len(t["function"]["name"]) <= 64 for t in out.get("tools", []))
    assert out["messages"][0]["role"] == "system"


# -- property: tool messages always directly answer their calls -----------------------------

ids = st.sampled_from(["t1", "t2", "t3", "t4"])
user_blocks = st.lists(st.one_of(st.builds(tool_result, ids), st.builds(text, st.text(max_size=5))), max_size=4)
assistant_blocks = st.lists(
    st.one_of(st.builds(tool_use, ids), st.builds(text, st.text(max_size=5))),
    max_size=4,
    unique_by=lambda b: b.get("id") or id(b),
)
turns = st.lists(
    st.one_of(
        user_blocks.map(lambda b: user(*b)),
        assistant_blocks.map(lambda b: assistant(*b)),
        st.just({"role": "system", "content": "note"}),
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(turns)
def test_every_tool_call_is_answered_right_after_it(messages: list[dict[str, Any]]) -> None:
    """Whatever the history, tool messages follow their assistant turn at once, one per call, nowhere else."""
    out = chat({"messages": messages})["messages"]
    i = 0
    while i < len(out):
        message = out[i]
        assert message["role"] != "tool", f"stray tool message at {i}"
        i += 1
        if message["role"] == "assistant" and "tool_calls" in message:
            wanted = sorted(c["id"] for c in message["tool_calls"])
            answered = []
            while i < len(out) and out[i]["role"] == "tool":
                answered.append(out[i]["tool_call_id"])
                i += 1
            assert sorted(answered) == wanted


@pytest.mark.parametrize(
    ("output_config", "effort"),
    [
        (None, "medium"),
        ({"effort": "high"}, "high"),
        ({"effort": "low"}, "low"),
        ({"effort": "max"}, "high"),
        ({"effort": "bogus"}, "medium"),
    ],
)
def test_adaptive_thinking_takes_the_effort_claude_code_states(output_config: object, effort: str) -> None:
    """`thinking: adaptive` with `output_config.effort` maps to that effort, else medium."""
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "x"}],
        "thinking": {"type": "adaptive"},
    }
    if output_config is not None:
        body["output_config"] = output_config
    chat, _ = messages_to_chat(body, model="gpt-x")
    assert chat["reasoning_effort"] == effort
    assert "output_config" not in chat
