"""Sticky sessions, pure: the table, the session key of each client, the pool's preference, dropped thinking."""

from __future__ import annotations

import orjson

from ccproxy_core.core.credential import api_key_credentials
from ccproxy_core.core.failover import FailoverPlan
from ccproxy_core.core.outcome import Outcome, OutcomeKind
from ccproxy_core.core.pool import CredentialPool
from ccproxy_core.core.sticky import (
    StickyTable,
    is_signature_error,
    session_key,
    without_earlier_thinking,
)


def test_table_forgets_after_the_ttl_since_the_last_request() -> None:
    """A conversation sticks while requests keep coming, and is forgotten ttl seconds after the last one."""
    table = StickyTable(ttl=60)
    table.put("s", "key-2", 0)
    assert table.get("s", 50) == "key-2"
    table.put("s", "key-2", 50)
    assert table.get("s", 100) == "key-2"
    assert table.get("s", 111) is None


def test_table_is_bounded() -> None:
    """Past max_size the least recently seen conversation goes first."""
    table = StickyTable(ttl=60, max_size=2)
    for i, s in enumerate("abc"):
        table.put(s, "key-1", i)
    assert table.get("a", 3) is None and table.get("c", 3) == "key-1"
    assert table.sessions(3) == {"key-1": 2}


def test_session_keys_of_each_client() -> None:
    """Claude Code's header or metadata.user_id (JSON or the older form), a codex path, prompt_cache_key, user."""
    user_id = orjson.dumps({"device_id": "d", "session_id": "abc"}).decode()
    assert session_key({"X-Claude-Code-Session-Id": "h1"}, {}) == "cc:h1"
    assert session_key({}, {"metadata": {"user_id": user_id}}) == "cc:abc"
    assert session_key({}, {"metadata": {"user_id": "user_x_account_y_session_zz"}}) == "cc:zz"
    assert session_key({}, {}, "thread-9") == "codex:thread-9"
    assert session_key({}, {"prompt_cache_key": "p", "user": "u"}) == "prompt_cache_key:p"
    assert session_key({}, {"user": "u"}) == "user:u"
    assert session_key({}, {"metadata": {"user_id": "{broken"}}) is None


def test_pool_prefers_the_sticky_credential_while_usable() -> None:
    """select(prefer=) takes the sticky one without moving the rotation; a limited one is passed over."""
    pool = CredentialPool(api_key_credentials(["a", "b", "c"]))
    assert pool.select(0, prefer="key-3").name == "key-3"
    assert pool.select(0).name == "key-1"  # the rotation did not move
    pool.record("key-3", Outcome(OutcomeKind.RATE_LIMITED, 429), {"retry-after": "60"}, 0)
    assert pool.select(1, prefer="key-3").name == "key-2"


def test_plan_fails_over_from_the_sticky_credential() -> None:
    """A FailoverPlan starts on the preferred credential and moves on after it is limited."""
    pool = CredentialPool(api_key_credentials(["a", "b", "c"]))
    plan = FailoverPlan(pool, now=0, prefer="key-2")
    assert plan.next(0).name == "key-2"
    plan.report(Outcome(OutcomeKind.RATE_LIMITED, 429), {}, 0)
    assert plan.next(0).name != "key-2"


def test_earlier_thinking_is_dropped_but_not_where_a_tool_is_answered() -> None:
    """Earlier assistant turns lose their thinking; the last one keeps it when the client answers its tool use."""
    thinking = {"type": "thinking", "thinking": "t", "signature": "s"}
    tool = {"type": "tool_use", "id": "t1", "name": "x", "input": {}}
    body = {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": [thinking, {"type": "text", "text": "b"}]},
            {"role": "user", "content": "c"},
            {"role": "assistant", "content": [thinking, tool]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
        ]
    }
    out = without_earlier_thinking(body)
    assert out is not None
    assert out["messages"][1]["content"] == [{"type": "text", "text": "b"}]
    assert out["messages"][3]["content"] == [thinking, tool]
    assert without_earlier_thinking(out) is None  # nothing left to drop: no second retry


def test_signature_errors_are_recognised() -> None:
    """Only a 400 that names a thinking block's signature counts."""
    assert is_signature_error(400, b'{"error":{"message":"Invalid `signature` in `thinking` block"}}')
    assert not is_signature_error(400, b'{"error":{"message":"max_tokens too large"}}')
    assert not is_signature_error(429, b"signature thinking")
