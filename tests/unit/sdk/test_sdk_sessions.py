"""Session ids -> CLI sessions, and which turns of a request the session has not seen."""

from __future__ import annotations

import uuid

from ccproxy_core.sdk.sessions import new_session, unseen

U1 = {"role": "user", "content": "first"}
A1 = {"role": "assistant", "content": [{"type": "text", "text": "answer one"}]}
U2 = {"role": "user", "content": [{"type": "text", "text": "second"}]}


def test_each_session_id_gets_a_fresh_uuid() -> None:
    """Any string names a session; the CLI gets a valid UUID, new for each id and proxy run."""
    a, b = new_session("my chat"), new_session("my chat")
    assert uuid.UUID(a.uuid) and a.uuid != b.uuid and not a.started


def test_a_new_session_sees_every_message_as_new() -> None:
    """Nothing seen yet: the whole request is new (its history goes as a transcript)."""
    assert unseen(new_session("s"), [U1, A1, U2]) == (0, [U1, A1, U2])


def test_a_client_resending_the_full_history_sends_only_the_new_turn() -> None:
    """After one turn, a request with the full history has only its last user turn as new."""
    session = new_session("s").after_turn([U1])
    assert session.started
    assert unseen(session, [U1, A1, U2]) == (2, [U2])


def test_a_client_sending_only_the_new_turn_works_too() -> None:
    """A request with just the next user turn is all new."""
    session = new_session("s").after_turn([U1])
    assert unseen(session, [U2]) == (0, [U2])


def test_an_edited_history_is_not_mistaken_for_the_seen_one() -> None:
    """A different first user turn means the client is not resending what the session saw."""
    session = new_session("s").after_turn([U1])
    edited = {"role": "user", "content": "something else"}
    assert unseen(session, [edited, A1, U2]) == (0, [edited, A1, U2])


def test_the_assistant_text_may_differ_in_shape() -> None:
    """An OpenAI client echoes the answer as a string: only the role of assistant turns is compared."""
    session = new_session("s").after_turn([U1])
    assert unseen(session, [U1, {"role": "assistant", "content": "answer one"}, U2])[1] == [U2]
