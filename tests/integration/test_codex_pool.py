"""A pooled `kind: "codex"` provider (ChatGPT accounts) through the real server, against fakes of
ChatGPT's token endpoint and Codex backend (tests/chatgpt_fakes.py)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest

from ccproxy_core.config.model import ConfigError, structure
from tests import chatgpt_fakes
from tests.chatgpt_fakes import FakeChatGPTAuth, FakeCodexBackend
from tests.conftest import ProxyFactory
from tests.fakes import FIXTURES
from tests.integration import test_codex_cli

CODEX_REQUEST = orjson.loads(
    (FIXTURES / "codex" / "exec-shell-0001.json").read_bytes()
)  # the Codex CLI's first request, as sent
ROUTED_MODEL = "gpt-5-codex"


@pytest.fixture
async def chatgpt(aiohttp_server: Any) -> tuple[FakeChatGPTAuth, FakeCodexBackend]:
    return await chatgpt_fakes.start(aiohttp_server)


def write_accounts(path: Path, accounts: dict[str, tuple[str, str, float, str]]) -> None:
    doc = {
        "version": 1,
        "accounts": {
            name: {"accessToken": a, "refreshToken": r, "expiresAt": int(e * 1000), "accountId": acct}
            for name, (a, r, e, acct) in accounts.items()
        },
    }
    path.write_text(json.dumps(doc))
    path.chmod(0o600)


def codex_config(backend: FakeCodexBackend, accounts: Path, **extra: Any) -> dict[str, Any]:
    return {
        "providers": [
            {
                "name": "chatgpt",
                "kind": "codex",
                "auth": "oauth",
                "accounts_path": str(accounts),
                "api_base_url": backend.url,
            }
        ],
        "routes": {"default": {"provider": "chatgpt", "model": ROUTED_MODEL}},
        "openai_oauth": {"token_url": backend.auth.url},
        **extra,
    }


async def two_accounts(
    make_proxy: ProxyFactory, chatgpt: tuple[FakeChatGPTAuth, FakeCodexBackend], tmp_path: Path
) -> tuple[str, Path]:
    auth, backend = chatgpt
    later = time.time() + 8 * 24 * 3600
    (access_a, refresh_a), (access_b, refresh_b) = auth.issue("acct-a"), auth.issue("acct-b")
    accounts = tmp_path / "codex-accounts.json"
    write_accounts(accounts, {"a": (access_a, refresh_a, later, "acct-a"), "b": (access_b, refresh_b, later, "acct-b")})
    return await make_proxy(codex_config(backend, accounts)), accounts


async def codex_post(url: str, raw: bytes) -> tuple[int, bytes]:
    """One request as the Codex CLI sends it: its headers, its body bytes, a stream read to the end."""
    headers = {k: v for k, v in CODEX_REQUEST["headers"] if k.lower() not in ("host", "content-length")}
    headers["authorization"] = "Bearer codex-client-key"  # what Codex sends for its env_key
    async with aiohttp.ClientSession() as s, s.post(f"{url}/v1/responses", data=raw, headers=headers) as r:
        return r.status, await r.read()


async def test_a_429_on_one_chatgpt_account_is_invisible_to_the_codex_client(
    make_proxy: ProxyFactory, chatgpt: tuple[FakeChatGPTAuth, FakeCodexBackend], tmp_path: Path
) -> None:
    """Account a's usage limit moves every request to account b; the client sees only 200 streams."""
    _, backend = chatgpt
    backend.limited.add("acct-a")
    url, _ = await two_accounts(make_proxy, chatgpt, tmp_path)
    raw = orjson.dumps(CODEX_REQUEST["body"])
    for _ in range(3):
        status, body = await codex_post(url, raw)
        assert status == 200, body[:300]
        assert b"event: response.completed" in body
    assert [h["x-fake-status"] for h, _ in backend.requests].count("429") == 1, "a is benched after its 429"
    assert backend.served() == {"acct-b": 3}
    status_doc = await get_json(f"{url}/status")
    states = {a["name"]: a["state"] for a in status_doc["accounts"]}
    assert states == {"a": "rate_limited", "b": "available"}
    assert "eyJ" not in json.dumps(status_doc), "no token in the status API"


async def test_the_request_passes_through_with_only_the_chatgpt_credential_added(
    make_proxy: ProxyFactory, chatgpt: tuple[FakeChatGPTAuth, FakeCodexBackend], tmp_path: Path
) -> None:
    """The body is the client's bytes but `model`; the client's key is replaced by the account's bearer
    token and chatgpt-account-id, and no other header is invented (no anthropic-beta, no instructions)."""
    auth, backend = chatgpt
    url, _ = await two_accounts(make_proxy, chatgpt, tmp_path)
    raw = orjson.dumps(CODEX_REQUEST["body"])
    assert (await codex_post(url, raw))[0] == 200
    [(headers, sent)] = backend.requests
    assert sent == raw.replace(b'"model":"fake-model"', f'"model":"{ROUTED_MODEL}"'.encode(), 1)
    account = headers["chatgpt-account-id"]
    assert auth.access[headers["authorization"].removeprefix("Bearer ")] == account
    assert "codex-client-key" not in json.dumps(headers)
    assert "anthropic-beta" not in headers and "x-api-key" not in headers
    client_names = {k.lower() for k, _ in CODEX_REQUEST["headers"]}
    added = set(headers) - client_names - {"x-fake-status"}
    assert added <= {"chatgpt-account-id", "content-length", "host", "accept-encoding"}, added


async def test_the_openai_sdk_responses_api_reaches_a_chatgpt_account(
    make_proxy: ProxyFactory, chatgpt: tuple[FakeChatGPTAuth, FakeCodexBackend], tmp_path: Path
) -> None:
    """The official openai SDK's responses.create (JSON) and responses.stream work through a codex pool."""
    _, backend = chatgpt
    url, _ = await two_accounts(make_proxy, chatgpt, tmp_path)
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    answer = await client.responses.create(model="fake-model", input="hi")
    assert answer.output_text.startswith("hello from acct-")
    async with client.responses.stream(model="fake-model", input="hi") as stream:
        final = await stream.get_final_response()
    assert final.status == "completed" and final.output_text.startswith("FINAL:")
    assert sum(backend.served().values()) == 2


async def test_stale_tokens_are_refreshed_once_per_account_under_concurrent_requests(
    make_proxy: ProxyFactory, chatgpt: tuple[FakeChatGPTAuth, FakeCodexBackend], tmp_path: Path
) -> None:
    """20 concurrent requests on two accounts whose tokens the backend no longer takes: each account is
    refreshed exactly once (single-flight), every request then succeeds, and the new tokens are in
    the accounts file (its accountId kept, mode 0600)."""
    auth, backend = chatgpt
    auth.delay = 0.2  # every request arrives while the refreshes are in flight
    _, refresh_a = auth.issue("acct-a")
    _, refresh_b = auth.issue("acct-b")
    later = time.time() + 8 * 24 * 3600  # the file still believes in them
    accounts = tmp_path / "codex-accounts.json"
    write_accounts(
        accounts, {"a": ("stale-a", refresh_a, later, "acct-a"), "b": ("stale-b", refresh_b, later, "acct-b")}
    )
    url = await make_proxy(codex_config(backend, accounts))
    raw = orjson.dumps({"model": "fake-model", "input": "hi", "stream": True})
    results = await asyncio.gather(*(codex_post(url, raw) for _ in range(20)))
    assert [status for status, _ in results] == [200] * 20
    spent = sorted(body["refresh_token"] for body in auth.grants("refresh_token"))
    assert spent == sorted([refresh_a, refresh_b]), "one refresh per account, no refresh token used twice"
    saved = json.loads(accounts.read_text())["accounts"]
    for name, account in (("a", "acct-a"), ("b", "acct-b")):
        assert saved[name]["accountId"] == account
        assert auth.access[saved[name]["accessToken"]] == account, "the file holds the live token"
        assert saved[name]["refreshToken"] in auth.refresh_tokens
    assert accounts.stat().st_mode & 0o777 == 0o600
    served = backend.served()
    assert sum(served.values()) == 20 and set(served) <= {"acct-a", "acct-b"}
    assert {a["name"] for a in (await get_json(f"{url}/status"))["accounts"]} == {"a", "b"}


async def test_a_refused_refresh_token_asks_for_login_openai(
    make_proxy: ProxyFactory, chatgpt: tuple[FakeChatGPTAuth, FakeCodexBackend], tmp_path: Path
) -> None:
    """A spent refresh token marks the account auth_error with the command that fixes it."""
    _, backend = chatgpt
    accounts = tmp_path / "codex-accounts.json"
    write_accounts(accounts, {"a": ("stale-a", "rt_spent", time.time() + 3600, "acct-a")})
    url = await make_proxy(codex_config(backend, accounts))
    status, _ = await codex_post(url, orjson.dumps({"model": "m", "input": "hi"}))
    assert status == 503  # the pool's answer when its only account cannot be used
    [account] = (await get_json(f"{url}/status"))["accounts"]
    assert account["state"] == "auth_error"
    assert "ccproxy auth login-openai a" in account["lastError"]


@pytest.mark.parametrize("client", ["messages", "chat"])
async def test_messages_and_chat_clients_routed_to_codex_get_a_400_saying_why(
    make_proxy: ProxyFactory, chatgpt: tuple[FakeChatGPTAuth, FakeCodexBackend], tmp_path: Path, client: str
) -> None:
    """The scope rule: a codex provider serves Responses clients only; others get a 400 naming the
    provider, the rule and the kinds that can serve them, and nothing reaches ChatGPT."""
    _, backend = chatgpt
    url, _ = await two_accounts(make_proxy, chatgpt, tmp_path)
    if client == "messages":
        with pytest.raises(anthropic.BadRequestError) as caught:
            await anthropic.AsyncAnthropic(base_url=url, api_key="unused", max_retries=0).messages.create(
                model="claude-opus-4-8", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )
        message = caught.value.body["error"]["message"]  # type: ignore[index]
    else:
        with pytest.raises(openai.BadRequestError) as caught_chat:
            await openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0).chat.completions.create(
                model="gpt-5", messages=[{"role": "user", "content": "hi"}]
            )
        message = caught_chat.value.body["message"]  # type: ignore[index]
    assert "'chatgpt' is kind 'codex'" in message
    assert "only OpenAI Responses requests" in message
    assert "anthropic, openai or responses" in message
    assert backend.requests == []


def test_a_codex_provider_needs_oauth_and_its_own_accounts_file() -> None:
    """kind codex without auth oauth or accounts_path is refused at load, saying what to set."""
    with pytest.raises(ConfigError) as caught:
        structure({"providers": [{"name": "chatgpt", "kind": "codex", "api_key": "sk-x"}]})
    text = str(caught.value)
    assert "providers.0.auth: provider 'chatgpt' (kind 'codex') serves ChatGPT accounts: set auth: \"oauth\"" in text
    assert "providers.0.accounts_path: provider 'chatgpt' (kind 'codex') needs a file of its own" in text


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return await r.json()


CALL_STREAM = (FIXTURES / "codex" / "exec-shell-0001.response.sse").read_bytes()  # exec_command, please


def codex_script(body: dict[str, Any]) -> bytes:
    """First turn: call exec_command; once its output comes back: a final message."""
    done = any(item.get("type") == "function_call_output" for item in body.get("input", []))
    return chatgpt_fakes.STREAM if done else CALL_STREAM


@pytest.mark.slow
@pytest.mark.skipif(test_codex_cli.CODEX is None, reason="Codex CLI is not installed (npm @openai/codex)")
async def test_codex_cli_runs_a_shell_command_on_pooled_chatgpt_accounts(
    make_proxy: ProxyFactory, chatgpt: tuple[FakeChatGPTAuth, FakeCodexBackend], tmp_path: Path
) -> None:
    """The real Codex CLI through ccproxy to a codex pool whose first account is at its usage limit:
    the 429 never reaches Codex, the command runs, its output goes up in the second request, and
    Codex prints the final answer; every upstream request carries only a pooled ChatGPT credential."""
    _, backend = chatgpt
    backend.limited.add("acct-a")
    backend.script = codex_script
    url, _ = await two_accounts(make_proxy, chatgpt, tmp_path)
    code, stdout, stderr = await test_codex_cli.run_codex(url, tmp_path / "codex-home")
    assert code == 0, stderr[-3000:]
    served = [orjson.loads(raw) for headers, raw in backend.requests if headers["x-fake-status"] == "200"]
    assert len(served) == 2, stderr[-3000:]
    outputs = [i["output"] for i in served[1]["input"] if i.get("type") == "function_call_output"]
    assert test_codex_cli.EXPECTED in json.dumps(outputs), "the command really ran"
    assert "FINAL: the tool returned" in stdout
    assert {h["chatgpt-account-id"] for h, _ in backend.requests} <= {"acct-a", "acct-b"}
    assert all("sk-codex-test" not in json.dumps(h) for h, _ in backend.requests)


async def until(check: Any, what: str) -> None:
    for _ in range(60):  # within 3 s
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(what)


async def test_a_token_near_expiry_is_refreshed_in_the_background_with_chatgpts_grant(
    make_proxy: ProxyFactory, chatgpt: tuple[FakeChatGPTAuth, FakeCodexBackend], tmp_path: Path
) -> None:
    """Inside rotation.refresh_buffer_seconds the scheduler refreshes the account once, with no request
    waiting, as a JSON refresh grant with scope; the file then holds the new tokens and the account id."""
    auth, backend = chatgpt
    access, refresh = auth.issue("acct-a")
    accounts = tmp_path / "codex-accounts.json"
    write_accounts(accounts, {"a": (access, refresh, time.time() + 60, "acct-a")})
    await make_proxy(codex_config(backend, accounts))

    async def refreshed() -> bool:
        return bool(json.loads(accounts.read_text())["accounts"]["a"]["refreshToken"] != refresh)

    await until(refreshed, "the account was not refreshed before its expiry")
    [grant] = auth.grants("refresh_token")
    assert grant == {
        "client_id": chatgpt_fakes.CLIENT_ID,
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "scope": "openid profile email",
    }
    saved = json.loads(accounts.read_text())["accounts"]["a"]
    assert saved["accountId"] == "acct-a" and auth.access[saved["accessToken"]] == "acct-a"
    assert saved["expiresAt"] > (time.time() + 9 * 86400) * 1000, "the new access token's exp"
    assert backend.requests == []


async def test_an_account_added_to_the_file_serves_with_its_own_account_id(
    make_proxy: ProxyFactory, chatgpt: tuple[FakeChatGPTAuth, FakeCodexBackend], tmp_path: Path
) -> None:
    """Hot reload reads accountId too: an account added by hand serves with its own chatgpt-account-id."""
    auth, backend = chatgpt
    later = time.time() + 8 * 24 * 3600
    access_a, refresh_a = auth.issue("acct-a")
    accounts = tmp_path / "codex-accounts.json"
    write_accounts(accounts, {"a": (access_a, refresh_a, later, "acct-a")})
    url = await make_proxy(codex_config(backend, accounts))
    access_c, refresh_c = auth.issue("acct-c")
    write_accounts(accounts, {"a": (access_a, refresh_a, later, "acct-a"), "c": (access_c, refresh_c, later, "acct-c")})

    async def two() -> bool:
        return len((await get_json(f"{url}/status"))["accounts"]) == 2

    await until(two, "the added account was not picked up")
    raw = orjson.dumps({"model": "m", "input": "hi"})
    results = [await codex_post(url, raw) for _ in range(4)]
    assert [status for status, _ in results] == [200] * 4
    assert backend.served() == {"acct-a": 2, "acct-c": 2}
