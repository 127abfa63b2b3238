"""`ccproxy serve --workers N` and `start --workers N`: real processes on one real port.

The workers run against a fake provider on loopback, with `state.backend: redis` pointing at a
real redis-server (tests/redis_server.py). These tests check the process mechanics: N workers
answer on one port, the official SDK is served through them, SIGTERM stops every one, a killed
worker is replaced, a worker outlives neither a killed supervisor nor the restart budget, and the
memory backend or a taken port is refused before anything starts.
With the Redis backend, the workers share one set of limits: a provider's rpm holds across them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import pytest

from ccproxy_core.cli import processes, workers
from ccproxy_core.cli.main import main
from tests.conftest import anthropic_provider
from tests.fakes import FakeUpstream
from tests.integration.test_daemon import Sandbox, free_port, health, sandbox  # noqa: F401 (sandbox: a fixture)
from tests.redis_server import RedisServer

Start = Callable[..., Awaitable["Group"]]
pytestmark = pytest.mark.skipif(not workers.has_reuse_port(), reason="this OS has no SO_REUSEPORT")


class Group:
    """`ccproxy serve --workers N` as a subprocess, its output in a file."""

    def __init__(self, tmp: Path, config: dict[str, Any], count: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        path = tmp / "proxy.json"
        path.write_text(json.dumps(config))
        self.log = tmp / "group.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCPROXY_")}
        argv = ["serve", "--port", str(self.port), "--config", str(path), "--workers", str(count)]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ccproxy_core", *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp,
                start_new_session=True,  # a Ctrl-C in the terminal running pytest is not theirs
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def seen(self, want: int, *, exclude: frozenset[int] = frozenset()) -> dict[int, dict[str, Any]]:
        """worker index -> its /health, asking over fresh connections until `want` indexes answered."""
        found: dict[int, dict[str, Any]] = {}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            for _ in range(1200):  # bounded: ~60 s on a loaded machine
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/health") as resp:
                        body = await resp.json()
                        if body["pid"] not in exclude:
                            found[body["worker"]["index"]] = body
                if len(found) >= want:
                    return found
                assert self.proc.poll() is None, f"the supervisor exited with {self.proc.returncode}:\n{self.output()}"
                await asyncio.sleep(0.05)
        pytest.fail(f"only workers {sorted(found)} of {want} answered:\n{self.output()}")

    async def wait(self) -> int:
        return await asyncio.to_thread(self.proc.wait, 60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


async def gone(pids: list[int]) -> bool:
    """Whether every pid has exited (bounded wait, ~30 s)."""
    for _ in range(600):
        if not any(processes.probe(pid)[0] for pid in pids):
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
async def group(tmp_path: Path, fake: FakeUpstream, redis_server: RedisServer) -> AsyncIterator[Start]:
    started: list[Group] = []

    async def go(count: int, **provider: Any) -> Group:
        state = {"backend": "redis", "redis_url": redis_server.url}
        config = {"providers": [anthropic_provider(fake, **provider)], "state": state}
        started.append(Group(tmp_path, config, count))
        return started[-1]

    yield go
    for g in started:  # every worker, by pid, whatever the test left
        pids = [int(p) for p in _children(g.proc.pid)]
        g.kill()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return []


@pytest.mark.slow
async def test_workers_share_one_port_serve_the_sdk_and_stop_on_sigterm(
    group: Start,
) -> None:
    """Two workers answer on one port (distinct pids, one supervisor), serve the Anthropic SDK, log their index, and all stop on SIGTERM."""
    g = await group(2)
    seen = await g.seen(2)
    pids = [body["pid"] for body in seen.values()]
    assert len(set(pids)) == 2 and g.proc.pid not in pids
    assert all(body["worker"] == {"index": i, "count": 2, "supervisor": g.proc.pid} for i, body in seen.items())

    client = anthropic.AsyncAnthropic(base_url=g.url, api_key="client", max_retries=0)
    for _ in range(4):
        message = await client.messages.create(
            model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content

    os.kill(g.proc.pid, signal.SIGTERM)
    assert await g.wait() == 0
    assert await gone(pids)
    out = g.output()
    assert "ccproxy starting 2 workers on http://127.0.0.1:" in out and "state backend redis" in out
    assert "[worker 1/2]: ccproxy listening" in out and "[worker 2/2]: ccproxy listening" in out
    assert "every worker stopped" in out


@pytest.mark.slow
async def test_a_killed_worker_is_restarted_and_no_worker_outlives_its_supervisor(
    group: Start,
) -> None:
    """A worker killed with SIGKILL is replaced under the same index, with the reason logged; SIGKILL to the supervisor ends the workers too."""
    g = await group(2)
    seen = await g.seen(2)
    victim = seen[1]["pid"]
    os.kill(victim, signal.SIGKILL)
    again = await g.seen(2, exclude=frozenset({victim}))
    assert again[1]["pid"] != victim and again[2]["pid"] == seen[2]["pid"]
    assert f"worker 1/2 (pid {victim}) exited unexpectedly with signal 9 (SIGKILL); restarting it" in g.output()

    g.kill()  # no handler sees SIGKILL: the workers learn it from their stdin pipe closing
    assert await gone([again[1]["pid"], again[2]["pid"]])


@pytest.mark.slow
def test_the_supervisor_gives_up_after_the_restart_budget(capsys: pytest.CaptureFixture[str]) -> None:
    """Workers that keep dying are restarted at most RESTARTS times a minute, then the supervisor exits 1 naming their exit status."""
    supervisor = workers.Supervisor(2, lambda index: [sys.executable, "-c", "import sys; sys.exit(3)"])
    assert supervisor.run() == 1
    err = capsys.readouterr().err
    assert err.count("exited unexpectedly with exit status 3; restarting it") == workers.RESTARTS
    assert f"exit status 3, after {workers.RESTARTS} worker restarts within 60 s; stopping every worker" in err
    assert all(w.proc.poll() is not None for w in supervisor.workers.values())


def test_the_memory_backend_refuses_more_than_one_worker(capsys: pytest.CaptureFixture[str]) -> None:
    """`serve --workers 2` and `start --workers 2` with the memory backend exit 2 at once, naming the reason and the fix."""
    port = str(free_port())
    assert main(["serve", "--workers", "2", "--port", port]) == 2
    err = capsys.readouterr().err
    assert "--workers 2: state.backend is memory" in err and "cooldowns" in err
    assert "CCPROXY_REDIS_URL" in err and '"redis"' in err
    assert main(["start", "--workers", "2", "--port", port]) == 2
    assert "state.backend is memory" in capsys.readouterr().err


def test_one_worker_needs_no_shared_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve --workers 1` is the plain server: no supervisor, the memory backend accepted."""
    ran: list[dict[str, Any]] = []
    monkeypatch.setattr("ccproxy_core.server.app.run", lambda config, **kw: ran.append(kw))
    assert main(["serve", "--workers", "1", "--port", str(free_port())]) == 0
    assert ran and ran[0].get("worker") is None


def test_a_taken_port_and_reload_are_refused_before_any_worker_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With another program listening on the port, or with --reload, `serve --workers 2` starts nothing and says why."""
    monkeypatch.setenv("CCPROXY_REDIS_URL", "redis://127.0.0.1:1/0")  # never dialled: refused before
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = str(listener.getsockname()[1])
        assert main(["serve", "--workers", "2", "--port", port]) == 1
        assert "in use" in capsys.readouterr().err
    assert main(["serve", "--workers", "2", "--reload", "--port", port]) == 1
    assert "--reload runs one server process" in capsys.readouterr().err


@pytest.mark.slow
def test_start_status_and_stop_with_workers(sandbox: Sandbox, redis_server: RedisServer) -> None:  # noqa: F811
    """`ccproxy start --workers 2` answers, `status` shows two workers under the supervisor's pid, the daemon log has every worker's lines, `stop` ends them all."""
    env = {**sandbox.env, "CCPROXY_REDIS_URL": redis_server.url}
    started = sandbox.run("start", "--workers", "2", "--port", str(sandbox.port), env=env, timeout=60)
    assert started.returncode == 0, started.stderr
    assert "2 workers" in started.stdout
    info = sandbox.pidinfo()
    assert info["flags"]["workers"] == 2
    answer = health(info["url"])
    assert answer["worker"]["supervisor"] == info["pid"] and answer["worker"]["count"] == 2

    status = sandbox.run("status", env=env)
    assert status.returncode == 0 and "workers:" in status.stdout and f"pid {info['pid']} supervises" in status.stdout
    assert json.loads(sandbox.run("status", "--json", env=env).stdout)["workers"] == 2

    children = [int(p) for p in _children(info["pid"])]
    assert len(children) == 2
    stopped = sandbox.run("stop", env=env, timeout=60)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not any(processes.probe(pid)[0] for pid in [info["pid"], *children])
    log = Path(info["log"]).read_text()  # one writer: the supervisor copies its workers' lines
    assert "ccproxy starting 2 workers" in log and "[worker 1/2]: ccproxy listening" in log
    assert "[worker 2/2]: ccproxy listening" in log and "every worker stopped" in log


@pytest.mark.slow
async def test_a_provider_rpm_holds_across_workers(group: Start, fake: FakeUpstream) -> None:
    """requests_per_minute 10 and two workers sharing Redis: of 20 requests over fresh connections (both workers serve), exactly 10 reach the provider; /usage on either counts all 20 (one ledger file)."""
    g = await group(2, requests_per_minute=10)
    await g.seen(2)
    statuses: list[int] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        headers = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
        body = {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}

        async def post() -> None:
            async with session.post(f"{g.url}/v1/messages", json=body, headers=headers) as resp:
                await resp.read()
                statuses.append(resp.status)

        await asyncio.gather(*(post() for _ in range(20)))
    assert sorted(statuses) == [200] * 10 + [429] * 10
    assert len([r for r in fake.requests if r.path == "/v1/messages"]) == 10
    for _ in range(200):  # the access lines come through the supervisor's copy of each worker's output
        served = re.findall(r"ccproxy\.access \[worker (\d)/2\]: \S+ POST /v1/messages", g.output())
        if len(served) == 20:
            break
        await asyncio.sleep(0.05)
    assert sorted(set(served)) == ["1", "2"], "both workers took requests, so only shared limits explain the 10"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        for _ in range(200):  # the workers write one ledger file: any of them answers for all 20
            async with session.get(f"{g.url}/usage") as resp:
                totals = (await resp.json())["totals"]
            if totals["requests"] == 20:
                break
            await asyncio.sleep(0.05)
    assert totals["requests"] == 20, totals
