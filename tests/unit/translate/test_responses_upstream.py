"""Anthropic Messages request -> OpenAI Responses request, and a Responses `response` -> Message."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ccproxy_core.core.errors import InvalidRequest, UpstreamError
from ccproxy_core.translate.chat_request import MISSING_RESULT, strip_synthetic_thinking
from ccproxy_core.translate.responses_upstream import (
    ENCRYPTED_REASONING,
    messages_to_responses,
    response_to_message,
)
from ccproxy_core.translate.responses_upstream_input import REASONING_SIGNATURE_PREFIX, reasoning_signature

FIXTURES = Path(__file__).parents[2] / "fixtures"
CLAUDE_CODE = sorted((FIXTURES / "claude-code").glob("*.json"))
CODEX = FIXTURES / "codex"
PNG = "iVBORw0KGgo="
MCP_70 = "mcp__atlassian_confluence__get_confluence_page_footer_comments_with_ids"  # 71 chars


def _one_of_as_any(node: Any) -> Any:
    if isinstance(node, list):
        return [_one_of_as_any(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {("anyOf" if key == "oneOf" else key): _one_of_as_any(value) for key, value in node.items()}


@functools.cache
def responses_validator(schema: str = "CreateResponse") -> Draft202012Validator:
    """The OpenAI spec's schema with `oneOf` read as `anyOf`.

    The spec's unions are OpenAPI `oneOf` + `discriminator`: the `type` picks the branch. Read as
    plain JSON Schema, a user message matches both `EasyInputMessage` and `InputMessage` and so
    fails `oneOf`; `anyOf` is what the discriminator means here."""
    document = _one_of_as_any(orjson.loads((FIXTURES / "specs" / "openai-openapi.json").read_bytes()))
    registry: Registry[Any] = Registry().with_resource(
        "urn:openai", Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": f"urn:openai#/components/schemas/{schema}"}, registry=registry)


def spec_errors(body: Any, schema: str = "CreateResponse") -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in responses_validator(schema).iter_errors(body)]


def translate(body: dict[str, Any]) -> dict[str, Any]:
    body = {"model": "claude-x", "max_tokens": 100, **body}
    out = messages_to_responses(body, model="gpt-5").body
    assert spec_errors(out) == []
    return out


def user(*blocks: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


def assistant(*blocks: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(tool_id: str, name: str = "Bash", **tool_input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}


def tool_result(tool_id: str, content: Any = "ok", **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": content, **extra}


def image(source: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "image", "source": source or {"type": "base64", "media_type": "image/png", "data": PNG}}


def reasoning_output(
    item_id: str = "rs_1", encrypted: str = "gAAAAB-opaque==", summary: str = "Plan."
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": summary}] if summary else [],
        "encrypted_content": encrypted,
    }


def response(*output: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "id": "resp_abc123",
        "object": "response",
        "status": "completed",
        "output": list(output),
        "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5},
        **fields,
    }


def message_output(*texts: str) -> dict[str, Any]:
    parts = [{"type": "output_text", "text": t, "annotations": []} for t in texts]
    return {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant", "content": parts}


def call_output(call_id: str = "call_1", name: str = "Bash", arguments: str = '{"cmd":"ls"}') -> dict[str, Any]:
    return {
        "id": "fc_1",
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


# -- system, messages, content ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "instructions"),
    [("Be brief.", "Be brief."), ([text("One."), text(""), text("Two.")], "One.\n\nTwo.")],
)
def test_system_becomes_instructions(system: Any, instructions: str) -> None:
    """`system`, a string or text blocks, becomes `instructions` (blocks joined by a blank line)."""
    out = translate({"system": system, "messages": [user(text("hi"))]})
    assert out["instructions"] == instructions


def test_user_text_and_images_become_one_message_item() -> None:
    """User text and images (base64 as a data: URL, or a URL) are input parts of one message item."""
    url = {"type": "url", "url": "https://example.com/cat.png"}
    out = translate({"messages": [user(text("look"), image(), image(url))]})
    assert out["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
                {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "auto"},
            ],
        }
    ]


def test_a_string_content_is_a_text_part() -> None:
    """A message whose content is a string is one input_text part."""
    out = translate({"messages": [{"role": "user", "content": "hello"}]})
    assert out["input"] == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}]


def test_documents_become_files_or_text() -> None:
    """A base64 PDF is an input_file with a data URL, a URL document a file_url, a text document text."""
    pdf = {
        "type": "document",
        "title": "r.pdf",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
    }
    linked = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
    plain = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}}
    parts = translate({"messages": [user(pdf, linked, plain)]})["input"][0]["content"]
    assert parts == [
        {"type": "input_file", "filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBE"},
        {"type": "input_file", "file_url": "https://example.com/a.pdf"},
        {"type": "input_text", "text": "notes"},
    ]


def test_assistant_text_is_a_message_with_string_content() -> None:
    """Assistant text goes back as a message item with string content (spec-valid without an invented id)."""
    out = translate({"messages": [user(text("q")), assistant(text("a"), text("b")), user(text("q2"))]})
    assert out["input"][1] == {"type": "message", "role": "assistant", "content": "ab"}


def test_system_messages_inside_the_conversation_become_developer_messages() -> None:
    """A mid-conversation system message (Claude Code sends them) is a developer message, kept behind tool outputs."""
    messages = [
        user(text("q")),
        assistant(tool_use("t1", cmd="ls")),
        {"role": "system", "content": "reminder"},
        user(tool_result("t1")),
    ]
    kinds = [(i["type"], i.get("role")) for i in translate({"messages": messages})["input"]]
    assert kinds == [
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "developer"),
    ]


# -- tool calls and results -------------------------------------------------------------------


def test_tool_use_and_result_become_call_and_output() -> None:
    """tool_use -> function_call (arguments as a JSON string); tool_result -> function_call_output, before user text."""
    messages = [
        user(text("list files")),
        assistant(text("sure"), tool_use("toolu_1", cmd="ls -la")),
        user(text("and then?"), tool_result("toolu_1", [text("a.txt"), text("b.txt")])),
    ]
    out = translate({"messages": messages})
    assert out["input"][1:] == [
        {"type": "message", "role": "assistant", "content": "sure"},
        {"type": "function_call", "call_id": "toolu_1", "name": "Bash", "arguments": '{"cmd":"ls -la"}'},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "a.txt\nb.txt"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and then?"}]},
    ]


def test_tool_result_images_travel_as_output_parts_and_errors_say_so() -> None:
    """A result holding images is an output list of parts; an `is_error` result starts with "Error: "."""
    messages = [
        user(text("q")),
        assistant(tool_use("t1"), tool_use("t2")),
        user(tool_result("t1", [text("shot"), image()]), tool_result("t2", "boom", is_error=True)),
    ]
    outputs = [i for i in translate({"messages": messages})["input"] if i["type"] == "function_call_output"]
    assert outputs[0]["output"] == [
        {"type": "input_text", "text": "shot"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
    ]
    assert outputs[1]["output"] == "Error: boom"


def test_every_call_gets_an_output_and_orphan_outputs_become_text() -> None:
    """A call without a result gets the placeholder; a result without its call becomes user text."""
    messages = [
        user(text("q")),
        assistant(tool_use("t1"), tool_use("t2")),
        user(tool_result("t1"), tool_result("zz", "late")),
    ]
    items = translate({"messages": messages})["input"]
    outputs = {i["call_id"]: i["output"] for i in items if i["type"] == "function_call_output"}
    assert outputs == {"t1": "ok", "t2": MISSING_RESULT}
    assert items[-1]["content"] == [{"type": "input_text", "text": "[output of tool call zz]\nlate"}]


def test_a_call_at_the_end_is_answered_too() -> None:
    """A conversation ending on a call (a prefill) still answers it, since OpenAI requires that."""
    items = translate({"messages": [user(text("q")), assistant(tool_use("t1"))]})["input"]
    assert items[-1] == {"type": "function_call_output", "call_id": "t1", "output": MISSING_RESULT}


def test_long_tool_ids_are_shortened_the_same_on_both_sides() -> None:
    """OpenAI takes call ids up to 64 characters: a longer id maps to one stable shorter id for call and output."""
    long_id = "toolu_" + "x" * 80
    items = translate({"messages": [user(text("q")), assistant(tool_use(long_id)), user(tool_result(long_id))]})[
        "input"
    ]
    assert items[1]["call_id"] == items[2]["call_id"]
    assert len(items[1]["call_id"]) <= 64


def test_tools_become_function_tools_and_server_tools_are_named_as_dropped() -> None:
    """Custom tools -> function tools with `strict: false`; server tools are dropped and listed."""
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [user(text("q"))],
        "tools": [
            {"name": "Read", "description": "Read a file", "input_schema": {"type": "object", "properties": {}}},
            {"type": "web_search_20250305", "name": "web_search"},
            {"type": "custom", "name": "NoSchema"},
        ],
    }
    result = messages_to_responses(body, model="gpt-5")
    assert result.body["tools"] == [
        {
            "type": "function",
            "name": "Read",
            "description": "Read a file",
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        },
        {"type": "function", "name": "NoSchema", "parameters": {"type": "object", "properties": {}}, "strict": False},
    ]
    assert result.dropped == ("tools.1 (web_search_20250305)",)


def test_unsafe_tool_names_are_renamed_and_restored() -> None:
    """A name OpenAI refuses is renamed in tools, choice and history, and restored in the answer."""
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [user(text("q")), assistant(tool_use("t1", MCP_70)), user(tool_result("t1"))],
        "tools": [{"name": MCP_70, "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": MCP_70},
    }
    result = messages_to_responses(body, model="gpt-5")
    upstream = result.body["tools"][0]["name"]
    assert upstream != MCP_70 and len(upstream) <= 64
    assert result.body["tool_choice"] == {"type": "function", "name": upstream}
    assert result.body["input"][1]["name"] == upstream
    message = response_to_message(response(call_output(name=upstream)), model="m", names=result.names)
    assert message["content"][0]["name"] == MCP_70


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        ({"type": "tool", "name": "Read"}, {"type": "function", "name": "Read"}, None),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
        ({"type": "tool", "name": "web_search"}, None, None),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any, parallel: bool | None) -> None:
    """tool_choice auto/any/none/tool -> auto/required/none/function; serial calls -> parallel_tool_calls false."""
    out = translate(
        {
            "messages": [user(text("q"))],
            "tools": [
                {"name": "Read", "input_schema": {"type": "object"}},
                {"type": "web_search_20250305", "name": "web_search"},
            ],
            "tool_choice": choice,
        }
    )
    assert out.get("tool_choice") == expected
    assert out.get("parallel_tool_calls") == parallel


def test_tool_choice_without_tools_is_left_out() -> None:
    """OpenAI refuses a tool_choice without tools, so none is sent."""
    assert "tool_choice" not in translate({"messages": [user(text("q"))], "tool_choice": {"type": "any"}})


# -- thinking and reasoning -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("thinking", "output_config", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, None, "low"),
        ({"type": "enabled", "budget_tokens": 4000}, None, "medium"),
        ({"type": "enabled", "budget_tokens": 32000}, None, "high"),
        ({"type": "adaptive"}, None, "medium"),
        ({"type": "adaptive"}, {"effort": "low"}, "low"),
    ],
)
def test_thinking_becomes_a_reasoning_effort_with_encrypted_reasoning(
    thinking: dict[str, Any], output_config: dict[str, Any] | None, effort: str
) -> None:
    """thinking (budget or adaptive + output_config.effort) -> reasoning.effort by the one table, and encrypted reasoning is asked for."""
    body: dict[str, Any] = {"messages": [user(text("q"))], "thinking": thinking}
    if output_config:
        body["output_config"] = output_config
    out = translate(body)
    assert out["reasoning"] == {"effort": effort, "summary": "auto"}
    assert out["include"] == [ENCRYPTED_REASONING]
    assert "output_config" not in out


def test_without_thinking_no_reasoning_is_asked_for() -> None:
    """No thinking (or disabled thinking) sends neither `reasoning` nor `include`."""
    for extra in ({}, {"thinking": {"type": "disabled"}}):
        out = translate({"messages": [user(text("q"))], **extra})
        assert "reasoning" not in out and "include" not in out


def test_a_model_without_reasoning_gets_no_reasoning_fields() -> None:
    """`reasoning=False` (a model that refuses `reasoning`) sends thinking requests without reasoning, sampling kept."""
    body = {"model": "m", "max_tokens": 50, "messages": [user(text("q"))], "temperature": 0.2}
    out = messages_to_responses({**body, "thinking": {"type": "adaptive"}}, model="gpt-4.1", reasoning=False)
    assert "reasoning" not in out.body and "include" not in out.body
    assert out.body["temperature"] == 0.2 and out.dropped == ()


def test_thinking_from_a_reasoning_item_goes_back_as_that_item() -> None:
    """A thinking block whose signature ccproxy made from a reasoning item restores the item; other thinking is dropped."""
    ours = {"type": "thinking", "thinking": "Plan.", "signature": reasoning_signature(reasoning_output())}
    anthropic = {"type": "thinking", "thinking": "real", "signature": "EuYBCkQYAiJA"}
    redacted = {"type": "redacted_thinking", "data": "abc"}
    messages = [user(text("q")), assistant(ours, anthropic, redacted, text("a")), user(text("q2"))]
    items = translate({"messages": messages})["input"]
    assert items[1] == {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "Plan."}],
        "encrypted_content": "gAAAAB-opaque==",
    }
    assert [i["type"] for i in items] == ["message", "reasoning", "message", "message"]


def test_a_reasoning_signature_without_encrypted_content_or_damaged_is_dropped() -> None:
    """Without encrypted content (or with a damaged signature) the item cannot be replayed, so it is left out."""
    empty = {"type": "thinking", "thinking": "t", "signature": reasoning_signature(reasoning_output(encrypted=""))}
    broken = {"type": "thinking", "thinking": "t", "signature": REASONING_SIGNATURE_PREFIX + "!!notbase64"}
    items = translate({"messages": [user(text("q")), assistant(empty, broken, text("a")), user(text("q2"))]})["input"]
    assert [i["type"] for i in items] == ["message", "message", "message"]


def test_reasoning_that_ends_a_turn_is_left_out() -> None:
    """OpenAI refuses a reasoning item without the item that followed it: a turn ending in reasoning loses it."""
    ours = {"type": "thinking", "thinking": "t", "signature": reasoning_signature(reasoning_output())}
    items = translate({"messages": [user(text("q")), assistant(ours), user(text("go on"))]})["input"]
    assert [i["type"] for i in items] == ["message", "message"]
    items = translate({"messages": [user(text("q")), assistant(ours, tool_use("t1")), user(tool_result("t1"))]})[
        "input"
    ]
    assert [i["type"] for i in items] == ["message", "reasoning", "function_call", "function_call_output"]


def test_reasoning_thinking_is_stripped_before_real_anthropic() -> None:
    """The signature is a ccproxy-synthetic one, so the Anthropic path strips the block like other made-up thinking."""
    block = {"type": "thinking", "thinking": "t", "signature": reasoning_signature(reasoning_output())}
    body = {"messages": [user(text("q")), assistant(block, text("a"))]}
    stripped = strip_synthetic_thinking(body)
    assert stripped is not None and stripped["messages"][1]["content"] == [text("a")]


# -- scalar fields ----------------------------------------------------------------------------


def test_max_tokens_becomes_max_output_tokens_at_least_16() -> None:
    """max_tokens -> max_output_tokens, raised to OpenAI's minimum of 16."""
    assert translate({"messages": [user(text("q"))], "max_tokens": 2000})["max_output_tokens"] == 2000
    assert translate({"messages": [user(text("q"))], "max_tokens": 1})["max_output_tokens"] == 16


def test_sampling_passes_unless_reasoning_and_stop_sequences_are_named_as_dropped() -> None:
    """temperature/top_p pass through; with reasoning on they are dropped; stop_sequences and top_k are dropped and named."""
    body = {"model": "m", "max_tokens": 50, "messages": [user(text("q"))], "temperature": 0.3, "top_p": 0.9}
    plain = messages_to_responses({**body, "stop_sequences": ["END"], "top_k": 5}, model="gpt-5")
    assert (plain.body["temperature"], plain.body["top_p"]) == (0.3, 0.9)
    assert plain.dropped == ("stop_sequences", "top_k")
    assert "stop" not in plain.body and "stop_sequences" not in plain.body
    thinking = messages_to_responses({**body, "thinking": {"type": "enabled", "budget_tokens": 2048}}, model="gpt-5")
    assert "temperature" not in thinking.body and "top_p" not in thinking.body
    assert thinking.dropped == ("temperature", "top_p")


def test_user_id_becomes_a_safety_identifier_and_cache_key() -> None:
    """metadata.user_id -> safety_identifier and prompt_cache_key (the spec's replacements for `user`), hashed past 64 characters."""
    short = translate({"messages": [user(text("q"))], "metadata": {"user_id": "u-1"}})
    assert (short["safety_identifier"], short["prompt_cache_key"]) == ("u-1", "u-1")
    long_id = "user_" + "a" * 64 + "_session_1"
    out = translate({"messages": [user(text("q"))], "metadata": {"user_id": long_id}})
    assert out["safety_identifier"] == out["prompt_cache_key"] == hashlib.sha256(long_id.encode()).hexdigest()
    assert "metadata" not in out and "user" not in out


def test_store_is_always_false_and_stream_passes() -> None:
    """ccproxy keeps nothing upstream (`store: false`); `stream` is passed as given."""
    out = translate({"messages": [user(text("q"))], "stream": True})
    assert out["store"] is False and out["stream"] is True
    assert "stream" not in translate({"messages": [user(text("q"))]})


def test_only_known_keys_go_out() -> None:
    """Anthropic-only fields (context_management, output_config, cache_control, top_k) never leak."""
    body = {
        "messages": [user({"type": "text", "text": "q", "cache_control": {"type": "ephemeral"}})],
        "context_management": {"edits": []},
        "output_config": {"effort": "high"},
        "top_k": 3,
        "service_tier": "auto",
    }
    out = translate(body)
    assert set(out) == {"model", "input", "max_output_tokens", "store"}
    assert out["input"][0]["content"] == [{"type": "input_text", "text": "q"}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
        ({"messages": [user({"type": "text"})]}, "messages.0.content.0.text"),
        ({"messages": [user(text("q")), assistant({"type": "tool_use", "id": "t"})]}, "messages.1.content.0.name"),
        ({"messages": [user(text("q"))], "tools": [{"input_schema": {}}]}, "tools.0.name"),
        ({"messages": [user(text("q"))], "max_tokens": "many"}, "max_tokens"),
        ({"messages": [user(text("q"))], "tools": [{"name": "a"}], "tool_choice": {"type": "x"}}, "tool_choice.type"),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], field: str) -> None:
    """Malformed input raises InvalidRequest naming the JSON path."""
    with pytest.raises(InvalidRequest) as caught:
        messages_to_responses({"model": "m", "max_tokens": 10, **body}, model="gpt-5")
    assert caught.value.message.startswith(field + ":")


# -- real Claude Code requests against the spec ----------------------------------------------


def test_spec_validator_has_teeth() -> None:
    """The spec check refuses an Anthropic-shaped part and an assistant output_text without id/status."""
    assert spec_errors(
        {"model": "x", "input": [{"type": "message", "role": "user", "content": [{"type": "tool_result"}]}]}
    )
    bad = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]}
    assert spec_errors({"model": "x", "input": [bad]})


@pytest.mark.parametrize("path", CLAUDE_CODE, ids=[p.stem for p in CLAUDE_CODE])
def test_real_claude_code_requests_become_valid_responses_requests(path: Path) -> None:
    """Each recorded Claude Code body translates to a spec-valid Responses request with every tool kept."""
    body = orjson.loads(path.read_bytes())["body"]
    result = messages_to_responses(body, model="gpt-5")
    assert spec_errors(result.body) == []
    assert [result.names.to_client(t["name"]) for t in result.body.get("tools", [])] == [
        t["name"] for t in body.get("tools", []) if t.get("type") in (None, "custom")
    ]


# -- property: any valid Messages body gives a valid Responses body ---------------------------

ids = st.sampled_from(["t1", "t2", "t3"])
words = st.text(st.characters(codec="utf-8"), max_size=6)
user_block = st.one_of(
    st.builds(text, words),
    st.builds(tool_result, ids, st.one_of(words, st.lists(st.builds(text, words), max_size=2))),
    st.just(image()),
)
assistant_block = st.one_of(
    st.builds(text, words),
    st.builds(lambda i: tool_use(i, cmd="x"), ids),
    st.builds(
        lambda e, t: {
            "type": "thinking",
            "thinking": t,
            "signature": reasoning_signature(reasoning_output(encrypted=e)),
        },
        st.text(min_size=1, max_size=8),
        words,
    ),
)
conversation = st.lists(
    st.one_of(
        st.lists(user_block, min_size=1, max_size=3).map(lambda b: user(*b)),
        st.lists(assistant_block, min_size=1, max_size=3, unique_by=lambda b: b.get("id") or id(b)).map(
            lambda b: assistant(*b)
        ),
        st.builds(lambda w: {"role": "system", "content": w}, words),
    ),
    min_size=1,
    max_size=6,
)
extras = st.fixed_dictionaries(
    {},
    optional={
        "system": words,
        "temperature": st.floats(0, 1),
        "thinking": st.sampled_from([{"type": "enabled", "budget_tokens": 2048}, {"type": "adaptive"}]),
        "stop_sequences": st.lists(words, max_size=2),
        "tool_choice": st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "tool", "name": "Bash"}]),
        "stream": st.booleans(),
        "metadata": st.builds(lambda w: {"user_id": w}, words),
    },
)


@settings(max_examples=150, deadline=None)
@given(conversation, extras)
def test_any_messages_body_gives_a_valid_responses_body(messages: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    """Whatever the conversation, the body validates and each call is answered once, after it."""
    body = {
        "model": "m",
        "max_tokens": 64,
        "messages": messages,
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        **extra,
    }
    out = messages_to_responses(body, model="gpt-5").body
    assert spec_errors(out) == []
    open_calls: list[str] = []
    answered: list[str] = []
    for item in out["input"]:
        if item["type"] == "function_call":
            open_calls.append(item["call_id"])
        elif item["type"] == "function_call_output":
            assert item["call_id"] in open_calls
            open_calls.remove(item["call_id"])
            answered.append(item["call_id"])
        elif open_calls and item["type"] == "message":
            pytest.fail(f"message between a call and its output: {out['input']}")
    assert open_calls == []


# -- response -> Message ----------------------------------------------------------------------


def test_text_output_becomes_text_blocks() -> None:
    """Each output_text part is a text block; a refusal part is text too; empty parts are left out."""
    refusal = {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}
    message = response_to_message(response(message_output("Hello", ""), refusal), model="claude-x")
    assert message["content"] == [text("Hello"), text("No.")]
    assert message["stop_reason"] == "end_turn"
    assert message["model"] == "claude-x" and message["id"] == "msg_abc123"


def test_function_call_becomes_tool_use() -> None:
    """A function_call is a tool_use with parsed input; the stop reason is tool_use."""
    message = response_to_message(response(message_output("Running."), call_output()), model="m")
    assert message["content"][1] == {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"cmd": "ls"}}
    assert message["stop_reason"] == "tool_use"


def test_reasoning_becomes_signed_thinking() -> None:
    """A reasoning item is a thinking block (summary text) whose signature carries the item; empty ones vanish."""
    two_parts = reasoning_output()
    two_parts["summary"].append({"type": "summary_text", "text": "Then act."})
    raw = {"id": "rs_2", "type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "raw"}]}
    bare = {"id": "rs_3", "type": "reasoning", "summary": []}
    message = response_to_message(response(two_parts, raw, bare, message_output("ok")), model="m")
    blocks = message["content"]
    assert [b["type"] for b in blocks] == ["thinking", "thinking", "text"]
    assert blocks[0]["thinking"] == "Plan.\n\nThen act."
    assert blocks[0]["signature"].startswith(REASONING_SIGNATURE_PREFIX)
    assert blocks[1]["thinking"] == "raw"


@pytest.mark.parametrize(
    ("status", "details", "stop"),
    [
        ("incomplete", {"reason": "max_output_tokens"}, "max_tokens"),
        ("incomplete", {"reason": "content_filter"}, "refusal"),
        ("completed", None, "end_turn"),
    ],
)
def test_status_maps_to_stop_reason(status: str, details: Any, stop: str) -> None:
    """incomplete max_output_tokens -> max_tokens, content_filter -> refusal, completed -> end_turn."""
    message = response_to_message(response(message_output("x"), status=status, incomplete_details=details), model="m")
    assert message["stop_reason"] == stop


def test_a_call_cut_by_the_limit_is_not_tool_use() -> None:
    """A response cut at max_output_tokens is max_tokens even with a call in it (its arguments may be cut)."""
    cut = response(
        call_output(arguments='{"cmd": "l'), status="incomplete", incomplete_details={"reason": "max_output_tokens"}
    )
    message = response_to_message(cut, model="m")
    assert message["stop_reason"] == "max_tokens"
    assert message["content"][0]["input"] == {"cmd": "l"}


def test_usage_splits_cached_tokens_out() -> None:
    """input_tokens = input - cached - cache writes; cached -> cache_read_input_tokens."""
    usage = {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 10},
        "output_tokens": 7,
    }
    message = response_to_message(response(message_output("x"), usage=usage), model="m")
    assert message["usage"] == {
        "input_tokens": 30,
        "output_tokens": 7,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 60,
    }


def test_hosted_calls_are_left_out_and_an_empty_answer_has_one_empty_text() -> None:
    """Hosted tool calls are not the client's; an answer with nothing left is one empty text block."""
    search = {"id": "ws_1", "type": "web_search_call", "status": "completed", "action": {"type": "search"}}
    message = response_to_message(response(search), model="m")
    assert message["content"] == [text("")]


@pytest.mark.parametrize(
    ("error", "status", "etype"),
    [
        ({"code": "rate_limit_exceeded", "message": "slow down"}, 429, "rate_limit_error"),
        ({"code": "server_error", "message": "oops"}, 500, "api_error"),
        ({"code": "invalid_prompt", "message": "bad"}, 400, "invalid_request_error"),
        (None, 502, "api_error"),
    ],
)
def test_a_failed_response_raises_the_mapped_error(error: Any, status: int, etype: str) -> None:
    """A `failed` response is an UpstreamError with the code's status and Anthropic type."""
    with pytest.raises(UpstreamError) as caught:
        response_to_message(response(status="failed", error=error), model="m")
    assert (caught.value.http_status, caught.value.type) == (status, etype)
    assert caught.value.message


# -- round trips ------------------------------------------------------------------------------


def _codex_completed(name: str) -> dict[str, Any]:
    """The `response` of a recorded stream's response.completed event."""
    for chunk in (CODEX / name).read_text().split("\n\n"):
        if chunk.startswith("event: response.completed"):
            data: dict[str, Any] = orjson.loads(chunk.split("data: ", 1)[1])["response"]
            return data
    raise AssertionError(name)


def test_function_call_round_trip() -> None:
    """A recorded function_call answer -> tool_use; sent back with its result -> the same call and its output."""
    first = response_to_message(_codex_completed("exec-shell-0001.response.sse"), model="m")
    call = first["content"][0]
    assert call["name"] == "exec_command" and call["input"] == {"cmd": "echo codex-ran-$((6*7))"}
    messages = [
        user(text("run it")),
        {"role": "assistant", "content": first["content"]},
        user(tool_result(call["id"], "codex-ran-42")),
    ]
    items = translate({"messages": messages, "tools": [{"name": "exec_command", "input_schema": {"type": "object"}}]})[
        "input"
    ]
    assert items[1] == {
        "type": "function_call",
        "call_id": "call_a4718ec2da214bd0801863f3",
        "name": "exec_command",
        "arguments": '{"cmd":"echo codex-ran-$((6*7))"}',
    }
    assert items[2] == {
        "type": "function_call_output",
        "call_id": "call_a4718ec2da214bd0801863f3",
        "output": "codex-ran-42",
    }
    final = response_to_message(_codex_completed("exec-shell-0002.response.sse"), model="m")
    assert final["content"][0]["text"].endswith("codex-ran-42") and final["stop_reason"] == "end_turn"


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=300), st.from_regex(r"rs_[0-9a-f]{1,40}", fullmatch=True), st.text(max_size=40))
def test_reasoning_round_trip_keeps_encrypted_content_exactly(encrypted: str, item_id: str, summary: str) -> None:
    """reasoning item -> thinking block -> next request: the same id and encrypted_content, byte for byte."""
    item = reasoning_output(item_id=item_id, encrypted=encrypted, summary=summary)
    message = response_to_message(response(item, call_output()), model="m")
    messages = [user(text("q")), {"role": "assistant", "content": message["content"]}, user(tool_result("call_1"))]
    items = translate({"messages": messages})["input"]
    assert items[1]["type"] == "reasoning"
    assert items[1]["encrypted_content"] == encrypted
    assert items[1]["id"] == item_id
    assert items[1]["summary"] == ([{"type": "summary_text", "text": summary}] if summary else [])


# -- property: hostile input is refused with a field name, never a crash ----------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=False), st.text(max_size=4))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=8,
)
BLOCK_TYPES = [
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "server_tool_use",
]
BLOCK_KEYS = [
    "text",
    "source",
    "id",
    "name",
    "input",
    "tool_use_id",
    "content",
    "is_error",
    "thinking",
    "signature",
    "title",
]
loose_block = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    st.one_of(st.sampled_from(BLOCK_TYPES), json_values),
    st.dictionaries(st.sampled_from(BLOCK_KEYS), json_values, max_size=4),
)
# Mostly well-formed at the top, so the generated values get deep into the translator.
loose_message = st.fixed_dictionaries(
    {
        "role": st.one_of(st.sampled_from(["user", "assistant", "system"]), json_values),
        "content": st.one_of(st.lists(st.one_of(loose_block, loose_block, json_values), max_size=4), json_values),
    }
)
loose_body = st.fixed_dictionaries(
    {"messages": st.one_of(st.lists(loose_message, max_size=4), st.lists(loose_message, max_size=4), json_values)},
    optional=dict.fromkeys(
        (
            "system",
            "tools",
            "tool_choice",
            "thinking",
            "output_config",
            "max_tokens",
            "temperature",
            "top_p",
            "stop_sequences",
            "metadata",
            "stream",
        ),
        json_values,
    ),
)


@settings(max_examples=300, deadline=None)
@given(loose_body)
def test_hostile_requests_are_refused_by_name_or_translated_validly(body: dict[str, Any]) -> None:
    """Any JSON shaped loosely like a Messages body either translates to a spec-valid request or is
    refused with InvalidRequest naming a field; nothing else escapes (no traceback reaches a client)."""
    try:
        out = messages_to_responses(body, model="gpt-5").body
    except InvalidRequest as err:
        refusal = err.message
    else:
        assert spec_errors(out) == []
        return
    assert refusal.split(":", 1)[0].split(".")[0] in {*body, "body", "messages"}  # it names a field


@pytest.mark.parametrize(("given", "sent"), [(5.0, 1.0), (-1, 0.0), (float("inf"), 1.0), (0.4, 0.4)])
def test_sampling_is_clamped_to_the_range_both_accept(given: float, sent: float) -> None:
    """temperature / top_p outside Anthropic's 0..1 are clamped into it (OpenAI's range holds it)."""
    out = translate({"messages": [user(text("q"))], "temperature": given, "top_p": given})
    assert out["temperature"] == sent and out["top_p"] == sent


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["id", "status", "output", "usage", "error", "incomplete_details"]), json_values)
)
def test_hostile_responses_give_a_message_or_an_upstream_error(resp: dict[str, Any]) -> None:
    """Any JSON shaped loosely like a `response` gives a Message or an UpstreamError, nothing else."""
    try:
        message = response_to_message(resp, model="m")
    except UpstreamError:
        return
    assert message["content"] and message["stop_reason"] in ("end_turn", "tool_use", "max_tokens", "refusal")
