"""Client authentication: the proxy's own key, and loopback-only service without one."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ccproxy_core.config.model import structure
from ccproxy_core.server.app import guard, is_loopback
from ccproxy_core.server.state import STATE, State
from tests.conftest import ProxyFactory, anthropic_provider
from tests.fakes import FakeUpstream

REQUEST = {"model": "claude-opus-4-8", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def locked(make_proxy: ProxyFactory, fake: FakeUpstream) -> str:
    return await make_proxy({"apikey": "proxy-secret", "providers": [anthropic_provider(fake)]})


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"x-api-key": "wrong"}, 401),
        ({"authorization": "Bearer wrong"}, 401),
        ({"authorization": "Basic proxy-secret"}, 401),
        ({"x-api-key": "proxy-secret"}, 200),
        ({"authorization": "Bearer proxy-secret"}, 200),
        ({"authorization": "bearer proxy-secret"}, 200),
    ],
)
async def test_the_proxy_key_is_required_in_either_header(locked: str, headers: dict[str, str], status: int) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{locked}/v1/messages", json=REQUEST, headers=headers) as r:
        assert r.status == status
        body = await r.json()
    if status == 401:
        assert body["type"] == "error"
        assert body["error"]["type"] == "authentication_error"
        assert "x-api-key" in body["error"]["message"]


async def test_the_proxy_key_never_goes_upstream(locked: str, fake: FakeUpstream) -> None:
    """The key that authenticated the client to ccproxy is replaced by the provider's."""
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{locked}/v1/messages", json=REQUEST, headers={"x-api-key": "proxy-secret"}) as r,
    ):
        assert r.status == 200
    assert fake.requests[-1].headers["x-api-key"] == "sk-upstream"
    assert "proxy-secret" not in str(fake.requests[-1].headers)


async def test_a_wrong_key_never_reaches_the_provider(locked: str, fake: FakeUpstream) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.post(f"{locked}/v1/messages", json=REQUEST, headers={"x-api-key": "nope"}) as r,
    ):
        assert r.status == 401
    assert fake.requests == []


async def test_health_and_warmup_need_no_key(locked: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{locked}/health") as r:
            assert r.status == 200
        async with s.head(f"{locked}/") as r:
            assert r.status == 200
        async with s.get(f"{locked}/v1/models") as r:
            assert r.status == 401


async def test_openai_clients_get_the_openai_error_shape(locked: str) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{locked}/v1/chat/completions", json=REQUEST) as r:
        assert r.status == 401
        body = await r.json()
    assert body["error"]["code"] == "invalid_api_key"
    assert set(body["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    ("remote", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("10.0.0.5", False),
        ("192.168.1.2", False),
        ("fe80::1%eth0", False),
        (None, False),
        ("not-an-ip", False),
    ],
)
def test_loopback_detection(remote: str | None, loopback: bool) -> None:
    assert is_loopback(remote) is loopback


async def _call_auth(apikey: str, remote: str, headers: dict[str, str] | None = None) -> Any:
    app = web.Application()
    app[STATE] = State(structure({"apikey": apikey}))
    transport: Any = type(
        "T", (), {"get_extra_info": lambda self, name, default=None: (remote, 5555) if name == "peername" else default}
    )()
    request = make_mocked_request("POST", "/v1/messages", headers=headers or {}, app=app, transport=transport)

    async def handler(_: web.Request) -> web.StreamResponse:
        return web.Response(text="served")

    return await guard(request, handler)


async def test_without_a_key_only_loopback_clients_are_served() -> None:
    """No apikey: a client from another host gets a 403 that says how to set one."""
    assert (await _call_auth("", "127.0.0.1")).text == "served"
    refused = await _call_auth("", "10.1.2.3")
    assert refused.status == 403 and b"apikey" in refused.body


async def test_with_a_key_remote_clients_are_served_when_they_present_it() -> None:
    assert (await _call_auth("k", "10.1.2.3", {"x-api-key": "k"})).text == "served"
    refused = await _call_auth("k", "10.1.2.3", {"x-api-key": "x"})
    assert refused.status == 401 and b"does not match" in refused.body
