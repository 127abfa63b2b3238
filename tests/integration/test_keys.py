"""Client keys through the real server: the admin API, each limit's refusal, attribution, secrecy."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer

from ccproxy_core.config.model import ConfigError, structure
from ccproxy_core.core import limits
from ccproxy_core.keys.model import Limits
from ccproxy_core.keys.store import KeyStore
from ccproxy_core.server.app import create_app
from ccproxy_core.server.state import STATE
from ccproxy_core.usage.ledger import INSERT, connect, default_path
from ccproxy_core.usage.record import UsageRecord
from tests.conftest import ProxyFactory
from tests.fakes import FakeUpstream, Reply, Stream, json_reply, sse_events

ADMIN = "admin-secret-key-0123456789"
REQUEST = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def config(fake: FakeUpstream, **extra: Any) -> dict[str, Any]:
    provider = {"name": "anthropic", "kind": "anthropic", "api_base_url": fake.url, "api_key": "sk-upstream-1"}
    return {"apikey": ADMIN, "providers": [provider], **extra}


async def call(
    url: str, method: str, path: str, key: str | None = ADMIN, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    headers = {"x-api-key": key} if key else {}
    async with aiohttp.ClientSession() as s, s.request(method, url + path, json=body, headers=headers) as r:
        text = await r.text()
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            data = text
        return r.status, {k.lower(): v for k, v in r.headers.items()}, data


async def create(url: str, name: str, **limits_: Any) -> str:
    status, _, doc = await call(url, "POST", "/admin/keys", body={"name": name, **limits_})
    assert status == 201, doc
    key: str = doc["api_key"]
    return key


async def message(url: str, key: str, body: dict[str, Any] = REQUEST) -> tuple[int, dict[str, str], Any]:
    return await call(url, "POST", "/v1/messages", key, body)


async def test_admin_creates_a_key_that_the_sdks_use_and_usage_is_under_its_name(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """A key from POST /admin/keys works with the anthropic SDK; the ledger, /usage and /metrics carry its name."""
    url = await make_proxy(config(fake))
    key = await create(url, "alice")
    assert key.startswith("ccp-") and len(key) > 30
    client = anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0)
    reply = await client.messages.create(**REQUEST)  # type: ignore[call-overload]
    assert reply.content
    assert fake.requests[-1].headers["x-api-key"] == "sk-upstream-1"  # the provider's key went upstream
    status, _, doc = await call(url, "GET", "/usage?group_by=client")
    assert status == 200
    assert {row["key"] for row in doc["rows"]} >= {"alice"}
    _, _, metrics = await call(url, "GET", "/metrics")
    assert 'ccproxy_client_requests_total{client="alice",status="200"} 1.0' in metrics
    assert key not in metrics


async def test_a_key_is_needed_once_keys_exist_loopback_included(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """With a key defined, a request with no key or an unknown key gets 401; the admin key still works."""
    url = await make_proxy(config(fake))
    await create(url, "alice")
    assert (await message(url, ""))[0] == 401
    status, _, doc = await message(url, "ccp-not-a-real-key")
    assert status == 401 and "not a ccproxy client key" in doc["error"]["message"]
    assert (await message(url, ADMIN))[0] == 200


async def test_a_client_key_gets_403_on_the_admin_api(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """The admin API, and every operator endpoint (providers, status, usage, metrics), answer the admin key only."""
    url = await make_proxy(config(fake))
    key = await create(url, "alice")
    for method, path in (
        ("GET", "/admin/keys"),
        ("POST", "/admin/keys"),
        ("DELETE", "/admin/keys/alice"),
        ("GET", "/providers"),
        ("POST", "/status/accounts/key-1/disable"),
        ("GET", "/usage"),
        ("GET", "/metrics"),
    ):
        status, _, doc = await call(url, method, path, key, {"name": "bob"} if method == "POST" else None)
        assert status == 403, (method, path)
        assert "admin key" in doc["error"]["message"]
    assert (await call(url, "GET", "/v1/models", key))[0] == 200
    assert (await call(url, "GET", "/providers", ADMIN))[0] == 200


async def test_rpm_refuses_with_retry_after(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """A key past its rpm (a bucket whose burst is the rpm) gets 429 naming the limit, with retry-after."""
    url = await make_proxy(config(fake))
    key = await create(url, "bursty", rpm=3)
    statuses = [(await message(url, key))[0] for _ in range(3)]
    assert statuses == [200, 200, 200]
    status, headers, doc = await message(url, key)
    assert status == 429
    assert 1 <= int(headers["retry-after"]) <= 20
    assert "3 requests per minute" in doc["error"]["message"]
    assert doc["error"]["type"] == "rate_limit_error"


async def test_model_outside_the_list_gets_403_naming_the_allowed(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """A model outside the key's globs is refused before any upstream call, in each client's dialect."""
    url = await make_proxy(config(fake))
    key = await create(url, "narrow", models="claude-haiku-*,gpt-4.1")
    status, _, doc = await message(url, key)
    assert status == 403
    assert "claude-haiku-*, gpt-4.1" in doc["error"]["message"] and "claude-sonnet-4-6" in doc["error"]["message"]
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError, match="claude-haiku"):
        await client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])
    assert fake.requests == []
    assert (await message(url, key, {**REQUEST, "model": "claude-haiku-4-5"}))[0] == 200


async def test_provider_list_removes_routing_candidates(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """A key limited to providers the request cannot route to gets 403 naming them."""
    url = await make_proxy(config(fake))
    key = await create(url, "elsewhere", providers="openai")
    status, _, doc = await message(url, key)
    assert status == 403 and "openai" in doc["error"]["message"] and "anthropic" in doc["error"]["message"]
    assert fake.requests == []


async def test_revoked_key_gets_401_at_once(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """DELETE /admin/keys/NAME: the very next request with that key is refused with 401, under the key's name."""
    url = await make_proxy(config(fake))
    key = await create(url, "leaver")
    assert (await message(url, key))[0] == 200
    status, _, doc = await call(url, "DELETE", "/admin/keys/leaver")
    assert status == 200 and doc["state"] == "revoked"
    status, _, doc = await message(url, key)
    assert status == 401 and "revoked" in doc["error"]["message"]
    _, _, rows = await call(url, "GET", "/usage/requests?since=1d")
    assert [r["status"] for r in rows["requests"] if r["client"] == "leaver"].count(401) == 1


async def test_expired_key_gets_401(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """A key past its expiry date is refused with 401 saying when it expired."""
    _, clear = KeyStore().create("old", Limits(expires_at=time.time() - 5), time.time() - 100)
    url = await make_proxy(config(fake))
    status, _, doc = await message(url, clear)
    assert status == 401 and "expired at" in doc["error"]["message"]
    assert fake.requests == []


async def test_concurrency_holds_under_50_parallel_streams(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """Concurrency 5 and 50 parallel streams: 5 streams run, 45 get 429 at once, none is queued."""
    fake.default = Stream(sse_events("anthropic/stream_text.sse"), pause_after=1, pause=1.5)
    url = await make_proxy(config(fake))
    key = await create(url, "parallel", concurrency=5)

    async def one(session: aiohttp.ClientSession) -> int:
        async with session.post(
            f"{url}/v1/messages", json={**REQUEST, "stream": True}, headers={"x-api-key": key}
        ) as r:
            await r.read()
            return r.status

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        statuses = await asyncio.gather(*(one(session) for _ in range(50)))
    assert statuses.count(200) == 5 and statuses.count(429) == 45
    assert fake.streams_started == 5
    assert (await message(url, key))[0] == 200  # the slots are free again once the streams ended


async def test_transparent_provider_with_keys_is_refused_at_start(aiohttp_server: Any) -> None:
    """A provider that forwards the client's own key cannot serve client keys: the server refuses to start."""
    KeyStore().create("alice", Limits(), time.time())
    app = create_app(structure({"providers": [{"name": "anthropic", "kind": "anthropic"}]}))
    with pytest.raises(ConfigError, match="forward the client's key"):
        await aiohttp_server(app)


async def test_keys_never_appear_in_any_output(
    make_proxy: ProxyFactory, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the create answer holds the clear key: lists, shows, errors, logs, usage rows show names and prefixes."""
    caplog.set_level(logging.DEBUG, logger="ccproxy")
    fake.queue(json_reply("anthropic/error_429_rate_limit.json", 429))
    url = await make_proxy(config(fake))
    key = await create(url, "secretive", rpm=2, models="claude-*")
    outputs: list[str] = []
    for method, path, body in (
        ("POST", "/v1/messages", REQUEST),
        ("POST", "/v1/messages", REQUEST),
        ("POST", "/v1/messages", REQUEST),
        ("POST", "/v1/messages", {**REQUEST, "model": "gpt-4.1"}),
        ("GET", "/admin/keys", None),
        ("GET", "/admin/keys/secretive", None),
        ("PATCH", "/admin/keys/secretive", {"rpm": 100}),
        ("GET", "/admin/keys", key),
        ("GET", "/usage/requests?since=1d", None),
        ("GET", "/status", None),
        ("GET", "/metrics", None),
    ):
        async with (
            aiohttp.ClientSession() as s,
            s.request(
                method, url + path, json=body if isinstance(body, dict) else None, headers={"x-api-key": key}
            ) as r,
        ):
            outputs.append(str(r.status) + str(dict(r.headers)) + (await r.text()))
        _, _, doc = await call(url, method, path, ADMIN, body if isinstance(body, dict) else None)
        outputs.append(str(doc))
    outputs += [r.getMessage() for r in caplog.records]
    text = "\n".join(outputs)
    assert "secretive" in text
    assert key not in text and key[12:] not in text


async def test_patch_changes_limits_from_the_next_request(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """PATCH /admin/keys/NAME holds from the next request; a field set to null is removed."""
    url = await make_proxy(config(fake))
    key = await create(url, "changing", models="gpt-*")
    assert (await message(url, key))[0] == 403
    status, _, doc = await call(url, "PATCH", "/admin/keys/changing", body={"models": None, "rpm": 10})
    assert status == 200 and doc["models"] == [] and doc["rpm"] == 10
    assert (await message(url, key))[0] == 200
    status, _, doc = await call(url, "PATCH", "/admin/keys/changing", body={"rpm": "lots"})
    assert status == 400 and "rpm" in doc["error"]["message"]


async def test_admin_api_errors_name_the_field(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """Bad names, duplicate names, unknown fields and unknown keys are refused with what to do."""
    url = await make_proxy(config(fake))
    await create(url, "alice")
    cases = [
        ({"name": "alice"}, 409, "exists already"),
        ({"name": "bad name!"}, 400, "name:"),
        ({"name": "bob", "rpn": 5}, 400, "rpn: not a key setting"),
        ({"name": "bob", "expires": "soon"}, 400, "expires:"),
    ]
    for body, want, text in cases:
        status, _, doc = await call(url, "POST", "/admin/keys", body=body)
        assert (status, text in doc["error"]["message"]) == (want, True), doc
    assert (await call(url, "GET", "/admin/keys/nobody"))[0] == 404


async def test_admin_api_needs_an_apikey_in_the_config(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """Without `apikey` in the config nobody is admin over HTTP: 403 saying to set it."""
    url = await make_proxy({"providers": config(fake)["providers"]})
    status, _, doc = await call(url, "GET", "/admin/keys", None)
    assert status == 403 and "apikey" in doc["error"]["message"]


async def test_a_key_file_written_without_the_server_is_read_within_a_second(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """`ccproxy keys` without the admin API writes the file; the server picks the key up by itself."""
    url = await make_proxy({"providers": config(fake)["providers"]})
    assert (await message(url, ""))[0] == 200  # no keys yet: loopback without a key is served
    _, clear = KeyStore().create("late", Limits(), time.time())
    for _ in range(40):
        if (await message(url, ""))[0] == 401:
            break
        await asyncio.sleep(0.1)
    assert (await message(url, clear))[0] == 200
    assert (await message(url, ""))[0] == 401


async def test_a_stream_error_reply_is_answered_in_the_clients_dialect(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """Revoked keys are refused on the OpenAI surface with the OpenAI error shape."""
    url = await make_proxy(config(fake))
    key = await create(url, "gone")
    await call(url, "DELETE", "/admin/keys/gone")
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        await client.chat.completions.create(model="claude-sonnet-4-6", messages=[{"role": "user", "content": "x"}])
    fake.default = Reply(status=200)


async def test_a_restarted_server_reads_the_days_spend_back_from_the_ledger(
    make_proxy: ProxyFactory, fake: FakeUpstream
) -> None:
    """Spend already in the ledger today counts: a key whose budget it passed is refused by a fresh server."""
    now = time.time()
    conn = connect(default_path(), create=True)
    today = UsageRecord(ts=now - 60, request_id="r1", client="spender", provider="anthropic", status=200, cost_usd=0.02)
    long_ago = UsageRecord(ts=now - 40 * 86400, request_id="r0", client="saver", status=200, cost_usd=5.0)
    conn.executemany(INSERT, [today.row(), long_ago.row()])
    conn.close()
    _, spender = KeyStore().create("spender", Limits(budget_day_usd=0.01), now)
    _, saver = KeyStore().create("saver", Limits(budget_day_usd=0.01, budget_month_usd=1.0), now)
    url = await make_proxy(config(fake))
    status, headers, doc = await message(url, spender)
    assert status == 429 and "daily budget" in doc["error"]["message"] and "$0.0200" in doc["error"]["message"]
    assert abs(int(headers["retry-after"]) - (limits.day_window(time.time())[1] - time.time())) < 60
    assert (await message(url, saver))[0] == 200  # last month's spend is not this month's
    assert len(fake.requests) == 1


async def test_a_provider_made_transparent_by_a_reload_never_sees_a_client_key(
    aiohttp_server: Any, fake: FakeUpstream
) -> None:
    """A config reload that leaves a provider without credentials: client keys get 403, nothing goes upstream."""
    app = create_app(structure(config(fake)))
    server: TestServer = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    key = await create(url, "alice")
    transparent = {"apikey": ADMIN, "providers": [{"name": "anthropic", "kind": "anthropic", "api_base_url": fake.url}]}
    await app[STATE].reconfigure(structure(transparent))
    status, _, doc = await message(url, key)
    assert status == 403 and "without credentials of its own" in doc["error"]["message"]
    assert fake.requests == []
