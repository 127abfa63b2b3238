"""Three real ccproxy processes sharing one real Redis (issue 14): one pool, one set of limits.

Each test starts Debian's redis-server on a free port (tests/redis_server.py), a fake provider
(and a fake token endpoint) in the test's loop, and three `python -m ccproxy_core serve`
processes with `state.backend: redis`, each on its own port, as instances behind a load
balancer would be. Every process is stopped by its pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.fakes import FakeTokenEndpoint, FakeUpstream, Reply, recorded
from tests.redis_server import RedisServer, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


class Instance:
    """One `ccproxy serve` process."""

    def __init__(self, tmp: Path, config: dict[str, Any], name: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        path = tmp / f"{name}.json"
        path.write_text(json.dumps({**config, "port": self.port}))
        self.log = tmp / f"{name}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ccproxy_core", "serve", "--config", str(path), "--log-level", "info"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp,
                start_new_session=True,
            )

    async def ready(self, session: aiohttp.ClientSession) -> None:
        for _ in range(600):  # up to ~60 s on a loaded 2-core machine
            if self.proc.poll() is not None:
                raise AssertionError(f"instance exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{self.url}/health") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise AssertionError(f"instance never answered /health:\n{self.log.read_text()[-3000:]}")

    async def health(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        async with session.get(f"{self.url}/health") as r:
            doc: dict[str, Any] = await r.json()
            return doc

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


Cluster = Callable[[dict[str, Any]], Awaitable[list[Instance]]]


@pytest.fixture
def isolated_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCPROXY_")}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, whatever the venv was installed from
    for var, sub in (("HOME", "home"), ("XDG_STATE_HOME", "state"), ("XDG_CONFIG_HOME", "config")):
        (tmp_path / sub).mkdir(exist_ok=True)
        env[var] = str(tmp_path / sub)
    return env


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def cluster(
    tmp_path: Path, redis_server: RedisServer, isolated_env: dict[str, str], session: aiohttp.ClientSession
) -> AsyncIterator[Cluster]:
    started: list[Instance] = []

    async def start(config: dict[str, Any]) -> list[Instance]:
        full = {"usage": {"enabled": False}, **config, "state": {"backend": "redis", "redis_url": redis_server.url}}
        instances = [Instance(tmp_path, full, f"instance-{n}", isolated_env) for n in "abc"]
        started.extend(instances)
        await asyncio.gather(*(i.ready(session) for i in instances))
        return instances

    yield start
    for instance in started:
        instance.stop()


async def serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def provider() -> AsyncIterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream(default=Reply(body=recorded("anthropic/message_tool_use.json")))
    server = await serve(fake.app())
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


def keyed(url: str, keys: list[str], **extra: Any) -> dict[str, Any]:
    return {"providers": [{"name": "anthropic", "kind": "anthropic", "api_base_url": url, "api_keys": keys, **extra}]}


async def post(session: aiohttp.ClientSession, instance: Instance, **headers: str) -> tuple[int, dict[str, str]]:
    async with session.post(f"{instance.url}/v1/messages", json=BODY, headers=headers) as r:
        body = await r.read()
        got = {k.lower(): v for k, v in r.headers.items()}
        if r.status != 200:
            got["body"] = body.decode(errors="replace")[:300]  # what went wrong, in the assertion
        return r.status, got


def used(fake: FakeUpstream, key: str, since: int = 0) -> int:
    return sum(1 for r in fake.requests[since:] if r.headers.get("x-api-key") == key)


async def test_a_429_seen_by_one_instance_benches_the_key_on_all_three(
    cluster: Cluster, provider: tuple[FakeUpstream, str], session: aiohttp.ClientSession
) -> None:
    """Key 1 rate-limited through A: 100 ms later B and C send it nothing until its cooldown ends."""
    fake, url = provider
    fake.by_credential["sk-one"] = Reply(
        status=429,
        body=b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}',
        headers={"retry-after": "30"},
    )
    a, b, c = await cluster(keyed(url, ["sk-one", "sk-two"]))
    assert (await post(session, a))[0] == 200  # key 1 (429) then key 2: the client sees a 200
    assert used(fake, "sk-one") == 1
    await asyncio.sleep(0.1)
    mark = len(fake.requests)
    statuses = await asyncio.gather(*(post(session, i) for i in (b, c) for _ in range(10)))
    assert [s for s, _ in statuses] == [200] * 20
    assert used(fake, "sk-one", mark) == 0
    status = await (await session.get(f"{b.url}/status")).json()
    key_one = next(acc for acc in status["accounts"] if acc["name"] == "key-1")
    assert key_one["state"] == "rate_limited"


async def test_a_provider_rpm_holds_across_instances(
    cluster: Cluster, provider: tuple[FakeUpstream, str], session: aiohttp.ClientSession
) -> None:
    """requests_per_minute 10: of 20 requests within 3 s over 3 instances, exactly 10 reach the provider."""
    fake, url = provider
    instances = await cluster(keyed(url, ["sk-one"], requests_per_minute=10))
    results = await asyncio.gather(*(post(session, instances[n % 3]) for n in range(20)))
    assert len(fake.requests) == 10
    refused = [h for s, h in results if s == 429]
    assert len(refused) == 10
    assert all(float(h["retry-after"]) >= 1 for h in refused)


async def test_a_client_key_rpm_holds_across_instances(
    cluster: Cluster,
    provider: tuple[FakeUpstream, str],
    session: aiohttp.ClientSession,
    isolated_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """A client key with rpm 10: of 20 requests over 3 instances exactly 10 get through, the rest 429."""
    fake, url = provider
    created = subprocess.run(
        [sys.executable, "-m", "ccproxy_core", "keys", "create", "team", "--rpm", "10", "--json"],
        env=isolated_env,
        cwd=tmp_path,
        capture_output=True,
        check=True,
    )
    key = json.loads(created.stdout)["api_key"]
    instances = await cluster(keyed(url, ["sk-one"]))
    results = await asyncio.gather(*(post(session, instances[n % 3], **{"x-api-key": key}) for n in range(20)))
    assert sorted(s for s, _ in results) == [200] * 10 + [429] * 10
    assert len(fake.requests) == 10
    assert all("retry-after" in h for s, h in results if s == 429)


async def test_a_conversation_stays_on_its_key_across_instances(
    cluster: Cluster, provider: tuple[FakeUpstream, str], session: aiohttp.ClientSession
) -> None:
    """Turns of one Claude Code session on A, then B, then C are all served by the key of turn 1."""
    fake, url = provider
    a, b, c = await cluster(keyed(url, ["sk-one", "sk-two"]))
    for other in (b, c):  # their round robin now points at key 2: only sharing keeps the session on key 1
        assert (await post(session, other))[0] == 200
    mark = len(fake.requests)
    session_header = {"x-claude-code-session-id": "conversation-1"}
    assert (await post(session, a, **session_header))[0] == 200
    first = fake.requests[mark].headers["x-api-key"]
    await asyncio.sleep(0.1)
    for instance in (b, c, a, c):
        assert (await post(session, instance, **session_header))[0] == 200
    assert {r.headers["x-api-key"] for r in fake.requests[mark:]} == {first}


async def test_one_refresh_per_account_across_three_instances(
    cluster: Cluster, provider: tuple[FakeUpstream, str], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """3 OAuth accounts inside the refresh buffer, 60 requests over 3 instances: 1 refresh each, file always valid."""
    _, url = provider
    endpoint = FakeTokenEndpoint()
    endpoint.delay = 0.2  # a refresh takes a while, as the real one does: the others must wait, not call
    token_app = web.Application()
    token_app.router.add_post("/v1/oauth/token", endpoint.handle)
    token_server = await serve(token_app)
    accounts = tmp_path / "accounts.json"
    soon = round((time.time() + 120) * 1000)  # epoch ms, inside the default 600 s refresh buffer
    doc = {
        "version": 1,
        "accounts": {
            f"acct-{n}": {"accessToken": f"sk-ant-oat01-old{n}", "refreshToken": endpoint.issue(), "expiresAt": soon}
            for n in range(3)
        },
    }
    accounts.write_text(json.dumps(doc))
    accounts.chmod(0o600)
    config = {
        "providers": [
            {
                "name": "claude",
                "kind": "anthropic",
                "api_base_url": url,
                "auth": "oauth",
                "accounts_path": str(accounts),
            }
        ],
        "oauth": {"token_url": str(token_server.make_url("/v1/oauth/token"))},
    }
    seen_invalid: list[str] = []
    stop = asyncio.Event()

    async def watch_file() -> None:
        while not stop.is_set():
            try:
                parsed = json.loads(accounts.read_text())
                assert set(parsed["accounts"]) == {"acct-0", "acct-1", "acct-2"}
            except (ValueError, AssertionError, KeyError) as exc:
                seen_invalid.append(repr(exc))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch_file())
    try:
        instances = await cluster(config)
        results = await asyncio.gather(*(post(session, instances[n % 3]) for n in range(60)))
        assert [s for s, _ in results] == [200] * 60, [(s, h) for s, h in results if s != 200][:3]
        for _ in range(100):  # the proactive refreshes may still be writing the file
            on_disk = {a["refreshToken"] for a in json.loads(accounts.read_text())["accounts"].values()}
            # Three refreshes answered (a request is counted when it arrives, the endpoint answers
            # 0.2 s later: closing it before then would cut the refreshes the test waits for).
            if endpoint.issued >= 6 and on_disk <= endpoint.valid:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await watcher
        await token_server.close()
    refreshes = [r for r in endpoint.requests if r["grant_type"] == "refresh_token"]
    assert len(refreshes) == 3, refreshes
    assert len({r["refresh_token"] for r in refreshes}) == 3  # no spent token sent again
    assert seen_invalid == []
    on_disk = json.loads(accounts.read_text())["accounts"]
    assert {a["refreshToken"] for a in on_disk.values()} == endpoint.valid  # the newest, and only those
    assert all(a["expiresAt"] > soon + 3_600_000 for a in on_disk.values())  # the new tokens' expiry


async def test_redis_killed_mid_run_loses_no_request_and_sharing_resumes(
    cluster: Cluster,
    provider: tuple[FakeUpstream, str],
    session: aiohttp.ClientSession,
    redis_server: RedisServer,
) -> None:
    """Redis killed under load: 0 failed requests, /health degraded naming Redis; back: in sync within 10 s."""
    fake, url = provider
    instances = await cluster(keyed(url, ["sk-one", "sk-two"]))
    a, b, _ = instances
    failures: list[int] = []
    stop = asyncio.Event()

    async def load(instance: Instance) -> None:
        while not stop.is_set():
            status, _ = await post(session, instance)
            if status != 200:
                failures.append(status)

    loaders = [asyncio.create_task(load(i)) for i in instances]
    try:
        await outage(a, b, instances, fake, session, redis_server)
    finally:
        stop.set()
        done = await asyncio.gather(*loaders, return_exceptions=True)
    assert failures == []
    assert [d for d in done if d is not None] == []  # no loader saw a broken connection either


async def outage(
    a: Instance,
    b: Instance,
    instances: list[Instance],
    fake: FakeUpstream,
    session: aiohttp.ClientSession,
    redis_server: RedisServer,
) -> None:
    await asyncio.sleep(0.5)
    redis_server.kill()
    await asyncio.sleep(2.0)
    health = await a.health(session)
    assert health["status"] == "degraded"
    assert any("Redis" in reason for reason in health["reasons"])
    # While Redis is down, A learns a cooldown on its own; B must hear of it once Redis is back.
    fake.by_credential["sk-one"] = Reply(
        status=429,
        body=b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}',
        headers={"retry-after": "60"},
    )
    for _ in range(2):
        assert (await post(session, a))[0] == 200
    redis_server.restart()
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        states = [(await i.health(session))["status"] for i in instances]
        status = await (await session.get(f"{b.url}/status")).json()
        key_one = next(acc for acc in status["accounts"] if acc["name"] == "key-1")
        if states == ["ok"] * 3 and key_one["state"] == "rate_limited":
            break
        await asyncio.sleep(0.2)
    assert [(await i.health(session))["status"] for i in instances] == ["ok"] * 3
    assert key_one["state"] == "rate_limited"
