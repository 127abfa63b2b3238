"""OpenAI Chat Completions request -> Anthropic Messages request (translation.md §6.1)."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.messages_request import THINKING_BUDGETS, chat_to_messages
from tests.specs import validator

FIXTURES = Path(__file__).parents[2] / "fixtures"
OPENAI = FIXTURES / "recorded" / "openai"
OPENAI_REQUESTS = sorted(OPENAI.glob("*.request.json"))
EPHEMERAL = {"type": "ephemeral"}
PNG_1x1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
MODEL = "claude-sonnet-4-5"


def translate(body: JSON, **options: Any) -> JSON:
    """The Anthropic body, checked against the spec; json_mode is tested separately."""
    out, _ = chat_to_messages(body, model=MODEL, **options)
    validator("anthropic", "CreateMessageParams").validate(out)
    return out


def request(*messages: JSON, **fields: Any) -> JSON:
    return {"model": "gpt-4o", "messages": list(messages) or [user("hi")], **fields}


def user(content: Any) -> JSON:
    return {"role": "user", "content": content}


def assistant(content: Any = None, *calls: JSON, **extra: Any) -> JSON:
    msg: JSON = {"role": "assistant", "content": content, **extra}
    if calls:
        msg["tool_calls"] = list(calls)
    return msg


def call(call_id: str, name: str, arguments: str = "{}") -> JSON:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def tool(call_id: str, content: Any = "ok") -> JSON:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def function(name: str, **spec: Any) -> JSON:
    return {"type": "function", "function": {"name": name, **spec}}


def text(value: str) -> JSON:
    return {"type": "text", "text": value}


# -- recorded requests --------------------------------------------------------------------


@pytest.mark.parametrize("path", OPENAI_REQUESTS, ids=lambda p: p.name)
def test_recorded_openai_requests_become_valid_anthropic_requests(path: Path) -> None:
    """Every real OpenAI request in the fixtures translates into a spec-valid CreateMessageParams."""
    body = orjson.loads(path.read_bytes())
    out = translate(body)
    assert out["model"] == MODEL
    assert out["max_tokens"] == 4096
    assert out.get("stream", False) == body.get("stream", False)


def test_a_parallel_tool_call_turn_round_trips() -> None:
    """The recorded two-call answer and its two tool results become one tool_use turn and one result turn."""
    body = orjson.loads((OPENAI / "completion_parallel_tool_calls.request.json").read_bytes())
    answer = orjson.loads((OPENAI / "completion_parallel_tool_calls.json").read_bytes())
    reply = answer["choices"][0]["message"]
    body["messages"] += [
        reply,
        tool(reply["tool_calls"][0]["id"], "deleted"),
        tool(reply["tool_calls"][1]["id"], "created"),
    ]
    out = translate(body, default_max_tokens=1000)
    assert out["system"] == [text("Just call tools without asking for confirmation.")]
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_jYdIdRZHxZTn5bWCq5jlMrJi", "name": "delete_file", "input": {"path": ".env"}},
        {
            "type": "tool_use",
            "id": "call_TmlTVWQbzrXCZ4jNsCVNbNqu",
            "name": "create_file",
            "input": {"path": "test.txt"},
        },
    ]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_jYdIdRZHxZTn5bWCq5jlMrJi", "content": "deleted"},
        {"type": "tool_result", "tool_use_id": "call_TmlTVWQbzrXCZ4jNsCVNbNqu", "content": "created"},
    ]
    schema = body["tools"][0]["function"]["parameters"]
    assert out["tools"][0] == {"name": "create_file", "input_schema": schema}
    assert out["tool_choice"] == {"type": "auto"}
    assert out["max_tokens"] == 1000


# -- the conversation ---------------------------------------------------------------------


def test_system_and_developer_messages_anywhere_become_the_system_prompt() -> None:
    """They leave `messages` and join `system` in order, with part-level cache_control kept."""
    out = translate(
        request(
            {"role": "system", "content": "A"},
            user("hi"),
            {"role": "developer", "content": [{"type": "text", "text": "B", "cache_control": EPHEMERAL}]},
            assistant("yo"),
            {"role": "system", "content": "  "},
            user("bye"),
        )
    )
    assert out["system"] == [text("A"), {"type": "text", "text": "B", "cache_control": EPHEMERAL}]
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]


def test_adjacent_turns_of_one_role_merge() -> None:
    """Two user messages in a row (a system message between them removed) become one turn."""
    out = translate(request(user("a"), {"role": "system", "content": "s"}, user([text("b")])))
    assert out["messages"] == [{"role": "user", "content": [text("a"), text("b")]}]


def test_tool_messages_merge_into_one_user_turn_with_results_first() -> None:
    """Consecutive tool results share a turn, and user text sent alongside goes after them."""
    out = translate(
        request(
            user("go"),
            assistant(None, call("c1", "f"), call("c2", "g")),
            user("also this"),
            tool("c1", "one"),
            tool("c2", [text("two")]),
        )
    )
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": "one"},
        {"type": "tool_result", "tool_use_id": "c2", "content": [text("two")]},
        text("also this"),
    ]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("", {}),
        ("   ", {}),
        ('{"a": ', {"raw": '{"a": '}),
        ("[1, 2]", {"raw": "[1, 2]"}),
        ({"already": "parsed"}, {"already": "parsed"}),
    ],
)
def test_tool_call_arguments_are_parsed_or_kept_raw(arguments: Any, expected: JSON) -> None:
    """Arguments become `input`; what is not a JSON object is wrapped as {"raw": ...}."""
    tool_call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    body = request(user("x"), assistant("Sure.", tool_call), tool("c1"))
    turn = translate(body)["messages"][1]
    assert turn == {
        "role": "assistant",
        "content": [text("Sure."), {"type": "tool_use", "id": "c1", "name": "f", "input": expected}],
    }


def test_foreign_tool_call_ids_are_rewritten_the_same_way_on_both_sides() -> None:
    """Characters Anthropic refuses in ids become `_` in both tool_use and tool_result."""
    out = translate(request(user("x"), assistant(None, call("call:1.a", "f")), tool("call:1.a")))
    assert out["messages"][1]["content"][0]["id"] == "call_1_a"
    assert out["messages"][2]["content"][0]["tool_use_id"] == "call_1_a"


PDF = "JVBE"
PDF_SOURCE = {"type": "base64", "media_type": "application/pdf", "data": PDF}


@pytest.mark.parametrize(
    ("part", "block"),
    [
        pytest.param(
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1x1}"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_1x1}},
            id="data-url",
        ),
        pytest.param(
            {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,AAAA", "detail": "low"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}},
            id="jpg-means-jpeg",
        ),
        pytest.param(
            {"type": "image_url", "image_url": {"url": "https://x.org/cat.png"}},
            {"type": "image", "source": {"type": "url", "url": "https://x.org/cat.png"}},
            id="https-url",
        ),
        pytest.param(
            {"type": "image_url", "image_url": "https://x.org/a.gif"},
            {"type": "image", "source": {"type": "url", "url": "https://x.org/a.gif"}},
            id="bare-string",
        ),
        pytest.param(
            {"type": "file", "file": {"filename": "r.pdf", "file_data": "data:application/pdf;base64," + PDF}},
            {"type": "document", "title": "r.pdf", "source": PDF_SOURCE},
            id="pdf",
        ),
        pytest.param(
            {"type": "file", "file": {"file_data": "JVBE"}},
            {"type": "document", "source": PDF_SOURCE},
            id="raw-base64-pdf",
        ),
        pytest.param(
            {"type": "text", "text": "hi", "cache_control": EPHEMERAL},
            {"type": "text", "text": "hi", "cache_control": EPHEMERAL},
            id="cached-text",
        ),
    ],
)
def test_user_content_parts(part: JSON, block: JSON) -> None:
    """Text, images (data URL or link) and PDF files become Anthropic blocks."""
    assert translate(request(user([text("look"), part])))["messages"][0]["content"] == [text("look"), block]


def test_blank_text_is_dropped_and_a_blank_turn_disappears() -> None:
    """Anthropic rejects blank text blocks, so they are left out rather than sent."""
    out = translate(request(user("a"), user("   "), assistant(""), user([text(""), text("b")])))
    assert out["messages"] == [{"role": "user", "content": [text("a"), text("b")]}]


def test_thinking_blocks_echoed_by_the_client_go_first_in_the_assistant_turn() -> None:
    """Signed thinking blocks come back as thinking; unsigned ones cannot and are dropped."""
    echoed = [
        {"type": "thinking", "thinking": "plan", "signature": "sig"},
        {"type": "thinking", "thinking": "x"},
        {"type": "redacted_thinking", "data": "enc"},
    ]
    out = translate(request(user("q"), assistant("a", thinking_blocks=echoed), user("q2")))
    assert out["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "plan", "signature": "sig"},
        {"type": "redacted_thinking", "data": "enc"},
        text("a"),
    ]


def test_message_level_cache_control_marks_the_last_block() -> None:
    """LiteLLM's cache_control on a whole message lands on that message's last block."""
    out = translate(
        request({"role": "user", "content": [text("a"), text("b")], "cache_control": {"type": "ephemeral"}})
    )
    assert out["messages"][0]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in out["messages"][0]["content"][0]


def test_a_final_assistant_prefill_loses_trailing_whitespace() -> None:
    """Anthropic rejects a prefill ending in whitespace."""
    out = translate(request(user("q"), assistant("The answer is ")))
    assert out["messages"][-1]["content"] == [text("The answer is")]


# -- request-wide fields ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "max_tokens"),
    [
        ({}, 4096),
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 200, "max_tokens": 100}, 200),
        ({"max_tokens": 100, "reasoning_effort": "low"}, 1124),
        ({"max_tokens": 5000, "reasoning_effort": "high"}, 5000),
        ({"reasoning_effort": "high"}, 8192),
    ],
)
def test_max_tokens(fields: JSON, max_tokens: int) -> None:
    """max_completion_tokens wins over max_tokens, the default fills in, and thinking fits under it."""
    assert translate(request(**fields))["max_tokens"] == max_tokens


@pytest.mark.parametrize(("effort", "budget"), list(THINKING_BUDGETS.items()))
def test_reasoning_effort_sets_the_thinking_budget(effort: str, budget: int | None) -> None:
    """The documented table: none/minimal mean no thinking, low 1024, medium 2048, high 4096…"""
    out = translate(request(reasoning_effort=effort, temperature=0.2, top_p=0.5))
    if budget is None:
        assert "thinking" not in out
        assert out["temperature"] == 0.2
    else:
        assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
        assert not {"temperature", "top_p"} & set(out)  # thinking allows only the defaults
        assert out["max_tokens"] > budget


def test_thinking_is_off_for_a_tool_loop_the_client_did_not_echo_thinking_for() -> None:
    """Anthropic rejects tool results after an unsigned assistant tool turn when thinking is on."""
    loop = [user("q"), assistant(None, call("c1", "f")), tool("c1")]
    assert "thinking" not in translate(request(*loop, reasoning_effort="high"))
    signed = [{"type": "thinking", "thinking": "t", "signature": "s"}]
    echoed = [user("q"), assistant(None, call("c1", "f"), thinking_blocks=signed), tool("c1")]
    assert "thinking" in translate(request(*echoed, reasoning_effort="high"))
    finished = [*loop, assistant("done"), user("next question")]
    assert "thinking" in translate(request(*finished, reasoning_effort="high"))


@pytest.mark.parametrize(("temperature", "expected"), [(0, 0.0), (0.7, 0.7), (1.5, 1.0), (2, 1.0), (-1, 0.0)])
def test_temperature_is_clamped_to_anthropics_range(temperature: float, expected: float) -> None:
    """OpenAI allows 0..2, Anthropic 0..1."""
    assert translate(request(temperature=temperature))["temperature"] == expected


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("END", ["END"]),
        (["a", " ", "\n", "b"], ["a", "b"]),
        ([" "], None),
        (None, None),
    ],
)
def test_stop_becomes_stop_sequences_without_blank_ones(stop: Any, expected: list[str] | None) -> None:
    """A string or list; whitespace-only entries are dropped because Anthropic rejects them."""
    assert translate(request(stop=stop)).get("stop_sequences") == expected


def test_user_becomes_metadata_unless_it_looks_like_an_email() -> None:
    """An opaque `user` goes to metadata.user_id; an email is identifying and is not sent."""
    assert translate(request(user="u-123"))["metadata"] == {"user_id": "u-123"}
    assert "metadata" not in translate(request(user="ada@example.com"))


def test_unsupported_sampling_fields_are_dropped() -> None:
    """logprobs, penalties, seed, logit_bias and friends have no Anthropic equivalent."""
    out = translate(
        request(
            logprobs=True,
            top_logprobs=2,
            presence_penalty=1,
            frequency_penalty=1,
            seed=3,
            logit_bias={"1": 2},
            store=True,
            n=1,
            stream=True,
            service_tier="auto",
            stream_options={"include_usage": True},
            metadata={"k": "v"},
        )
    )
    assert set(out) == {"model", "messages", "max_tokens", "stream"}
    assert out["stream"] is True


# -- tools --------------------------------------------------------------------------------


STRING = {"type": "string"}


def test_function_tools_become_anthropic_tools() -> None:
    """name, description and parameters -> name, description, input_schema (with a default); server
    tools pass as they are, and the flat Responses-style function shape is read too."""
    out = translate(
        request(
            tools=[
                function("a", description="Does A", parameters={"type": "object", "properties": {"x": STRING}}),
                function("b", description=""),
                function("c", parameters={"properties": {}}),
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
                {"type": "function", "name": "flat", "parameters": {"type": "object"}},
            ]
        )
    )
    assert out["tools"] == [
        {"name": "a", "description": "Does A", "input_schema": {"type": "object", "properties": {"x": STRING}}},
        {"name": "b", "input_schema": {"type": "object", "properties": {}}},
        {"name": "c", "input_schema": {"type": "object", "properties": {}}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
        {"name": "flat", "input_schema": {"type": "object"}},
    ]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": []}}, None, {"type": "any"}),
        (None, None, None),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        ("auto", True, {"type": "auto"}),
    ],
)
def test_tool_choice_and_parallel_tool_calls(choice: Any, parallel: bool | None, expected: Any) -> None:
    """The §6.1 mapping; disable_parallel_tool_use never rides on `none`."""
    out = translate(request(tools=[function("f")], tool_choice=choice, parallel_tool_calls=parallel))
    assert out.get("tool_choice") == expected


def test_tool_choice_without_tools_is_dropped() -> None:
    """Anthropic refuses a tool_choice when no tools are sent."""
    assert "tool_choice" not in translate(request(tool_choice="required", parallel_tool_calls=False))


@pytest.mark.parametrize(
    ("fields", "choice"),
    [
        ({}, {"type": "tool", "name": "json_tool_call"}),
        ({"reasoning_effort": "low"}, {"type": "auto"}),
        ({"tools": [function("f")]}, None),
        ({"tools": [function("f")], "tool_choice": "none"}, {"type": "tool", "name": "json_tool_call"}),
    ],
)
def test_response_format_becomes_the_json_tool(fields: JSON, choice: JSON | None) -> None:
    """json_schema -> the json_tool_call tool, forced unless thinking is on or other tools compete."""
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}
    body = request(response_format=fmt, **fields)
    out, json_mode = chat_to_messages(body, model=MODEL)
    validator("anthropic", "CreateMessageParams").validate(out)
    assert json_mode is True
    assert out["tools"][-1] == {
        "name": "json_tool_call",
        "description": out["tools"][-1]["description"],
        "input_schema": schema,
    }
    assert out.get("tool_choice") == choice


@pytest.mark.parametrize(
    ("fmt", "json_mode"), [({"type": "json_object"}, True), ({"type": "text"}, False), (None, False)]
)
def test_json_object_and_text_formats(fmt: Any, json_mode: bool) -> None:
    """json_object asks for any object; text and no format leave the request alone."""
    out, mode = chat_to_messages(request(response_format=fmt), model=MODEL)
    assert mode is json_mode
    assert ("tools" in out) is json_mode


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": []}, "messages: expected a non-empty list"),
        ({}, "messages: expected a non-empty list"),
        ({"messages": [{"role": "system", "content": "only"}]}, "messages: expected at least one user"),
        ({"messages": ["hi"]}, "messages.0: expected a message object"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "messages.0.role: expected system"),
        (
            {"messages": [user("a"), assistant("b"), user(42)]},
            "messages.2.content: expected a string or a list of parts",
        ),
        (
            {"messages": [user([{"type": "input_audio", "input_audio": {}}])]},
            "messages.0.content.0.type: content parts",
        ),
        (
            {"messages": [user([{"type": "image_url", "image_url": {"url": "ftp://x"}}])]},
            "messages.0.content.0.image_url.url: expected an http(s) URL",
        ),
        (
            {"messages": [user([{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}])]},
            "messages.0.content.0.image_url.url: image type 'image/bmp'",
        ),
        (
            {"messages": [user([{"type": "image_url", "image_url": {"url": "data:image/png,AA"}}])]},
            "messages.0.content.0.image_url.url: expected a base64 data URL",
        ),
        (
            {"messages": [user([{"type": "file", "file": {"file_id": "file-1"}}])]},
            "messages.0.content.0.file.file_id: uploaded file ids cannot be resolved",
        ),
        (
            {"messages": [user([{"type": "file", "file": {"file_data": "data:text/csv;base64,AA"}}])]},
            "messages.0.content.0.file.file_data: only PDF files",
        ),
        (
            {"messages": [user("q"), assistant(None, {"id": "c", "function": {"arguments": "{}"}})]},
            "messages.1.tool_calls.0.function.name: expected a non-empty string",
        ),
        (
            {"messages": [user("q"), assistant(None, {"function": {"name": "f"}})]},
            "messages.1.tool_calls.0.id: expected a non-empty string",
        ),
        ({"messages": [user("q"), {"role": "tool", "content": "x"}]}, "messages.1.tool_call_id: expected"),
        (
            {"messages": [{"role": "system", "content": [{"type": "image_url"}]}, user("q")]},
            "messages.0.content.0: expected a text part",
        ),
        (request(n=2), "n: Anthropic models return one choice"),
        (request(max_tokens=0), "max_tokens: expected a positive integer"),
        (request(max_completion_tokens="9"), "max_completion_tokens: expected a positive integer"),
        (request(temperature="hot"), "temperature: expected a number"),
        (request(stop=["a", 1]), "stop.1: expected a string"),
        (request(reasoning_effort="extreme"), "reasoning_effort: expected one of none, minimal, low"),
        (request(tools={"f": 1}), "tools: expected a list"),
        (request(functions=[{"name": "f"}]), "functions: the deprecated functions API is not supported"),
        (
            request(tools=[{"type": "function", "function": {"description": "no name"}}]),
            "tools.0.function.name: expected a non-empty string",
        ),
        (request(tools=[function("f"), {"type": "custom", "custom": {"name": "g"}}]), "tools.1.type: only function"),
        (request(tools=[function("f", parameters="x")]), "tools.0.function.parameters: expected a JSON schema"),
        (request(tool_choice="sometimes"), "tool_choice: expected auto, required, none"),
        (request(response_format={"type": "xml"}), "response_format.type: expected text, json_object or json_schema"),
        (
            request(response_format={"type": "json_schema", "json_schema": {"schema": {"type": "array"}}}),
            "response_format.json_schema.schema: expected an object schema",
        ),
    ],
)
def test_bad_input_names_the_field(body: JSON, message: str) -> None:
    """Each refusal is an InvalidRequest whose message starts with the path of the bad field."""
    with pytest.raises(InvalidRequest) as caught:
        chat_to_messages(body, model=MODEL)
    assert caught.value.message.startswith(message), caught.value.message
    assert caught.value.http_status == 400


def test_the_input_body_is_not_modified() -> None:
    """Translation builds a new body; the client's dict is untouched (it may be logged or retried)."""
    body = request(
        {"role": "system", "content": "s"},
        user("q"),
        assistant("a ", call("c", "f")),
        tool("c"),
        tools=[function("f", parameters={"properties": {}})],
        parallel_tool_calls=False,
        response_format={"type": "json_object"},
    )
    before = copy.deepcopy(body)
    translate(body)
    assert body == before


# -- properties ---------------------------------------------------------------------------

_messages = st.lists(
    st.one_of(
        st.builds(user, st.one_of(st.text(max_size=8), st.lists(st.builds(text, st.text(max_size=5)), max_size=3))),
        st.builds(lambda c: {"role": "system", "content": c}, st.text(max_size=5)),
        st.builds(lambda c: assistant(c), st.one_of(st.none(), st.text(max_size=5))),
        st.builds(lambda i: assistant(None, call(f"c{i}", "f", '{"k": 1}')), st.integers(0, 3)),
        st.builds(lambda i: tool(f"c{i}", "r"), st.integers(0, 3)),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=200, deadline=None)
@given(_messages)
def test_any_conversation_translates_to_alternating_non_blank_turns(messages: list[JSON]) -> None:
    """Roles alternate, no text block is blank, results open their turn, and the body fits the spec."""
    try:
        out, _ = chat_to_messages({"messages": messages}, model=MODEL)
    except InvalidRequest as err:
        if not err.message.startswith("messages: expected at least one"):  # all of it was blank or system
            raise
        return
    validator("anthropic", "CreateMessageParams").validate(out)
    roles = [m["role"] for m in out["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles))
    for turn in out["messages"]:
        kinds = [block["type"] for block in turn["content"]]
        assert kinds == sorted(kinds, key=lambda k: k != "tool_result") or turn["role"] == "assistant"
        assert all(block["text"].strip() for block in turn["content"] if block["type"] == "text")
