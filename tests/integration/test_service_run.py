"""The service's own command, as the unit runs it: env-file secrets, the pinned config, the log `ccproxy logs` reads."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ccproxy_core.cli import service
from ccproxy_core.cli.daemon_log import log_path
from ccproxy_core.config.load import user_config_paths
from tests.integration.test_daemon import free_port, health


def exec_start(unit_text: str) -> list[str]:
    line = next(line for line in unit_text.splitlines() if line.startswith("ExecStart="))
    return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(line.removeprefix("ExecStart="))]


def get(url: str, key: str | None) -> int:
    request = urllib.request.Request(url, headers={"x-api-key": key} if key else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
def test_the_unit_command_serves_with_env_file_secrets_into_the_shared_log(isolated_home: Path) -> None:
    """ExecStart of the installed unit serves the pinned config, takes `$PROXY_KEY` from the env file, logs to `ccproxy logs`' file."""
    port = free_port()
    config = user_config_paths()[0]
    config.parent.mkdir(parents=True)
    config.write_text(f'{{"port": {port}, "apikey": "$PROXY_KEY"}}')
    t = service.target(system=False, platform="linux", env=os.environ)
    service.install(env={**os.environ, "PROXY_KEY": "pk-from-shell"}, runs=False, t=t, say=lambda _: None)
    argv = exec_start(t.unit.read_text())
    env = {k: v for k, v in os.environ.items() if k != "PROXY_KEY"}  # a service does not inherit the shell
    proc = subprocess.Popen(
        argv,
        cwd=isolated_home,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                health(url)
                break
            except OSError:
                assert proc.poll() is None, f"the server exited ({proc.returncode}); log:\n{log_path().read_text()}"
                time.sleep(0.1)
        assert get(f"{url}/v1/models", "pk-from-shell") == 200
        assert get(f"{url}/v1/models", None) == 401
        assert "starting in the background" in log_path().read_text()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
