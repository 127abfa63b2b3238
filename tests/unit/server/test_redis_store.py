"""The Redis backend's key names and messages, without a Redis: what other instances and operators see."""

from __future__ import annotations

from ccproxy_core.server.redis_store import Keys, as_bytes, as_text, safe_url

SECRET = "ccp_live_0123456789abcdef"


def test_every_key_lives_under_the_prefix_as_the_table_says() -> None:
    """The names the backend writes are the ones its docstring's table lists, under `key_prefix`."""
    keys = Keys("cc")
    assert keys.events == "cc:events"
    assert keys.cred("claude") == "cc:cred:claude"
    assert keys.sticky("claude", 480) == "cc:sticky:claude:480"
    assert keys.bucket("provider:claude") == "cc:bucket:provider:claude"
    assert keys.client_key("team") == "cc:key:team"
    assert keys.tokens("claude", "work") == "cc:tokens:claude:work"
    assert keys.refresh("claude", "work") == "cc:refresh:claude:work"


def test_a_clients_bucket_is_named_by_a_digest_never_by_its_key() -> None:
    """A client's bucket key holds a stable digest of the client's key, so no secret names a shared key."""
    name = Keys("cc").bucket(f"client:{SECRET}")
    assert name.startswith("cc:bucket:client:") and SECRET not in name
    assert name == Keys("cc").bucket(f"client:{SECRET}") != Keys("cc").bucket("client:other")


def test_the_url_in_messages_hides_the_password() -> None:
    """/health and the log name the Redis URL with its password masked, and leave a bare URL alone."""
    assert safe_url("redis://:hunter2@cache:6379/0") == "redis://***@cache:6379/0"
    assert safe_url("rediss://user:hunter2@cache:6380") == "rediss://***@cache:6380"
    assert safe_url("redis://127.0.0.1:6379") == "redis://127.0.0.1:6379"


def test_values_read_back_are_taken_as_they_come() -> None:
    """Hash fields become text and values bytes whichever way the client returned them."""
    assert as_text(b"key-1") == as_text("key-1") == "key-1"
    assert as_bytes("v") == as_bytes(b"v") == b"v"
    assert as_bytes(None) is None
