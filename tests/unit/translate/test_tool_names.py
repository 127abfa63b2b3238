"""Tool names and tool-call ids that Chat Completions upstreams and Anthropic clients accept."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccproxy_core.translate.tool_names import (
    ToolNames,
    mistral_tool_id,
    safe_tool_name,
    safe_tool_use_id,
)

SAFE_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
SAFE_ID = re.compile(r"[a-zA-Z0-9_-]+")
MCP_NAME = "mcp__claude_ai_Atlassian__getConfluencePageFooterCommentsWithVeryLongSuffix_v2"  # 79 chars


def test_safe_names_pass_through() -> None:
    """A name OpenAI already accepts is not touched."""
    assert safe_tool_name("Bash") == "Bash"
    assert safe_tool_name("mcp__github__create_issue") == "mcp__github__create_issue"
    assert safe_tool_name("x" * 64) == "x" * 64


def test_long_name_becomes_prefix_and_hash() -> None:
    """A name over 64 characters keeps a 55-character prefix, then `_` and 8 hex of its sha256."""
    safe = safe_tool_name(MCP_NAME)
    assert len(safe) == 64
    assert safe.startswith(MCP_NAME[:55] + "_")
    assert re.fullmatch(r"[0-9a-f]{8}", safe[56:])
    assert safe_tool_name(MCP_NAME) == safe  # deterministic across requests


@pytest.mark.parametrize("name", ["", "read.file", "ns:tool", "名前", "a b"])
def test_bad_characters_and_empty_names_are_replaced(name: str) -> None:
    """Empty names and names with characters outside [a-zA-Z0-9_-] get a valid stand-in."""
    assert SAFE_NAME.fullmatch(safe_tool_name(name))


def test_similar_bad_names_stay_distinct() -> None:
    """Two names that clean to the same text still map apart, thanks to the hash."""
    assert safe_tool_name("a.b") != safe_tool_name("a:b")


def test_from_request_maps_tools_choice_and_history_both_ways() -> None:
    """Names from tools, tool_choice and history tool_use are renamed and restored."""
    body = {
        "tools": [{"name": MCP_NAME, "input_schema": {}}, {"name": "Bash", "input_schema": {}}],
        "tool_choice": {"type": "tool", "name": "choice.name"},
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "history:name", "input": {}}],
            }
        ],
    }
    names = ToolNames.from_request(body)
    for original in (MCP_NAME, "choice.name", "history:name"):
        upstream = names.to_upstream(original)
        assert SAFE_NAME.fullmatch(upstream)
        assert upstream != original
        assert names.to_client(upstream) == original
    assert names.to_upstream("Bash") == "Bash"
    assert names.to_client("Bash") == "Bash"


def test_unknown_names_pass_through_to_client() -> None:
    """A name the request never mentioned comes back unchanged."""
    assert ToolNames().to_client("whatever") == "whatever"


@settings(deadline=None)
@given(st.text(max_size=120))
def test_any_name_maps_to_a_safe_name(name: str) -> None:
    """Every string becomes a name OpenAI accepts, and the same one every time."""
    safe = safe_tool_name(name)
    assert SAFE_NAME.fullmatch(safe)
    assert safe_tool_name(name) == safe


@settings(deadline=None)
@given(st.lists(st.text(max_size=90), max_size=6, unique=True))
def test_round_trip_restores_every_declared_name(names: list[str]) -> None:
    """to_client(to_upstream(name)) is the name for every name in the request."""
    mapping = ToolNames.of(names)
    for name in names:
        assert mapping.to_client(mapping.to_upstream(name)) == name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("toolu_01ABC", "toolu_01ABC"),
        ("call_abc-123", "call_abc-123"),
        ("functions.Bash:0", "functions_Bash_0"),  # Kimi
        ("call_1__thought__CiQBVKhc7wsig", "call_1"),  # Gemini thought signature suffix
    ],
)
def test_safe_tool_use_id(raw: str, expected: str) -> None:
    """Ids are cleaned to [a-zA-Z0-9_-]+; Gemini's thought signature is cut off."""
    assert safe_tool_use_id(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "__thought__abc"])
def test_missing_id_is_generated(raw: str | None) -> None:
    """A missing or empty id becomes `toolu_` and 24 hex digits."""
    assert re.fullmatch(r"toolu_[0-9a-f]{24}", safe_tool_use_id(raw))


@settings(deadline=None)
@given(st.one_of(st.none(), st.text(max_size=60)))
def test_any_id_becomes_safe(raw: str | None) -> None:
    """Whatever the upstream sends, the client gets an id matching ^[a-zA-Z0-9_-]+$."""
    assert SAFE_ID.fullmatch(safe_tool_use_id(raw))


@settings(deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_mistral_ids_are_nine_alphanumerics_and_deterministic(raw: str) -> None:
    """Mistral ids are exactly 9 [a-zA-Z0-9] characters, the same for the same input."""
    mapped = mistral_tool_id(raw)
    assert re.fullmatch(r"[a-zA-Z0-9]{9}", mapped)
    assert mistral_tool_id(raw) == mapped


def test_mistral_keeps_ids_already_in_its_shape() -> None:
    """An id Mistral itself issued round-trips unchanged."""
    assert mistral_tool_id("aB3dE5fG7") == "aB3dE5fG7"
    assert mistral_tool_id("toolu_01A") != mistral_tool_id("toolu_01B")
