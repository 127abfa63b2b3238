"""Provider presets: the table of per-provider facts and the one rewrite that applies them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ccproxy_core.providers.presets import PRESETS, key_headers, preset_for, preset_for_provider, upstream_url
from ccproxy_core.providers.rules import apply_preset, takes_reasoning
from ccproxy_core.providers.schemas import clean_schema

FIXTURES = Path(__file__).parents[2] / "fixtures" / "claude-code"
GEMINI_KEYWORDS = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
}


def claude_code_tools() -> list[dict[str, Any]]:
    """The 24 tools of a real Claude Code request, as the translator hands them to a preset."""
    body = json.loads((FIXTURES / "text-0001.json").read_text())["body"]
    return [
        {
            "type": "function",
            "function": {"name": t["name"], "description": t.get("description", ""), "parameters": t["input_schema"]},
        }
        for t in body["tools"]
    ]


def chat_request(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 32000,
        "stream": True,
        **extra,
    }


def schema_nodes(schema: Any) -> list[dict[str, Any]]:
    """Every schema node, walking properties by value so that field names are never visited."""
    if not isinstance(schema, dict):
        return []
    found = [schema]
    for name in schema.get("properties", {}):
        found += schema_nodes(schema["properties"][name])
    found += schema_nodes(schema.get("items"))
    for branch in schema.get("anyOf", []):
        found += schema_nodes(branch)
    return found


def tool(name: str, request: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(t["function"] for t in request["tools"] if t["function"]["name"] == name)
    return found


# --- each preset's rewriting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "model", "extra", "expected"),
    [
        # DeepSeek: Claude Code's 32000 is refused by deepseek-chat ("valid range is [1, 8192]")
        ("deepseek", "deepseek-chat", {}, {"max_tokens": 8192}),
        ("deepseek", "deepseek-reasoner", {}, {"max_tokens": 32000}),
        ("deepseek", "deepseek-reasoner", {"max_tokens": 100_000}, {"max_tokens": 65536}),
        ("openai", "gpt-4o", {}, {"max_tokens": 16384}),
        ("openai", "gpt-4.1-mini", {}, {"max_tokens": 32000}),
        (
            "openai",
            "o3-mini",
            {"max_tokens": None, "max_completion_tokens": 200_000, "temperature": 1},
            {"max_completion_tokens": 100_000, "temperature": "dropped"},
        ),
        ("openai", "gpt-4.1", {"temperature": 0.2}, {"temperature": 0.2}),
        ("groq", "llama-3.3-70b-versatile", {"reasoning": {"effort": "high"}}, {"reasoning": "dropped"}),
        (
            "gemini",
            "gemini-2.0-flash",
            {"parallel_tool_calls": False, "user": "u", "frequency_penalty": 0.1},
            {"max_tokens": 8192, "parallel_tool_calls": "dropped", "user": "dropped", "frequency_penalty": "dropped"},
        ),
        ("gemini", "models/gemini-2.5-pro", {}, {"max_tokens": 32000}),
        (
            "openrouter",
            "anthropic/claude-sonnet-4.5",
            {"reasoning": {"effort": "high"}},
            {"reasoning": {"effort": "high"}, "max_tokens": 32000},
        ),
        ("ollama", "qwen3-coder", {}, {"max_tokens": 32000}),
        ("custom", "anything", {"top_k": 5}, {"top_k": 5, "max_tokens": 32000}),
    ],
)
def test_each_preset_rewrites_the_request(
    preset: str, model: str, extra: dict[str, Any], expected: dict[str, Any]
) -> None:
    """Limits are clamped per model and rejected fields dropped; everything else is kept."""
    request = {k: v for k, v in chat_request(model, **extra).items() if v is not None}
    out = apply_preset(request, PRESETS[preset], model)
    for key, value in expected.items():
        if value == "dropped":
            assert key not in out
        else:
            assert out[key] == value
    assert out["messages"] == request["messages"]


def test_apply_preset_leaves_its_input_alone() -> None:
    """The rewrite returns a new request; the translated one is not modified."""
    request = chat_request("deepseek-chat", tools=claude_code_tools(), tool_choice="required")
    before = copy.deepcopy(request)
    apply_preset(request, PRESETS["gemini"], "deepseek-chat")
    apply_preset(request, PRESETS["deepseek"], "deepseek-reasoner")
    assert request == before


@pytest.mark.parametrize(
    ("model", "tool_choice", "kept"),
    [
        ("deepseek-reasoner", "required", False),
        ("deepseek-reasoner", {"type": "function", "function": {"name": "WebSearch"}}, False),
        ("deepseek-reasoner", "auto", True),
        ("deepseek-reasoner", "none", True),
        ("deepseek-chat", "required", True),
        ("deepseek-chat", {"type": "function", "function": {"name": "WebSearch"}}, True),
    ],
)
def test_forced_tool_choice_is_dropped_where_refused(model: str, tool_choice: Any, kept: bool) -> None:
    """deepseek-reasoner refuses a forced tool_choice, which breaks WebSearch; it is dropped."""
    out = apply_preset(chat_request(model, tool_choice=tool_choice), PRESETS["deepseek"], model)
    assert ("tool_choice" in out) is kept


def test_groq_drops_schema_keyword_but_not_a_field_named_like_it() -> None:
    """Groq loses `$schema` at every depth; a property *named* `$schema` is a field and stays."""
    params = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "$schema": {"type": "string"},
            "nested": {"type": "object", "$schema": "x", "properties": {}, "additionalProperties": False},
        },
        "additionalProperties": False,
    }
    tools = [{"type": "function", "function": {"name": "t", "parameters": params}}]
    request = chat_request("llama", tools=tools)
    out = tool("t", apply_preset(request, PRESETS["groq"], "llama"))["parameters"]
    assert "$schema" not in out
    assert out["properties"]["$schema"] == {"type": "string"}
    assert out["properties"]["nested"] == {"type": "object", "properties": {}, "additionalProperties": False}
    assert out["additionalProperties"] is False  # Groq accepts it; only refused keywords go


def test_openai_keeps_schemas_as_they_are() -> None:
    """OpenAI takes JSON Schema as Claude Code writes it."""
    request = chat_request("gpt-4.1", tools=claude_code_tools())
    assert apply_preset(request, PRESETS["openai"], "gpt-4.1")["tools"] == request["tools"]


# --- Gemini schema cleaning ------------------------------------------------------------------------


def test_gemini_cleans_every_real_claude_code_tool() -> None:
    """All 24 Claude Code tool schemas come out in Gemini's keyword subset, meaning kept."""
    out = apply_preset(chat_request("gemini-2.5-pro", tools=claude_code_tools()), PRESETS["gemini"], "gemini-2.5-pro")
    assert len(out["tools"]) == 24
    for t in out["tools"]:
        for node in schema_nodes(t["function"].get("parameters")):
            assert set(node) <= GEMINI_KEYWORDS, (t["function"]["name"], set(node) - GEMINI_KEYWORDS)
            assert "enum" not in node or node.get("type") == "string"
            if "required" in node:
                assert set(node["required"]) <= set(node["properties"])
            if "properties" in node:
                assert node["properties"], "Gemini refuses empty properties"
    read = tool("Read", out)["parameters"]
    assert read["properties"]["limit"]["minimum"] == 1  # exclusiveMinimum 0 on an integer
    assert read["required"] == ["file_path"]
    status = tool("TaskUpdate", out)["parameters"]["properties"]["status"]
    assert status["anyOf"][1] == {"type": "string", "enum": ["deleted"]}  # const -> enum
    assert tool("TaskCreate", out)["parameters"]["properties"]["metadata"] == {
        "description": "Arbitrary metadata to attach to the task",
        "type": "object",
    }
    assert "format" not in tool("WebFetch", out)["parameters"]["properties"]["url"]  # uri
    # Field names that look like keywords are fields, and stay.
    assert {"subject", "description", "activeForm", "metadata"} <= set(
        tool("TaskCreate", out)["parameters"]["properties"]
    )
    assert {"title", "description", "name"} <= set(tool("Workflow", out)["parameters"]["properties"])
    # A tool without parameters loses the empty object rather than being refused.
    assert "parameters" not in tool("CronList", out)
    assert tool("CronList", out)["name"] == "CronList"


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": ["string", "null"]}, {"type": "string", "nullable": True}),
        ({"type": "null"}, {"nullable": True}),
        (
            {"type": ["string", "integer"], "minimum": 1, "maxLength": 3},
            {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "integer", "minimum": 1}]},
        ),
        (
            {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "d"},
            {"type": "string", "description": "d", "nullable": True},
        ),
        ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, {"anyOf": [{"type": "string"}, {"type": "integer"}]}),
        ({"type": "string", "const": "x"}, {"type": "string", "enum": ["x"]}),
        ({"const": "x"}, {"type": "string", "enum": ["x"]}),
        ({"type": "integer", "enum": [1, 2]}, {"type": "integer"}),
        ({"type": "string", "enum": ["a", None]}, {"type": "string", "enum": ["a"], "nullable": True}),
        (
            {"type": "number", "exclusiveMinimum": 0.5, "exclusiveMaximum": 2},
            {"type": "number", "minimum": 0.5, "maximum": 2},
        ),
        ({"type": "integer", "exclusiveMaximum": 10, "maximum": 5}, {"type": "integer", "maximum": 5}),
        ({"type": "integer", "minimum": 0, "exclusiveMinimum": True}, {"type": "integer", "minimum": 0}),
        ({"type": "string", "format": "date-time"}, {"type": "string", "format": "date-time"}),
        ({"type": "string", "format": "email"}, {"type": "string"}),
        ({"type": "integer", "format": "int64"}, {"type": "integer", "format": "int64"}),
        ({"type": "string", "properties": {"a": {}}, "required": ["a"]}, {"type": "string"}),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "required": ["a", "ghost"],
                "additionalProperties": {"type": "string"},
                "propertyNames": {"pattern": "x"},
                "patternProperties": {},
            },
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        ),
        ({"properties": {"a": {"type": "string"}}}, {"type": "object", "properties": {"a": {"type": "string"}}}),
        (
            {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
            {"type": "array", "items": {"type": "string"}},
        ),
        ({"type": "array", "items": True}, {"type": "array", "items": {}}),
        (
            {
                "allOf": [
                    {"properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "integer"}}},
                ],
                "description": "d",
            },
            {
                "description": "d",
                "type": "object",
                "properties": {"b": {"type": "integer"}, "a": {"type": "string"}},
                "required": ["a"],
            },
        ),
        (
            {"type": "string", "examples": ["a"], "example": "a", "default": "a", "title": "T", "$comment": "c"},
            {"type": "string", "example": "a", "default": "a", "title": "T"},
        ),
    ],
)
def test_gemini_schema_rules(schema: dict[str, Any], expected: dict[str, Any]) -> None:
    """Each JSON Schema construct Gemini lacks is rewritten to one it has, or dropped."""
    assert clean_schema(schema, "gemini") == expected


def test_gemini_inlines_local_refs() -> None:
    """`$ref` into `$defs` (pydantic-made MCP tools) is inlined; a recursive one becomes an open object."""
    schema = {
        "$defs": {
            "Point": {"type": "object", "properties": {"x": {"type": "number"}}},
            "Tree": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Tree"}}},
        },
        "type": "object",
        "properties": {
            "p": {"$ref": "#/$defs/Point", "description": "where"},
            "maybe": {"anyOf": [{"$ref": "#/$defs/Point"}, {"type": "null"}]},
            "tree": {"$ref": "#/$defs/Tree"},
            "elsewhere": {"$ref": "https://example.com/schema.json"},
        },
    }
    props = clean_schema(schema, "gemini")["properties"]
    assert props["p"] == {"type": "object", "properties": {"x": {"type": "number"}}, "description": "where"}
    assert props["maybe"] == {"type": "object", "properties": {"x": {"type": "number"}}, "nullable": True}
    assert props["tree"] == {"type": "object", "properties": {"child": {"type": "object"}}}
    assert props["elsewhere"] == {"type": "object"}


# --- lookup, URLs and auth -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "preset", "expected"),
    [
        ("deepseek", "", "deepseek"),
        ("DeepSeek", "", "deepseek"),
        ("google", "", "gemini"),
        ("my-llm", "", "custom"),
        ("work", "openrouter", "openrouter"),
        ("openai", "groq", "groq"),  # an explicit preset beats the name
    ],
)
def test_preset_for(name: str, preset: str, expected: str) -> None:
    """By explicit preset, else by provider name (and its aliases), else custom."""
    assert preset_for(name, preset).name == expected


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://api.deepseek.com/v1", "deepseek"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("http://localhost:11434/v1", "ollama"),
        ("http://localhost:1234/v1", "custom"),  # same host, another port: LM Studio, not Ollama
        ("https://llm.example.com/v1", "custom"),
    ],
)
def test_preset_by_base_url_host(base: str, expected: str) -> None:
    """A provider with an unknown name is recognised by the host and port of its base URL."""
    assert preset_for_provider({"name": "work", "api_base_url": base}).name == expected


def test_unknown_explicit_preset_is_refused_with_the_known_ones() -> None:
    """A misspelt preset is a config error that lists the real ones."""
    with pytest.raises(ValueError, match="known presets: anthropic, openai, deepseek"):
        preset_for("x", "deepsek")


def test_preset_for_provider_applies_config_overrides() -> None:
    """Base URL host, kind, max_output_tokens and headers from config shape the preset."""
    by_host = preset_for_provider({"name": "work", "api_base_url": "https://api.deepseek.com/v1"})
    assert by_host.name == "deepseek"
    assert by_host.default_base_url == "https://api.deepseek.com/v1"
    anthropic_style = preset_for_provider(
        {"name": "deepseek", "kind": "anthropic", "api_base_url": "https://api.deepseek.com/anthropic"}
    )
    assert (anthropic_style.kind, anthropic_style.auth_header) == ("anthropic", "x-api-key")
    assert upstream_url(anthropic_style, "", "messages") == "https://api.deepseek.com/anthropic/v1/messages"
    assert anthropic_style.max_output_for("deepseek-chat") == 8192  # model facts survive
    capped = preset_for_provider({"name": "deepseek", "max_output_tokens": 4000})
    assert capped.max_output_for("deepseek-reasoner") == 4000
    router = preset_for_provider({"name": "openrouter", "headers": {"X-Title": "mine", "X-Extra": "1"}})
    assert dict(router.extra_headers) == {
        "HTTP-Referer": "https://github.com/ccproxy",
        "X-Title": "mine",
        "X-Extra": "1",
    }


def test_openrouter_attribution_headers() -> None:
    """OpenRouter gets its attribution headers; other presets get none of them."""
    assert set(PRESETS["openrouter"].extra_headers) == {"HTTP-Referer", "X-Title"}
    assert not any("HTTP-Referer" in p.extra_headers for n, p in PRESETS.items() if n != "openrouter")


def test_openai_reasoning_models_use_max_completion_tokens() -> None:
    """The dialect follows the model: o-series and gpt-5 take max_completion_tokens."""
    openai = PRESETS["openai"]
    assert openai.dialect_for("o3-mini").max_tokens_field == "max_completion_tokens"
    assert openai.dialect_for("gpt-5-mini").max_tokens_field == "max_completion_tokens"
    assert openai.dialect_for("gpt-4.1").max_tokens_field == "max_tokens"
    assert PRESETS["deepseek"].dialect.echo_reasoning is True
    assert PRESETS["mistral"].dialect.tool_id_style == "mistral9"


@pytest.mark.parametrize(
    ("preset", "base", "kind", "expected"),
    [
        ("anthropic", "", "messages", "https://api.anthropic.com/v1/messages"),
        ("anthropic", "https://api.anthropic.com/", "messages", "https://api.anthropic.com/v1/messages"),
        (
            "anthropic",
            "https://api.anthropic.com/v1",
            "count_tokens",
            "https://api.anthropic.com/v1/messages/count_tokens",
        ),
        ("anthropic", "http://127.0.0.1:9000", "models", "http://127.0.0.1:9000/v1/models"),
        ("openai", "", "chat", "https://api.openai.com/v1/chat/completions"),
        ("openai", "https://api.openai.com/v1/", "models", "https://api.openai.com/v1/models"),
        ("deepseek", "", "chat", "https://api.deepseek.com/chat/completions"),
        ("gemini", "", "chat", "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions"),
        ("groq", "", "chat", "https://api.groq.com/openai/v1/chat/completions"),
        ("openrouter", "", "chat", "https://openrouter.ai/api/v1/chat/completions"),
        ("ollama", "", "chat", "http://localhost:11434/v1/chat/completions"),
        # the whole endpoint written as the base
        ("custom", "http://h/v1/chat/completions", "chat", "http://h/v1/chat/completions"),
        ("custom", "http://h/v1/chat/completions", "models", "http://h/v1/models"),
    ],
)
def test_upstream_url(preset: str, base: str, kind: Any, expected: str) -> None:
    """The endpoint is appended to the base however the base was written."""
    assert upstream_url(PRESETS[preset], base, kind) == expected


@pytest.mark.parametrize(
    ("preset", "base", "kind", "message"),
    [
        ("anthropic", "", "chat", "no chat endpoint"),
        ("openai", "", "messages", "no messages endpoint"),
        ("custom", "", "chat", "needs an api_base_url"),
    ],
)
def test_upstream_url_errors(preset: str, base: str, kind: Any, message: str) -> None:
    """A call the provider kind cannot serve, or a missing base, is a clear error."""
    with pytest.raises(ValueError, match=message):
        upstream_url(PRESETS[preset], base, kind)


@pytest.mark.parametrize(
    ("preset", "key", "expected"),
    [
        ("anthropic", "sk-ant", {"x-api-key": "sk-ant"}),
        ("openai", "sk", {"Authorization": "Bearer sk"}),
        ("gemini", "AIza", {"Authorization": "Bearer AIza"}),
        ("ollama", "anything", {}),
        ("openai", "", {}),
    ],
)
def test_each_preset_key_header(preset: str, key: str, expected: dict[str, str]) -> None:
    """Each preset carries its key in its own header; no key, no header."""
    assert key_headers(PRESETS[preset].auth_header, key) == expected


@pytest.mark.parametrize(
    ("preset", "env_keys"),
    [
        ("anthropic", ("ANTHROPIC_API_KEY",)),
        ("openai", ("OPENAI_API_KEY",)),
        ("deepseek", ("DEEPSEEK_API_KEY",)),
        ("gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
        ("openrouter", ("OPENROUTER_API_KEY",)),
        ("groq", ("GROQ_API_KEY",)),
        ("custom", ()),
    ],
)
def test_env_key_names(preset: str, env_keys: tuple[str, ...]) -> None:
    """Each preset names the environment variables that may hold its key."""
    assert PRESETS[preset].env_keys == env_keys


def test_every_anthropic_speaking_provider_sends_anthropic_version() -> None:
    """Native Anthropic and an OpenAI vendor's Anthropic-compatible endpoint both carry the header."""
    from ccproxy_core.providers.presets import preset_for_provider

    for provider in (
        {"name": "anthropic"},
        {"name": "deepseek", "kind": "anthropic", "api_base_url": "https://api.deepseek.com/anthropic"},
    ):
        preset = preset_for_provider(provider)
        assert preset.kind == "anthropic"
        assert preset.extra_headers["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize(
    ("model", "takes"),
    [
        ("o3", True),
        ("o3-mini", True),
        ("o4-mini-2025-04-16", True),
        ("o1", True),
        ("o1-mini", False),
        ("gpt-5", True),
        ("gpt-5-chat-latest", False),
        ("gpt-4.1", False),
        ("gpt-4o-mini", False),
        ("openai/o3", True),
        ("models/gemini-2.5-pro", True),
        ("gemini-2.0-flash", False),
        ("grok-3-mini", True),
        ("grok-4", False),
        ("gpt-oss-120b", True),
        ("llama-3.3-70b", False),
    ],
)
def test_the_reasoning_table(model: str, takes: bool) -> None:
    """One table says which models take a reasoning effort; a vendor prefix does not hide the name."""
    assert takes_reasoning(model) is takes


@pytest.mark.parametrize(
    ("provider", "model", "style"),
    [
        ({"name": "openai"}, "gpt-4.1", "none"),
        ({"name": "openai"}, "o3", "effort"),
        ({"name": "openai", "reasoning": True}, "gpt-4.1", "effort"),
        ({"name": "openai", "reasoning": False}, "o3", "none"),
        ({"name": "openrouter"}, "openai/gpt-4.1", "openrouter"),
        ({"name": "openrouter", "reasoning": False}, "openai/o3", "none"),
        ({"name": "deepseek"}, "deepseek-reasoner", "none"),
        ({"name": "deepseek", "reasoning": True}, "deepseek-reasoner", "effort"),
        ({"name": "gemini"}, "gemini-2.0-flash", "none"),
        ({"name": "gemini"}, "gemini-2.5-flash", "effort"),
    ],
)
def test_reasoning_controls_follow_the_table_unless_the_provider_says(
    provider: dict[str, Any], model: str, style: str
) -> None:
    """The dialect sends reasoning only where the table (or the provider's `reasoning` setting) allows."""
    assert preset_for_provider(provider).dialect_for(model).reasoning == style
