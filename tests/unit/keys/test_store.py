"""The keys file and what users type for a key's limits."""

from __future__ import annotations

import calendar
import stat
from pathlib import Path

import pytest

from ccproxy_core.keys.model import KeySettingError, Limits, apply_changes, parse_budgets, parse_expires
from ccproxy_core.keys.store import KeyExists, KeyNotFound, KeyStore

NOW = float(calendar.timegm((2026, 11, 29, 12, 0, 0)))


def test_the_clear_key_is_never_stored(tmp_path: Path) -> None:
    """The file holds a keyed hash and a short prefix, never the key; it is readable by its owner only."""
    store = KeyStore(tmp_path / "keys.sqlite3")
    key, clear = store.create("alice", Limits(rpm=5), NOW)
    assert clear.startswith("ccp-") and len(clear) >= 40
    assert clear.encode() not in store.path.read_bytes()
    assert clear[4:].encode() not in store.path.read_bytes()
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.index().lookup(clear) == key
    assert store.index().lookup(clear + "x") is None
    assert key.prefix == clear[:12] and "digest" not in key.to_json(NOW)


def test_two_stores_have_different_peppers(tmp_path: Path) -> None:
    """The same key hashes differently under another file's pepper."""
    a, b = KeyStore(tmp_path / "a.sqlite3"), KeyStore(tmp_path / "b.sqlite3")
    _, clear = a.create("alice", Limits(), NOW)
    b.create("bob", Limits(), NOW)
    assert b.index().lookup(clear) is None


def test_update_revoke_list_and_errors(tmp_path: Path) -> None:
    """Limits change in place; a revoked key stays listed as revoked; duplicates and unknown names are refused."""
    store = KeyStore(tmp_path / "keys.sqlite3")
    store.create("alice", Limits(), NOW)
    with pytest.raises(KeyExists):
        store.create("alice", Limits(), NOW)
    assert store.update("alice", Limits(models=("claude-*",))).limits.models == ("claude-*",)
    assert store.revoke("alice", NOW).state(NOW) == "revoked"
    assert [k.name for k in store.list()] == ["alice"]
    with pytest.raises(KeyNotFound, match="ccproxy keys list"):
        store.get("bob")


def test_no_file_is_an_empty_index(tmp_path: Path) -> None:
    """Before any key exists the server sees none (and nothing is created by reading)."""
    store = KeyStore(tmp_path / "keys.sqlite3")
    assert len(store.index()) == 0 and not store.path.exists()


def test_expires_takes_spans_and_dates() -> None:
    """30d from now; a bare date lasts through that UTC day; nonsense names the field."""
    assert parse_expires("30d", NOW) == NOW + 30 * 86400
    assert parse_expires("2027-01-31", NOW) == calendar.timegm((2027, 2, 1, 0, 0, 0))
    assert parse_expires("never", NOW) is None
    with pytest.raises(KeySettingError, match="expires:"):
        parse_expires("soon", NOW)


def test_changes_apply_and_null_removes() -> None:
    """The admin API's fields: lists from strings, null removes a limit, bad values name their field."""
    limits = apply_changes(Limits(), {"budget_usd": {"day": 5}, "rpm": 60, "models": "claude-*, gpt-4.1"}, NOW)
    assert (limits.budget_day_usd, limits.rpm, limits.models) == (5.0, 60, ("claude-*", "gpt-4.1"))
    assert apply_changes(limits, {"rpm": None}, NOW).rpm is None
    assert parse_budgets(["day=1", "month=20"]) == {"day": 1.0, "month": 20.0}
    for bad, field in (({"rpm": 0}, "rpm"), ({"tpm": "x"}, "tpm"), ({"budget_usd": {"week": 1}}, "budget_usd")):
        with pytest.raises(KeySettingError, match=field):
            apply_changes(Limits(), bad, NOW)


def test_model_globs() -> None:
    """Globs match case-sensitively; no list allows every model."""
    assert Limits(models=("claude-*",)).allows_model("claude-opus-4-8")
    assert not Limits(models=("claude-*",)).allows_model("gpt-4.1")
    assert Limits().allows_model("anything")
