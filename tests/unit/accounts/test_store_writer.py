"""One writer per accounts file: threads and processes serialized, merges by name, editors respected."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from ccproxy_core.accounts import store
from ccproxy_core.accounts.filelock import LockTimeout, lock_path, locked
from ccproxy_core.accounts.store import (
    AccountsError,
    save_accounts,
    save_refreshed,
    update_accounts,
    upsert_account,
    write_back_newer,
)
from ccproxy_core.core.credential import Credential

REPO = Path(__file__).resolve().parents[3]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")


def cred(name: str, n: int = 1, expires: float = 1_800_000_000.0) -> Credential:
    return Credential(name, "oauth", f"sk-ant-oat01-{name}-{n}", f"sk-ant-ort01-{name}-{n}", expires_at=expires + n)


def on_disk(path: Path) -> dict[str, Any]:
    accounts: dict[str, Any] = orjson.loads(path.read_bytes())["accounts"]
    return accounts


def editor_save(path: Path, change: Any) -> None:
    """What a text editor does: read, change, save by rename (no lock)."""
    doc = orjson.loads(path.read_bytes())
    change(doc["accounts"])
    tmp = path.with_name("editor.tmp")
    tmp.write_bytes(orjson.dumps(doc))
    tmp.replace(path)


def test_threads_writing_different_accounts_lose_none(tmp_path: Path) -> None:
    """Four threads adding 15 accounts each to one file leave all 60 on disk."""
    path = tmp_path / "accounts.json"

    def add(t: int) -> None:
        for i in range(15):
            upsert_account(path, cred(f"t{t}-{i}"))

    threads = [threading.Thread(target=add, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(on_disk(path)) == 60


WRITER = """
import sys
from pathlib import Path
from ccproxy_core.accounts.store import upsert_account
from ccproxy_core.core.credential import Credential
path, prefix = Path(sys.argv[1]), sys.argv[2]
for i in range(int(sys.argv[3])):
    upsert_account(path, Credential(f"{prefix}-{i}", "oauth", "sk-ant-oat01-x", "sk-ant-ort01-x", expires_at=1.8e9))
"""


@posix_only
@pytest.mark.slow
def test_processes_and_threads_writing_one_file_lose_none(tmp_path: Path) -> None:
    """Two processes and two threads adding 30 accounts each leave all 120 on disk (the flock)."""
    path = tmp_path / "accounts.json"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"p{n}", "30"], cwd=REPO) for n in range(2)]

    def add(t: int) -> None:
        for i in range(30):
            upsert_account(path, cred(f"t{t}-{i}"))

    threads = [threading.Thread(target=add, args=(t,)) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait() for p in procs] == [0, 0]
    names = set(on_disk(path))
    print(f"\naccounts on disk after 120 concurrent adds from 2 processes and 2 threads: {len(names)}")
    assert len(names) == 120


def test_a_refresh_writes_only_its_own_account(tmp_path: Path) -> None:
    """A refresh replaces its account's tokens and keeps every other account and unknown field."""
    path = tmp_path / "accounts.json"
    save_accounts(path, [cred("a"), cred("b")])
    editor_save(path, lambda accounts: accounts["a"].update(email="a@example.com"))
    assert save_refreshed(path, cred("a", 2), "sk-ant-ort01-a-1") == []
    disk = on_disk(path)
    assert disk["a"]["refreshToken"] == "sk-ant-ort01-a-2" and disk["a"]["email"] == "a@example.com"
    assert disk["b"]["refreshToken"] == "sk-ant-ort01-b-1"


def test_a_refresh_never_brings_back_an_account_removed_by_hand(tmp_path: Path) -> None:
    """An account deleted from the file while its refresh ran stays deleted."""
    path = tmp_path / "accounts.json"
    save_accounts(path, [cred("a"), cred("b")])
    editor_save(path, lambda accounts: accounts.pop("a"))
    warnings = save_refreshed(path, cred("a", 2), "sk-ant-ort01-a-1")
    assert list(on_disk(path)) == ["b"]
    assert "no longer in" in warnings[0]


def test_a_refresh_keeps_a_newer_login_in_the_file(tmp_path: Path) -> None:
    """Tokens that a new login wrote while the refresh ran (newer, other chain) are kept."""
    path = tmp_path / "accounts.json"
    save_accounts(path, [cred("a", 5)])
    warnings = save_refreshed(path, cred("a", 2), "sk-ant-ort01-a-1")
    assert on_disk(path)["a"]["refreshToken"] == "sk-ant-ort01-a-5"
    assert "newer tokens" in warnings[0]


def test_write_back_replaces_only_older_tokens_and_adds_nothing(tmp_path: Path) -> None:
    """The pool's tokens go back over older ones only; newer and absent accounts are left alone."""
    path = tmp_path / "accounts.json"
    save_accounts(path, [cred("old", 1), cred("new", 5), cred("same", 3)])
    pool = [cred("old", 4), cred("new", 2), cred("same", 3), cred("gone", 9)]
    assert write_back_newer(path, pool) == ["old"]
    disk = on_disk(path)
    assert sorted(disk) == ["new", "old", "same"]
    assert [disk[n]["refreshToken"][-1] for n in ("old", "new", "same")] == ["4", "5", "3"]
    assert write_back_newer(path, pool) == []


def test_an_editor_save_between_read_and_write_is_merged_not_overwritten(tmp_path: Path) -> None:
    """When an editor saves while a writer holds its copy, the writer merges into the editor's file."""
    path = tmp_path / "accounts.json"
    save_accounts(path, [cred("a")])
    calls = 0

    def change(accounts: dict[str, Any]) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:  # the editor saves after we read
            editor_save(path, lambda acc: acc.update(hand=store._entry(cred("hand"))))
        accounts["a"] = store._entry(cred("a", 2))
        return True

    update_accounts(path, change)
    assert calls == 2
    assert sorted(on_disk(path)) == ["a", "hand"]
    assert on_disk(path)["a"]["refreshToken"] == "sk-ant-ort01-a-2"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the atomic exchange (renameat2) is Linux's")
def test_an_editor_save_landing_at_the_very_moment_of_the_write_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An editor's rename that lands after every check and just before ours is not destroyed: the
    atomic exchange hands its bytes back and the writer merges them (a plain rename lost them)."""
    path = tmp_path / "accounts.json"
    save_accounts(path, [cred("a")])
    real_swap_in = store.swap_in
    saves = 0

    def racing_swap_in(target: Path, data: bytes, **kwargs: Any) -> Any:
        nonlocal saves
        if saves == 0:
            saves += 1
            editor_save(path, lambda acc: acc.update(hand=store._entry(cred("hand"))))
        return real_swap_in(target, data, **kwargs)

    monkeypatch.setattr(store, "swap_in", racing_swap_in)
    update_accounts(path, lambda accounts: accounts.update(a=store._entry(cred("a", 2))) or True)
    assert sorted(on_disk(path)) == ["a", "hand"]
    assert on_disk(path)["a"]["refreshToken"] == "sk-ant-ort01-a-2"


def test_a_file_caught_mid_edit_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A half-written file (an editor writing in place) is read again before it is called broken."""
    path = tmp_path / "accounts.json"
    path.write_bytes(b'{"version": 1, "accou')

    def editor_finishes(_: float) -> None:
        path.write_bytes(orjson.dumps({"version": 1, "accounts": {"hand": store._entry(cred("hand"))}}))

    monkeypatch.setattr(store, "time", SimpleNamespace(sleep=editor_finishes))
    upsert_account(path, cred("a"))
    assert sorted(on_disk(path)) == ["a", "hand"]
    assert not (tmp_path / "accounts.json.broken").exists()


def test_import_refuses_a_file_that_stays_broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a fallback (import, login) a broken file is refused, never rebuilt without its accounts."""
    path = tmp_path / "accounts.json"
    path.write_bytes(b"{ broken")
    monkeypatch.setattr(store, "time", SimpleNamespace(sleep=lambda _: None))
    with pytest.raises(AccountsError, match="invalid JSON"):
        upsert_account(path, cred("a"))
    assert path.read_bytes() == b"{ broken"


@posix_only
def test_a_held_lock_times_out_with_what_to_do(tmp_path: Path) -> None:
    """A writer that waits too long for another process's lock says which file and to try again."""
    import fcntl

    path = tmp_path / "accounts.json"
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: as good as another process
        with pytest.raises(LockTimeout, match=r"accounts.json.lock.*try again"), locked(path, timeout=0.05):
            pass
    finally:
        os.close(fd)
    with locked(path, timeout=0.05):  # released with its descriptor
        pass
