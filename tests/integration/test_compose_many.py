"""compose.many.yaml: three ccproxy instances, Redis and nginx; and its nginx config, run for real.

The compose file is read as data (a docker engine is not needed); `docker compose config` lints it
where the plugin exists. The nginx config beside it is checked by Debian's nginx (`nginx -t`),
then served: the same file, with the three service names pointed at three real `ccproxy serve`
processes on loopback sharing a real redis-server, carries the official SDK's requests, streams
included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import pytest
import yaml

from tests.conftest import anthropic_provider
from tests.fakes import FakeUpstream, Stream, sse_events
from tests.integration.test_container import dockerfile_env
from tests.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.many.yaml"
NGINX_CONF = ROOT / "compose.many.nginx.conf"
INSTANCES = ["ccproxy-1", "ccproxy-2", "ccproxy-3"]
Start = Callable[..., subprocess.Popen[bytes]]
_UPSTREAM_SERVER = re.compile(r"^\s*server\s+([\w.-]+):(\d+)\b", re.M)


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def upstream_servers(text: str) -> list[tuple[str, int]]:
    """The `server host:port` lines of the config's `upstream` block."""
    block = text[text.index("upstream ccproxy {") :]
    block = block[: block.index("}")]
    return [(host, int(port)) for host, port in _UPSTREAM_SERVER.findall(block)]


def nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light; .ci/run installs it)")
    return found


def test_three_instances_share_redis_the_accounts_and_the_config() -> None:
    """Three instances of the image built here, each with CCPROXY_REDIS_URL naming the redis service, the client key required, shared accounts and config volumes, a volume of its own."""
    data = compose()
    services = data["services"]
    assert sorted(services) == sorted([*INSTANCES, "redis", "lb"])
    for name in INSTANCES:
        svc = services[name]
        assert svc["build"] == "." and svc["restart"] == "unless-stopped"
        env = svc["environment"]
        assert env["CCPROXY_REDIS_URL"] == "redis://redis:6379/0"
        assert env["CCPROXY_API_KEY"].startswith("${CCPROXY_API_KEY:?")
        assert "ccproxy-accounts:/data/.claude" in svc["volumes"]
        assert "ccproxy-config:/data/config" in svc["volumes"]
        assert f"{name}-data:/data" in svc["volumes"]
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "ports" not in svc, "instances are reached through the load balancer only"
    assert {"ccproxy-accounts", "ccproxy-config", *(f"{n}-data" for n in INSTANCES)} <= set(data["volumes"])


def test_redis_keeps_nothing_on_disk_and_reports_its_health() -> None:
    """The redis service is the official image without persistence, with a PING health check."""
    redis = compose()["services"]["redis"]
    assert redis["image"].startswith("redis:")
    assert redis["command"] == ["redis-server", "--save", "", "--appendonly", "no"]
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_the_balancer_names_the_three_instances_on_the_image_port() -> None:
    """nginx (official image) publishes loopback 3456 and its upstream block lists exactly the three instances on the port the image listens on."""
    lb = compose()["services"]["lb"]
    assert lb["image"].startswith("nginx:")
    assert lb["ports"] == ["127.0.0.1:3456:8080"]
    assert "./compose.many.nginx.conf:/etc/nginx/nginx.conf:ro" in lb["volumes"]
    assert sorted(lb["depends_on"]) == INSTANCES
    text = NGINX_CONF.read_text()
    port = int(dockerfile_env()["CCPROXY_PORT"])
    assert upstream_servers(text) == [(name, port) for name in INSTANCES]
    assert "listen 8080;" in text
    for streaming in ("proxy_buffering off;", "proxy_http_version 1.1;", 'proxy_set_header Connection "";'):
        assert streaming in text


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    """`docker compose config` (where the plugin exists) finds the file valid."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode:
        pytest.skip("docker compose is not installed here")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, "CCPROXY_API_KEY": "k"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def local_conf(tmp: Path, listen: int, instances: list[int]) -> Path:
    """The compose's nginx config on this machine: the same file, its listen port and instance names replaced."""
    text = NGINX_CONF.read_text()
    for name, port in zip(INSTANCES, instances, strict=True):
        text = text.replace(f"server {name}:3456", f"server 127.0.0.1:{port}")
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    temp = "".join(
        f"    {kind}_temp_path {tmp / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = text.replace("http {\n", "http {\n    access_log off;\n" + temp, 1)
    conf = tmp / "nginx.conf"
    conf.write_text(text)
    return conf


def nginx_argv(tmp: Path, conf: Path) -> list[str]:
    main = f"daemon off; master_process off; pid {tmp / 'nginx.pid'}; error_log {tmp / 'error.log'} warn;"
    return [nginx(), "-p", str(tmp), "-c", str(conf), "-g", main]


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    """`nginx -t` accepts the config (with the service names pointed at loopback)."""
    conf = local_conf(tmp_path, free_port(), [free_port() for _ in INSTANCES])
    result = subprocess.run(
        [*nginx_argv(tmp_path, conf), "-t"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
async def started(tmp_path: Path) -> AsyncIterator[Start]:
    """Start a process with its output in a file; every one is stopped by pid afterwards."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            procs.append(
                subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, env=env
                )
            )
        return procs[-1]

    yield start
    for proc in procs:  # by pid: SIGTERM, then SIGKILL
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def answering(session: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(600):  # bounded: ~30 s on a loaded machine
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{url}/health") as resp:
                if resp.status == 200:
                    return
        assert proc.poll() is None, f"exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}"
        await asyncio.sleep(0.05)
    pytest.fail(f"{url} never answered: {log.read_text(errors='replace')[-2000:]}")


@pytest.mark.slow
async def test_three_instances_behind_the_nginx_config_serve_the_sdk(
    tmp_path: Path,
    fake: FakeUpstream,
    redis_server: RedisServer,
    started: Start,
) -> None:
    """Through the compose's nginx config, three `ccproxy serve` sharing one Redis all take requests, and the SDK's JSON and streamed answers arrive whole."""
    config = tmp_path / "proxy.json"
    config.write_text(json.dumps({"apikey": "client-key", "providers": [anthropic_provider(fake)]}))
    ports = [free_port() for _ in INSTANCES]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCPROXY_")}
    env["CCPROXY_REDIS_URL"] = redis_server.url
    instances = []
    for name, port in zip(INSTANCES, ports, strict=True):
        argv = [sys.executable, "-m", "ccproxy_core", "serve", "--port", str(port), "--config", str(config)]
        log = tmp_path / f"{name}.log"
        instances.append((started(argv, log, env), log, f"http://127.0.0.1:{port}"))
    listen = free_port()
    lb = started(nginx_argv(tmp_path, local_conf(tmp_path, listen, ports)), tmp_path / "nginx.out")
    url = f"http://127.0.0.1:{listen}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        for proc, log, direct in instances:
            await answering(session, direct, proc, log)
        await answering(session, url, lb, tmp_path / "error.log")
        pids = set()
        for _ in range(30):
            async with session.get(f"{url}/health") as resp:
                pids.add((await resp.json())["pid"])
    assert pids == {proc.pid for proc, _, _ in instances}, "least_conn spreads requests over all three"

    client = anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0)
    message = await client.messages.create(
        model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content
    fake.queue(Stream(sse_events("anthropic/stream_text.sse")))
    async with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason is not None
