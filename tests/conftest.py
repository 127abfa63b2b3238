"""Fixtures shared by every test: isolated user dirs, fake providers, and the proxy itself."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import settings

from ccproxy_core.config.model import Config, structure
from ccproxy_core.server.app import create_app
from tests.fakes import FakeTokenEndpoint, FakeUpstream
from tests.redis_server import INSTALL_HINT, RedisServer

ProxyFactory = Callable[..., Awaitable[str]]

# CI explores the same examples on every run, so a red build always reproduces; a developer's
# run keeps exploring new ones. No property test has a time limit (2 busy cores vary widely).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# What CI cannot have on its Linux machine: a container engine, PowerShell. Every other tool a test
# needs (shellcheck, chromium, fish, zsh, systemd-analyze, the Claude Code and Codex CLIs,
# actionlint, hadolint) is installed by .ci/run, so under CI a test that skips for want of one
# fails instead: a broken install step must not pass as a green run.
CI_MAY_SKIP = ("docker", "PowerShell")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if not os.environ.get("CI") or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if not any(allowed in reason for allowed in CI_MAY_SKIP):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, which installs what this test needs (.ci/run): {reason}"


@pytest.fixture(autouse=True)
async def sdk_clients_closed(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Every official SDK client a test opens is closed when it ends.

    Tests build SDK clients freely (one per call reads best); their connection pools are closed
    here, so a socket left open anywhere else is a real leak: ResourceWarning is an error."""
    opened: list[Any] = []
    for cls in (anthropic.AsyncAnthropic, openai.AsyncOpenAI):
        original = cls.__init__

        def tracked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> None:
            __original(self, *args, **kwargs)
            opened.append(self)

        monkeypatch.setattr(cls, "__init__", tracked)
    yield
    for client in opened:
        await client.close()


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the real user's config, accounts or state."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(home / var.lower()))
    for var in list(__import__("os").environ):
        if var.startswith("CCPROXY_") or var.endswith("_API_KEY"):
            monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
async def make_fake(aiohttp_server: Any) -> Callable[[], Awaitable[FakeUpstream]]:
    async def go() -> FakeUpstream:
        fake = FakeUpstream()
        server: TestServer = await aiohttp_server(fake.app())
        fake.url = str(server.make_url("")).rstrip("/")
        return fake

    return go


@pytest.fixture
async def fake(make_fake: Callable[[], Awaitable[FakeUpstream]]) -> FakeUpstream:
    return await make_fake()


@pytest.fixture
async def make_proxy(aiohttp_server: Any) -> ProxyFactory:
    async def go(config: dict[str, Any] | Config, config_files: tuple[str, ...] = ()) -> str:
        cfg = config if isinstance(config, Config) else structure(config)
        server: TestServer = await aiohttp_server(create_app(cfg, config_files=config_files))
        return str(server.make_url("")).rstrip("/")

    return go


@pytest.fixture
async def token_endpoint(aiohttp_server: Any) -> FakeTokenEndpoint:
    """Claude's OAuth token endpoint, faked on loopback (single-use refresh tokens)."""
    fake = FakeTokenEndpoint()
    app = web.Application()
    app.router.add_post("/v1/oauth/token", fake.handle)
    server: TestServer = await aiohttp_server(app)
    fake.url = str(server.make_url("/v1/oauth/token"))
    return fake


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port (tests/redis_server.py), stopped by pid after the test.

    Missing redis-server skips here, and fails under CI, which installs it (.ci/run)."""
    if shutil.which("redis-server") is None:
        pytest.skip(INSTALL_HINT)
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


def anthropic_provider(fake: FakeUpstream, **extra: Any) -> dict[str, Any]:
    return {"name": "anthropic", "kind": "anthropic", "api_base_url": fake.url, "api_key": "sk-upstream", **extra}


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, fake: FakeUpstream) -> str:
    """The proxy with one Anthropic provider (its own key) in front of `fake`."""
    return await make_proxy({"providers": [anthropic_provider(fake)]})
