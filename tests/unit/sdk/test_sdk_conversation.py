"""A client's messages -> the one user turn Claude Code is sent."""

from __future__ import annotations

import pytest

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.sdk.conversation import HISTORY_OPEN, cli_turn, refuse_client_tools


def test_a_single_user_turn_passes_as_it_is() -> None:
    """One user message is sent as its own blocks, the system as the appended system prompt."""
    turn = cli_turn([{"role": "user", "content": "hi"}], "Be brief.")
    assert turn.content == ({"type": "text", "text": "hi"},) and turn.system == "Be brief."


def test_earlier_turns_become_a_transcript_before_the_last_user_turn() -> None:
    """A history is written out (tool calls as text) ahead of the last user turn's blocks."""
    turn = cli_turn(
        [
            {"role": "user", "content": "What is 2+2?"},
            {
                "role": "assistant",
                "content": [{"type": "thinking", "thinking": "easy", "signature": "s"}, {"type": "text", "text": "4"}],
            },
            {"role": "user", "content": [{"type": "text", "text": "And 3+3?", "cache_control": {"type": "ephemeral"}}]},
        ],
        None,
    )
    history, last = turn.content
    assert history["text"].startswith(HISTORY_OPEN)
    assert "User: What is 2+2?" in history["text"] and "Assistant: 4" in history["text"]
    assert "easy" not in history["text"]
    assert last == {"type": "text", "text": "And 3+3?"}


def test_images_in_the_last_turn_are_kept() -> None:
    """Image blocks reach the CLI (stream-json takes Anthropic content blocks)."""
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    turn = cli_turn([{"role": "user", "content": [image, {"type": "text", "text": "what is this?"}]}], None)
    assert turn.content[0] == image


def test_system_blocks_and_mid_conversation_system_join_the_system_prompt() -> None:
    """System blocks and `system` messages inside `messages` all go to the system prompt."""
    turn = cli_turn(
        [{"role": "system", "content": "Rule two."}, {"role": "user", "content": "go"}],
        [{"type": "text", "text": "Rule one."}],
    )
    assert turn.system == "Rule one.\n\nRule two."


def test_a_prefilled_assistant_turn_is_refused() -> None:
    """Claude Code cannot continue an assistant turn: the error names the message."""
    with pytest.raises(InvalidRequest, match=r"messages\.1: the last message must be the user's"):
        cli_turn([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure,"}], None)


def test_offset_numbers_messages_as_the_client_sent_them() -> None:
    """Errors about the unseen turns of a session count from the start of the client's list."""
    with pytest.raises(InvalidRequest, match=r"messages\.5\.role"):
        cli_turn([{"role": "user", "content": "x"}, {"role": "robot", "content": "y"}], None, offset=4)


def test_client_tools_are_refused_with_the_reason() -> None:
    """Client tools get a 400 that says SDK mode runs Claude Code's own tools, and where to go instead."""
    with pytest.raises(InvalidRequest, match=r"Claude Code's own tools.*/v1/messages"):
        refuse_client_tools({"tools": [{"name": "get_weather", "input_schema": {}}]})
    refuse_client_tools({"tools": []})
