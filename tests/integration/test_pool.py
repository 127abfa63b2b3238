"""The credential pool through the real server: failover on 429, pins, OAuth, hot reload, restarts."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import orjson
import pytest
from aiohttp.test_utils import TestServer

from ccproxy_core.config.model import structure
from ccproxy_core.server.app import create_app
from tests.conftest import ProxyFactory
from tests.fakes import FakeTokenEndpoint, FakeUpstream, Reply, Stream, json_reply, recorded, sse_events

REQUEST = {"model": "claude-opus-4-8", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
EXHAUSTED_KEY = json_reply("anthropic/error_429_rate_limit.json", 429, "anthropic/error_429_headers_api_key_2024.json")
EXHAUSTED_OAUTH = Reply(
    status=429,
    body=recorded("anthropic/error_429_oauth_account_rate_limit.json"),
    headers={
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-reset": str(int(time.time()) + 3600),
        "retry-after": "684",
    },
)


def keys_config(fake: FakeUpstream, keys: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "providers": [{"name": "anthropic", "kind": "anthropic", "api_base_url": fake.url, "api_keys": keys}],
        **extra,
    }


def write_accounts(path: Path, accounts: dict[str, tuple[str, str, float]]) -> None:
    doc = {
        "version": 1,
        "accounts": {
            name: {"accessToken": a, "refreshToken": r, "expiresAt": int(e * 1000)}
            for name, (a, r, e) in accounts.items()
        },
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.chmod(0o600)
    tmp.replace(path)  # save by rename, as editors do


def oauth_config(
    fake: FakeUpstream, accounts_path: Path, token_url: str = "http://127.0.0.1:9/none", **extra: Any
) -> dict[str, Any]:
    return {
        "providers": [
            {
                "name": "claude",
                "kind": "anthropic",
                "auth": "oauth",
                "accounts_path": str(accounts_path),
                "api_base_url": fake.url,
            }
        ],
        "oauth": {"token_url": token_url},
        **extra,
    }


async def post(url: str, body: dict[str, Any] = REQUEST, **kw: Any) -> tuple[int, Any, bytes]:
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/messages", json=body, **kw) as r:
        return r.status, r.headers.copy(), await r.read()


async def get(url: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return await r.json()


async def test_a_rate_limited_key_hands_the_same_request_to_the_next(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """429 on key A: the same request succeeds on key B, and the client never sees the 429."""
    fake.by_credential["ka"] = EXHAUSTED_KEY
    url = await make_proxy(keys_config(fake, ["ka", "kb"]))
    message = await anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0).messages.create(**REQUEST)
    assert message.content
    assert [r.headers["x-api-key"] for r in fake.requests] == ["ka", "kb"]
    status = await get(f"{url}/status")
    states = {a["name"]: a["state"] for a in status["accounts"]}
    assert states == {"key-1": "rate_limited", "key-2": "available"}
    assert status["rateLimitedAccounts"] == 1 and status["nextAccount"] == "key-2"
    assert "ka" not in json.dumps(status), "keys never appear in the status API"
    await post(url)
    assert fake.requests[-1].headers["x-api-key"] == "kb", "the cooling key is skipped"


async def test_a_headerless_429_fails_over_and_benches_the_key_only_briefly(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """A bare 429 is not quota: the next key serves, and the first sits out only a few seconds
    (so the requests right behind go elsewhere), not until a quota reset."""
    fake.by_credential["ka"] = Reply(
        status=429, body=b'{"type":"error","error":{"type":"rate_limit_error","message":"Error"}}'
    )
    url = await make_proxy(keys_config(fake, ["ka", "kb"]))
    assert (await post(url))[0] == 200
    accounts = {a["name"]: a for a in (await get(f"{url}/status"))["accounts"]}
    assert accounts["key-2"]["state"] == "available"
    assert accounts["key-1"]["state"] == "rate_limited"
    until = datetime.fromisoformat(accounts["key-1"]["rateLimitedUntil"].replace("Z", "+00:00")).timestamp()
    assert 0 < until - time.time() <= 6


async def test_a_request_too_big_is_not_an_account_problem(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    fake.default = Reply(status=413, body=b'{"type":"error","error":{"type":"request_too_large","message":"big"}}')
    url = await make_proxy(keys_config(fake, ["ka", "kb"]))
    assert (await post(url))[0] == 413
    assert len(fake.requests) == 1
    assert {a["state"] for a in (await get(f"{url}/status"))["accounts"]} == {"available"}


async def test_all_keys_limited_is_a_429_with_the_earliest_reset(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    fake.by_credential["ka"] = Reply(
        status=429, body=recorded("anthropic/error_429_rate_limit.json"), headers={"retry-after": "120"}
    )
    fake.by_credential["kb"] = Reply(
        status=429,
        body=recorded("anthropic/error_429_rate_limit.json"),
        headers={"retry-after": "30", "anthropic-ratelimit-requests-remaining": "0"},
    )
    url = await make_proxy(keys_config(fake, ["ka", "kb"]))
    status, _, _ = await post(url)
    assert status == 429  # the last key's own answer, since nothing else could serve
    status, headers, body = await post(url)
    assert status == 429 and orjson.loads(body)["error"]["type"] == "rate_limit_error"
    assert 25 <= int(headers["retry-after"]) <= 31
    assert len(fake.requests) == 2, "no upstream call while every key cools down"


async def test_x_account_name_pins_one_credential(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    url = await make_proxy(keys_config(fake, ["ka", "kb"]))
    for _ in range(2):
        assert (await post(url, headers={"x-account-name": "key-2"}))[0] == 200
    assert [r.headers["x-api-key"] for r in fake.requests] == ["kb", "kb"]
    status, _, body = await post(url, headers={"x-account-name": "nobody"})
    assert status == 404 and "key-1, key-2" in orjson.loads(body)["error"]["message"]
    async with aiohttp.ClientSession() as s, s.post(f"{url}/status/accounts/key-1/disable") as r:
        assert (await r.json())["newState"] == "disabled"
    status, _, body = await post(url, headers={"x-account-name": "key-1"})
    assert status == 503 and "disabled" in orjson.loads(body)["error"]["message"]
    assert "x-account-name" not in fake.requests[-1].headers


async def test_oauth_accounts_send_a_bearer_token_and_the_beta_and_change_nothing_else(
    make_proxy: ProxyFactory, fake: FakeUpstream, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.json"
    write_accounts(accounts, {"a": ("sk-ant-oat01-aaa", "sk-ant-ort01-aaa", time.time() + 8 * 3600)})
    url = await make_proxy(oauth_config(fake, accounts))
    body = orjson.loads((Path(__file__).parent.parent / "fixtures" / "claude-code" / "text-0001.json").read_bytes())
    raw = orjson.dumps(body["body"])
    headers = dict(body["headers"])
    headers.pop("Content-Length")
    headers.pop("Host")
    fake.default = Stream(sse_events("anthropic/stream_text.sse"))
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/messages?beta=true", data=raw, headers=headers) as r:
        assert r.status == 200
        await r.read()
    got = fake.requests[-1]
    assert got.body == raw, "the client's system prompt and everything else pass unchanged"
    assert got.headers["authorization"] == "Bearer sk-ant-oat01-aaa"
    assert "x-api-key" not in got.headers
    assert got.headers["anthropic-beta"] == headers["anthropic-beta"] + ",oauth-2025-04-20"
    assert got.headers["user-agent"] == headers["User-Agent"]
    assert got.query == "beta=true"


async def test_an_exhausted_subscription_fails_over_to_the_next_account(
    make_proxy: ProxyFactory, fake: FakeUpstream, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.json"
    later = time.time() + 8 * 3600
    write_accounts(accounts, {"a": ("tok-a", "ref-a", later), "b": ("tok-b", "ref-b", later)})
    fake.by_credential["tok-a"] = EXHAUSTED_OAUTH
    fake.default = Stream(sse_events("anthropic/stream_text.sse"))
    url = await make_proxy(oauth_config(fake, accounts))
    client = anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0)
    async with client.messages.stream(**REQUEST) as stream:
        assert await stream.get_final_text()
    account = await get(f"{url}/status/accounts/a")
    assert account["state"] == "rate_limited" and account["rateLimitedUntil"]
    assert "token" not in json.dumps(account).lower().replace("tokenexpires", "")


async def test_an_expired_token_is_refreshed_once_and_the_request_retried(
    make_proxy: ProxyFactory, fake: FakeUpstream, tmp_path: Path, token_endpoint: FakeTokenEndpoint
) -> None:
    """A 401 refreshes the account's token once and retries; the new tokens are on disk."""
    endpoint = token_endpoint
    refresh = endpoint.issue()
    accounts = tmp_path / "accounts.json"
    write_accounts(accounts, {"a": ("stale", refresh, time.time() + 8 * 3600)})
    fake.by_credential["stale"] = json_reply("anthropic/error_401_authentication.json", 401)
    url = await make_proxy(oauth_config(fake, accounts, endpoint.url))
    assert (await post(url))[0] == 200
    assert [r.headers["authorization"] for r in fake.requests] == ["Bearer stale", "Bearer sk-ant-oat01-a2"]
    saved = json.loads(accounts.read_text())["accounts"]["a"]
    assert saved["accessToken"] == "sk-ant-oat01-a2" and saved["refreshToken"] == "sk-ant-ort01-r2"
    assert accounts.stat().st_mode & 0o777 == 0o600


async def test_hot_reload_adds_and_removes_accounts_without_restart(
    make_proxy: ProxyFactory, fake: FakeUpstream, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.json"
    later = time.time() + 8 * 3600
    write_accounts(accounts, {"a": ("tok-a", "ref-a", later)})
    url = await make_proxy(oauth_config(fake, accounts))

    async def names() -> list[str]:
        return [a["name"] for a in await get(f"{url}/status/accounts")]

    async def until(expected: list[str]) -> None:
        for _ in range(40):  # within 2 s
            if await names() == expected:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"accounts are {await names()}, expected {expected}")

    write_accounts(accounts, {"a": ("tok-a", "ref-a", later), "b": ("tok-b", "ref-b", later)})
    await until(["a", "b"])
    accounts.write_text("{ broken mid-edit")
    await asyncio.sleep(0.6)
    assert await names() == ["a", "b"], "a broken file keeps the last good set"
    write_accounts(accounts, {"b": ("tok-b", "ref-b", later)})
    await until(["b"])
    for _ in range(3):
        assert (await post(url))[0] == 200
    assert {r.headers["authorization"] for r in fake.requests} == {"Bearer tok-b"}


async def test_100_requests_during_a_refresh_and_two_reloads_all_succeed(
    make_proxy: ProxyFactory, fake: FakeUpstream, tmp_path: Path, token_endpoint: FakeTokenEndpoint
) -> None:
    endpoint = token_endpoint
    endpoint.delay = 0.2
    accounts = tmp_path / "accounts.json"
    later = time.time() + 8 * 3600
    soon = time.time() + 60  # inside the refresh buffer: refreshed in the background at once
    ref_a = endpoint.issue()
    write_accounts(accounts, {"a": ("tok-a", ref_a, soon), "b": ("tok-b", "ref-b", later)})
    fake.default = Stream(sse_events("anthropic/stream_text.sse"), pause_after=1, pause=0.05)
    url = await make_proxy(oauth_config(fake, accounts, endpoint.url))

    seen_broken: list[str] = []

    async def watch_file() -> None:
        while True:
            try:
                json.loads(accounts.read_text())
            except json.JSONDecodeError as exc:
                seen_broken.append(str(exc))
            await asyncio.sleep(0.002)

    async def one(i: int) -> int:
        await asyncio.sleep(i * 0.005)
        return (await post(url, {**REQUEST, "stream": True}))[0]

    watcher = asyncio.ensure_future(watch_file())
    try:
        requests = asyncio.gather(*(one(i) for i in range(100)))
        await asyncio.sleep(0.1)
        current = json.loads(accounts.read_text())["accounts"]
        current["c"] = {"accessToken": "tok-c", "refreshToken": "ref-c", "expiresAt": int(later * 1000)}
        write_accounts(
            accounts, {n: (v["accessToken"], v["refreshToken"], v["expiresAt"] / 1000) for n, v in current.items()}
        )
        await asyncio.sleep(0.2)
        current = json.loads(accounts.read_text())["accounts"]
        write_accounts(
            accounts,
            {n: (v["accessToken"], v["refreshToken"], v["expiresAt"] / 1000) for n, v in current.items() if n != "c"},
        )
        statuses = await requests
    finally:
        watcher.cancel()
    assert statuses == [200] * 100
    assert seen_broken == []
    refreshes = [r["refresh_token"] for r in endpoint.requests if r["grant_type"] == "refresh_token"]
    assert refreshes == [ref_a], "one refresh, and no refresh token was ever used twice"
    final = json.loads(accounts.read_text())["accounts"]
    assert sorted(final) == ["a", "b"] and final["a"]["refreshToken"] != ref_a
    assert (await get(f"{url}/status"))["availableAccounts"] == 2


async def test_pool_state_survives_a_restart(fake: FakeUpstream, aiohttp_server: Any) -> None:
    config = structure(keys_config(fake, ["ka", "kb"]))
    first: TestServer = await aiohttp_server(create_app(config))
    async with aiohttp.ClientSession() as s, s.post(str(first.make_url("/status/accounts/key-1/disable"))) as r:
        assert r.status == 200
    await first.close()
    second: TestServer = await aiohttp_server(create_app(config))
    account = await get(str(second.make_url("/status/accounts/key-1")))
    assert account["state"] == "disabled"


async def test_health_is_degraded_when_a_provider_has_no_usable_credential(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    url = await make_proxy(keys_config(fake, ["ka"]))
    assert (await get(f"{url}/health"))["status"] == "ok"
    async with aiohttp.ClientSession() as s, s.post(f"{url}/status/accounts/key-1/disable") as r:
        assert r.status == 200
    assert (await get(f"{url}/health"))["status"] == "degraded"


@pytest.mark.parametrize("path", ["/status", "/status/accounts", "/status/accounts/key-1"])
async def test_the_status_api_needs_the_proxy_key_when_one_is_set(
    make_proxy: ProxyFactory, fake: FakeUpstream, path: str
) -> None:
    url = await make_proxy(keys_config(fake, ["ka"], apikey="proxy-secret"))
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{url}{path}") as r:
            assert r.status == 401
        async with s.get(f"{url}{path}", headers={"x-api-key": "proxy-secret"}) as r:
            assert r.status == 200
