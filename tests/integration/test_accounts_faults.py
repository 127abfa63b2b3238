"""accounts.json under concurrent writers, through the real server: nothing lost, nothing stale.

Three OAuth accounts are refreshed at once, round after round, while a user edits the file by
hand (an editor's read-modify-save by rename, sometimes from a copy read before the refreshes)
or runs `ccproxy auth import` in another process. The token endpoint is the single-use fake:
a refresh token it still accepts is the newest one the server holds, so "stale on disk" means
"on disk but no longer valid".
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import ProxyFactory
from tests.fakes import FakeTokenEndpoint, FakeUpstream

REPO = Path(__file__).resolve().parents[2]
REFRESHED = ("a", "b", "c")
LATER = time.time() + 8 * 3600  # outside the refresh buffer: only the manual refreshes run


def entry(access: str, refresh: str, expires: float = LATER) -> dict[str, Any]:
    return {"accessToken": access, "refreshToken": refresh, "expiresAt": int(expires * 1000)}


def editor_save(path: Path, doc: dict[str, Any]) -> None:
    """Save as editors do: a new file renamed over the old one, no lock taken."""
    tmp = path.with_name(".editor-save.tmp")
    tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    tmp.chmod(0o600)
    tmp.replace(path)


def oauth_config(fake: FakeUpstream, accounts: Path, token_url: str) -> dict[str, Any]:
    return {
        "providers": [
            {
                "name": "claude",
                "kind": "anthropic",
                "auth": "oauth",
                "accounts_path": str(accounts),
                "api_base_url": fake.url,
            }
        ],
        "oauth": {"token_url": token_url},
    }


async def start(
    make_proxy: ProxyFactory, fake: FakeUpstream, tmp_path: Path, endpoint: FakeTokenEndpoint
) -> tuple[str, Path]:
    accounts = tmp_path / "accounts.json"
    editor_save(
        accounts, {"version": 1, "accounts": {n: entry(f"sk-ant-oat01-{n}0", endpoint.issue()) for n in REFRESHED}}
    )
    return await make_proxy(oauth_config(fake, accounts, endpoint.url)), accounts


async def refresh(session: aiohttp.ClientSession, url: str, name: str) -> tuple[int, Any, Any]:
    async with session.post(f"{url}/status/accounts/{name}/refresh") as r:
        return r.status, await r.json(content_type=None), r.headers.copy()


def figures(accounts: Path, endpoint: FakeTokenEndpoint, expected: set[str]) -> tuple[int, int]:
    """(accounts on disk holding a spent refresh token, expected accounts missing from disk)."""
    disk = orjson.loads(accounts.read_bytes())["accounts"]
    stale = sum(1 for n in REFRESHED if n not in disk or disk[n]["refreshToken"] not in endpoint.valid)
    return stale, len(expected - set(disk))


async def settled(accounts: Path, endpoint: FakeTokenEndpoint, expected: set[str]) -> tuple[int, int]:
    """The figures once the file is quiet: the watcher has reloaded and written newer tokens back."""
    for _ in range(100):  # up to ~5 s on a busy machine; usually one debounce (0.3 s)
        if figures(accounts, endpoint, expected) == (0, 0):
            break
        await asyncio.sleep(0.05)
    return figures(accounts, endpoint, expected)


async def test_fifty_rounds_of_three_refreshes_and_a_hand_edit_leave_nothing_stale_or_lost(
    make_proxy: ProxyFactory, fake: FakeUpstream, tmp_path: Path, token_endpoint: FakeTokenEndpoint
) -> None:
    """50 rounds of 3 simultaneous refreshes plus a hand-added account: 0 stale tokens, 0 lost accounts."""
    url, accounts = await start(make_proxy, fake, tmp_path, token_endpoint)
    rng = random.Random(50)
    added: set[str] = set()

    async def hand_edit(i: int, early_copy: bytes | None) -> None:
        await asyncio.sleep(rng.uniform(0.0, 0.02))
        doc = orjson.loads(early_copy if early_copy is not None else accounts.read_bytes())
        doc["accounts"][f"hand-{i}"] = entry(f"sk-ant-oat01-hand{i}", f"sk-ant-ort01-hand{i}")
        editor_save(accounts, doc)
        added.add(f"hand-{i}")

    statuses: list[int] = []
    async with aiohttp.ClientSession() as session:
        for i in range(50):
            # Every other round the editor saves a copy read before the refreshes (stale tokens).
            early = accounts.read_bytes() if i % 2 == 0 else None
            edit = asyncio.ensure_future(hand_edit(i, early))
            answers = await asyncio.gather(*(refresh(session, url, n) for n in REFRESHED))
            await edit
            statuses += [status for status, _, _ in answers]
    stale, lost = await settled(accounts, token_endpoint, added | set(REFRESHED))
    print(
        f"\n50 rounds x 3 simultaneous refreshes + a hand edit: {stale} stale refresh tokens on disk, {lost} lost accounts"
    )
    assert statuses == [200] * 150
    assert (stale, lost) == (0, 0)


async def test_a_hand_edit_from_a_stale_copy_gets_the_newer_tokens_written_back(
    make_proxy: ProxyFactory, fake: FakeUpstream, tmp_path: Path, token_endpoint: FakeTokenEndpoint
) -> None:
    """A file saved with tokens older than the server's is rewritten with the newer ones; the edit stays."""
    url, accounts = await start(make_proxy, fake, tmp_path, token_endpoint)
    copy = orjson.loads(accounts.read_bytes())
    async with aiohttp.ClientSession() as session:
        assert (await refresh(session, url, "a"))[0] == 200
    copy["accounts"]["d"] = entry("sk-ant-oat01-d0", "sk-ant-ort01-d0")
    editor_save(accounts, copy)  # a's spent refresh token is back on disk
    assert await settled(accounts, token_endpoint, {"a", "b", "c", "d"}) == (0, 0)


CLAUDE_CODE_LOGIN = {"claudeAiOauth": {"accessToken": "", "refreshToken": "", "expiresAt": 0, "scopes": []}}


@pytest.mark.slow
async def test_auth_import_in_another_process_while_the_server_refreshes(
    make_proxy: ProxyFactory, fake: FakeUpstream, tmp_path: Path, token_endpoint: FakeTokenEndpoint
) -> None:
    """`ccproxy auth import` run as a process during continuous refreshes: every import kept, none stale."""
    url, accounts = await start(make_proxy, fake, tmp_path, token_endpoint)
    imported = {f"imported-{k}" for k in range(4)}
    sources = []
    for name in sorted(imported):
        login = orjson.loads(orjson.dumps(CLAUDE_CODE_LOGIN))
        login["claudeAiOauth"].update(
            accessToken=f"sk-ant-oat01-{name}", refreshToken=f"sk-ant-ort01-{name}", expiresAt=int(LATER * 1000)
        )
        source = tmp_path / f"{name}.credentials.json"
        source.write_bytes(orjson.dumps(login))
        sources.append((name, source))
    done = asyncio.Event()
    rounds = 0

    async def keep_refreshing(session: aiohttp.ClientSession) -> None:
        nonlocal rounds
        while not done.is_set():
            answers = await asyncio.gather(*(refresh(session, url, n) for n in REFRESHED))
            assert [status for status, _, _ in answers] == [200] * 3
            rounds += 1

    async def auth_import(name: str, source: Path) -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ccproxy_core",
            "auth",
            "import",
            "--from",
            str(source),
            "--name",
            name,
            "--accounts",
            str(accounts),
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return proc.returncode

    async with aiohttp.ClientSession() as session:
        refresher = asyncio.ensure_future(keep_refreshing(session))
        try:
            for pair in (sources[:2], sources[2:]):
                await asyncio.gather(*(auth_import(name, source) for name, source in pair))
        finally:
            done.set()
            await refresher
    stale, lost = await settled(accounts, token_endpoint, imported | set(REFRESHED))
    print(f"\n4 `ccproxy auth import` processes during {rounds} refresh rounds: {stale} stale, {lost} lost")
    assert rounds > 0
    assert (stale, lost) == (0, 0)


async def test_refreshing_an_account_whose_token_was_spent_elsewhere_is_a_409_naming_the_fix(
    make_proxy: ProxyFactory, fake: FakeUpstream, tmp_path: Path, token_endpoint: FakeTokenEndpoint
) -> None:
    """invalid_grant from the token endpoint: 409 in the Anthropic error shape, naming the account and the login."""
    url, _ = await start(make_proxy, fake, tmp_path, token_endpoint)
    token_endpoint.valid.clear()  # another client (Claude Code) used every refresh token
    async with aiohttp.ClientSession() as session:
        status, body, _ = await refresh(session, url, "b")
        async with session.get(f"{url}/status/accounts/b") as r:
            account = await r.json()
    assert status == 409
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "'b'" in body["error"]["message"] and "ccproxy auth login --name b" in body["error"]["message"]
    assert account["state"] == "auth_error"


async def test_a_failing_token_endpoint_is_a_503_with_retry_after(
    make_proxy: ProxyFactory, fake: FakeUpstream, tmp_path: Path, token_endpoint: FakeTokenEndpoint
) -> None:
    """A 5xx from the token endpoint is temporary: 503 with retry-after, and the account keeps working."""
    url, accounts = await start(make_proxy, fake, tmp_path, token_endpoint)
    before = accounts.read_bytes()
    token_endpoint.fail_with.append(502)
    async with aiohttp.ClientSession() as session:
        status, body, headers = await refresh(session, url, "a")
        async with session.get(f"{url}/status/accounts/a") as r:
            account = await r.json()
    assert status == 503
    assert int(headers["retry-after"]) >= 1
    assert "'a'" in body["error"]["message"] and "try again" in body["error"]["message"]
    assert account["state"] == "available"
    assert accounts.read_bytes() == before
