"""accounts.json: strict reading, atomic private writes that survive kill -9, and live reload."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from ccproxy_core.accounts.store import (
    AccountsError,
    AccountsFileMissing,
    check_permissions,
    load_accounts,
    read_state,
    save_accounts,
    save_state,
    state_path,
    upsert_account,
)
from ccproxy_core.accounts.watch import AccountsWatcher, Reload
from ccproxy_core.config import file_watch
from ccproxy_core.core.credential import Credential

REPO = Path(__file__).resolve().parents[3]
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX permissions and signals")


def cred(name: str, n: int = 1) -> Credential:
    return Credential(name, "oauth", f"sk-ant-oat01-{name}-{n}", f"sk-ant-ort01-{name}-{n}", expires_at=1_800_000_000.5)


def doc(**accounts: dict[str, object]) -> bytes:
    return orjson.dumps({"version": 1, "accounts": accounts})


def entry(token: str = "tok") -> dict[str, object]:
    return {
        "accessToken": f"sk-ant-oat01-{token}",
        "refreshToken": f"sk-ant-ort01-{token}",
        "expiresAt": 1_800_000_000_000,
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- reading and writing ----------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    """What is saved loads back as the same credentials, expiry in epoch milliseconds on disk."""
    path = tmp_path / "claude" / "accounts.json"
    creds = [cred("work"), cred("home")]
    save_accounts(path, creds)
    assert load_accounts(path) == (creds, [])
    assert orjson.loads(path.read_bytes())["accounts"]["work"]["expiresAt"] == 1_800_000_000_500
    # no temp file left behind; the writers' lock file stays (deleting it would race a waiter)
    assert sorted(p.name for p in path.parent.iterdir()) == ["accounts.json", "accounts.json.lock"]


@posix_only
def test_files_are_written_private(tmp_path: Path) -> None:
    """A new file is 0600, and a save over a world-readable file makes it 0600 too."""
    path = tmp_path / "new" / "accounts.json"
    save_accounts(path, [cred("a")])
    assert mode(path) == 0o600
    path.chmod(0o644)
    save_accounts(path, [cred("a")])
    assert mode(path) == 0o600


@posix_only
@pytest.mark.parametrize(("file_mode", "warned"), [(0o600, False), (0o400, False), (0o640, True), (0o644, True)])
def test_permission_warning(tmp_path: Path, file_mode: int, warned: bool) -> None:
    """Group or world access to the tokens is worth a warning that says how to fix it."""
    path = tmp_path / "accounts.json"
    save_accounts(path, [cred("a")])
    path.chmod(file_mode)
    warning = check_permissions(path)
    assert (warning is not None) == warned
    if warning:
        assert f"chmod 600 {path}" in warning


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("Work", entry(), "names are 1-32 characters"),
        ("x" * 33, entry(), "names are 1-32 characters"),
        ("a b", entry(), "names are 1-32 characters"),
        ("nodict", "sk-ant-oat01", "expected an object"),
        ("noaccess", {**entry(), "accessToken": ""}, "'accessToken' must be a non-empty string"),
        ("norefresh", {k: v for k, v in entry().items() if k != "refreshToken"}, "'refreshToken'"),
        ("badexpiry", {**entry(), "expiresAt": "tomorrow"}, "'expiresAt' must be a number"),
        ("boolexpiry", {**entry(), "expiresAt": True}, "'expiresAt' must be a number"),
    ],
)
def test_invalid_entries_are_skipped_with_a_warning(tmp_path: Path, name: str, value: object, problem: str) -> None:
    """One bad entry is skipped and named in a warning; the good ones still load."""
    path = tmp_path / "accounts.json"
    path.write_bytes(orjson.dumps({"version": 1, "accounts": {"good_1": entry(), name: value}}))
    creds, warnings = load_accounts(path)
    assert [c.name for c in creds] == ["good_1"]
    assert len(warnings) == 1
    assert problem in warnings[0]
    assert repr(name) in warnings[0]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"version": 1,\n "accounts": {"a": }}', r"accounts.json: invalid JSON at line 2, column 20"),
        (b"", r"accounts.json: invalid JSON at line 1, column 1"),
        (b'{"version": 2, "accounts": {}}', r"unsupported version 2"),
        (b'{"version": 1}', r"'accounts' must be an object"),
        (b"[]", r"expected a JSON object"),
    ],
)
def test_broken_files_are_refused_with_file_and_position(tmp_path: Path, raw: bytes, message: str) -> None:
    """A file that is not the accounts format is refused whole, naming the file and where it broke."""
    path = tmp_path / "accounts.json"
    path.write_bytes(raw)
    with pytest.raises(AccountsError, match=message):
        load_accounts(path)


def test_missing_file_is_its_own_error(tmp_path: Path) -> None:
    """A missing file is distinguishable from a broken one."""
    with pytest.raises(AccountsFileMissing, match="file not found"):
        load_accounts(tmp_path / "accounts.json")


def test_a_missing_version_is_read_as_1_with_a_warning(tmp_path: Path) -> None:
    """Hand-written files without a version still load."""
    path = tmp_path / "accounts.json"
    path.write_bytes(orjson.dumps({"accounts": {"a": entry()}}))
    creds, warnings = load_accounts(path)
    assert [c.name for c in creds] == ["a"]
    assert "no 'version'" in warnings[0]


def test_upsert_keeps_other_accounts_and_unknown_fields(tmp_path: Path) -> None:
    """Updating one account re-reads the file: other accounts and extra fields survive."""
    path = tmp_path / "accounts.json"
    path.write_bytes(doc(a={**entry("a"), "email": "a@example.com"}, b=entry("b")))
    assert upsert_account(path, cred("a", 2)) == []
    data = orjson.loads(path.read_bytes())["accounts"]
    assert data["a"]["email"] == "a@example.com"
    assert data["a"]["accessToken"] == "sk-ant-oat01-a-2"
    assert data["b"] == entry("b")


def test_upsert_creates_a_missing_file(tmp_path: Path) -> None:
    """The first account creates the file."""
    path = tmp_path / "accounts.json"
    upsert_account(path, cred("a"))
    assert load_accounts(path) == ([cred("a")], [])


def test_upsert_over_a_broken_file_keeps_its_bytes_and_saves_the_token(tmp_path: Path) -> None:
    """A refreshed token is saved even over a broken file, whose bytes are kept aside."""
    path = tmp_path / "accounts.json"
    path.write_bytes(b'{"version": 1, "acc')
    warnings = upsert_account(path, cred("a", 2), fallback=[cred("a"), cred("b")])
    assert load_accounts(path)[0] == [cred("a", 2), cred("b")]
    assert (tmp_path / "accounts.json.broken").read_bytes() == b'{"version": 1, "acc'
    assert "accounts.json.broken" in warnings[0]


def test_temp_files_left_by_a_killed_writer_are_swept(tmp_path: Path) -> None:
    """A save removes temp files abandoned minutes ago, never one a live writer may be using."""
    path = tmp_path / "accounts.json"
    stale, fresh = tmp_path / ".accounts.json.old1.tmp", tmp_path / ".accounts.json.new1.tmp"
    for temp in (stale, fresh):
        temp.write_bytes(b"{")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    save_accounts(path, [cred("a")])
    assert not stale.exists()
    assert fresh.exists()


def test_state_file_beside_the_accounts(tmp_path: Path) -> None:
    """Runtime state lives in accounts.state.json, written the same atomic way; a broken one is ignored."""
    path = state_path(tmp_path / "accounts.json")
    assert path == tmp_path / "accounts.state.json"
    assert read_state(path) == (None, None)
    save_state(path, {"version": 1, "accounts": {"a": {"disabled": True}}})
    assert read_state(path) == ({"version": 1, "accounts": {"a": {"disabled": True}}}, None)
    path.write_bytes(b"{")
    data, warning = read_state(path)
    assert data is None
    assert warning is not None


SAVER = """
import sys
from pathlib import Path
from ccproxy_core.accounts.store import save_accounts
from ccproxy_core.core.credential import Credential
path = Path(sys.argv[1])
sets = [[Credential(f"acct-{i}", "oauth", "a" * 4000, "r" * 100, 1.8e9) for i in range(n)] for n in (1, 40)]
print("ready", flush=True)
i = 0
while True:
    save_accounts(path, sets[i % 2])
    i += 1
"""


@posix_only
def test_kill_9_during_saves_never_leaves_a_broken_file(tmp_path: Path) -> None:
    """A writer SIGKILLed at random moments leaves the old or the new file, never a torn one."""
    path = tmp_path / "accounts.json"
    save_accounts(path, [cred("seed")])
    rng = random.Random(7)
    deadline, rounds = time.monotonic() + 2.0, 0
    while rounds < 3 or time.monotonic() < deadline:
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(path)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(rng.uniform(0.0, 0.03))
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        creds, warnings = load_accounts(path)
        assert len(creds) in (1, 40) or [c.name for c in creds] == ["seed"]
        assert warnings == []
        rounds += 1


# --- hot reload -------------------------------------------------------------------------------


async def watching(path: Path) -> tuple[AccountsWatcher, asyncio.Queue[Reload]]:
    reloads: asyncio.Queue[Reload] = asyncio.Queue()

    async def on_reload(reload: Reload) -> None:
        await reloads.put(reload)

    watcher = AccountsWatcher(path, on_reload, debounce=0.1)
    watcher.start()
    return watcher, reloads


def names(reload: Reload) -> list[str]:
    assert reload.credentials is not None, reload.error
    return [c.name for c in reload.credentials]


async def test_watcher_picks_up_in_place_edits(tmp_path: Path) -> None:
    """Writing the file in place is noticed and reported on the event loop within 2 s."""
    path = tmp_path / "accounts.json"
    save_accounts(path, [cred("a")])
    watcher, reloads = await watching(path)
    try:
        with path.open("wb") as f:
            f.write(doc(a=entry("a"), b=entry("b")))
        assert names(await asyncio.wait_for(reloads.get(), 2)) == ["a", "b"]
    finally:
        await watcher.stop()


async def test_the_file_is_watched_from_the_loop_without_a_thread(tmp_path: Path) -> None:
    """The accounts watcher looks at the file from the event loop: no thread runs, an edit is
    reported, and another file in the same directory is not."""
    path = tmp_path / "accounts.json"
    save_accounts(path, [cred("a")])
    before = set(threading.enumerate())
    watcher, reloads = await watching(path)
    try:
        assert isinstance(watcher._observer, file_watch.FileWatch) and watcher._observer.paths == [str(path)]
        assert set(threading.enumerate()) == before
        (tmp_path / "other.json").write_bytes(b"{}")  # another file in the directory: not reported
        save_accounts(path, [cred("b")])
        assert names(await asyncio.wait_for(reloads.get(), 2)) == ["b"]
        await asyncio.sleep(2 * file_watch.INTERVAL)
        assert reloads.empty()
    finally:
        await watcher.stop()


async def test_watcher_picks_up_rename_saves(tmp_path: Path) -> None:
    """Editors and atomic writers save by renaming a temp file over ours; that is noticed too."""
    path = tmp_path / "accounts.json"
    save_accounts(path, [cred("a")])
    watcher, reloads = await watching(path)
    try:
        temp = tmp_path / ".accounts.json.swp"
        temp.write_bytes(doc(c=entry("c")))
        os.replace(temp, path)
        assert names(await asyncio.wait_for(reloads.get(), 2)) == ["c"]
        save_accounts(path, [cred("d")])  # our own writer: also a rename
        assert names(await asyncio.wait_for(reloads.get(), 2)) == ["d"]
    finally:
        await watcher.stop()


async def test_last_write_wins(tmp_path: Path) -> None:
    """A burst of writes is reported once the burst settles, with the final content."""
    path = tmp_path / "accounts.json"
    save_accounts(path, [cred("a")])
    watcher, reloads = await watching(path)
    try:
        for n in range(1, 6):
            path.write_bytes(doc(**{f"n{i}": entry(str(i)) for i in range(n)}))
        last = await asyncio.wait_for(reloads.get(), 2)
        while len(names(last)) != 5:
            last = await asyncio.wait_for(reloads.get(), 2)
        assert names(last) == ["n0", "n1", "n2", "n3", "n4"]
    finally:
        await watcher.stop()


async def test_broken_file_is_reported_and_last_good_kept(tmp_path: Path) -> None:
    """A file caught mid-edit is reported as an error; the last good set stays until it is fixed."""
    path = tmp_path / "accounts.json"
    save_accounts(path, [cred("a")])
    watcher, reloads = await watching(path)
    try:
        path.write_bytes(b'{"version": 1, "accounts": {"a": ')
        broken = await asyncio.wait_for(reloads.get(), 2)
        assert broken.credentials is None
        assert isinstance(broken.error, AccountsError)
        assert "invalid JSON at line 1" in str(broken.error)
        assert watcher.last_good == (cred("a"),)
        path.write_bytes(doc(a=entry("a"), b=entry("b")))
        assert names(await asyncio.wait_for(reloads.get(), 2)) == ["a", "b"]
    finally:
        await watcher.stop()


async def test_stop_leaves_no_tasks_behind(tmp_path: Path) -> None:
    """After stop, nothing the watcher started is still running on the loop."""
    path = tmp_path / "accounts.json"
    save_accounts(path, [cred("a")])
    before = asyncio.all_tasks()
    watcher, _ = await watching(path)
    path.write_bytes(doc(b=entry("b")))
    await watcher.stop()
    assert asyncio.all_tasks() <= before
