"""The real `ccproxy` command as each seed's users type it (issue #19, issue #11 items 3, 6, 8).

Every test runs the installed console script in a sandbox: HOME, the XDG dirs and the working
directories under tmp_path, no CCPROXY_/ANTHROPIC_ variables from the outside. Servers started
here are stopped by their pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(sys.executable).with_name("ccproxy")
CCPROXY = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, str(Path(__file__).parents[2] / "ccproxy.py")]
_FOREIGN = ("CCPROXY_", "ANTHROPIC_", "XDG_", "CLAUDE_CODE_", "SHIV_", "SERVER__", "SECURITY__")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(port: int) -> dict[str, Any] | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data
    except OSError:
        return None


def wait_for(check: Callable[[], Any], what: str, limit: float = 20.0) -> Any:
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {limit} s: {what}"
        time.sleep(0.05)


class Box:
    def __init__(self, root: Path) -> None:
        self.root, self.home, self.cwd = root, root / "home", root / "work"
        self.bin = root / "bin"
        for d in (self.home, self.cwd, self.bin):
            d.mkdir(parents=True)
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN) and k not in ("LOG", "CONFIG_FILE")
        }
        self.env.update(
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            XDG_STATE_HOME=str(self.home / ".local/state"),
            XDG_DATA_HOME=str(self.home / ".local/share"),
            XDG_CACHE_HOME=str(self.home / ".cache"),
            PATH=f"{self.bin}{os.pathsep}{os.environ['PATH']}",
        )
        self.procs: list[subprocess.Popen[str]] = []

    def run(self, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CCPROXY, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**self.env, **env},
            cwd=cwd or self.cwd,
            check=False,
        )

    def popen(self, *args: str, **env: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [*CCPROXY, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**self.env, **env},
            cwd=self.cwd,
        )
        self.procs.append(proc)
        return proc

    def write(self, path: Path, text: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    b = Box(tmp_path / "box")
    try:
        yield b
    finally:
        b.run("stop", "--timeout", "5")
        for proc in b.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def test_bare_help_server_alias_debug_go_logging_and_a_port_in_use(box: Box) -> None:
    """Bare `ccproxy` exits 0 with the three ways on; `help`; `server --debug` with CCPROXY_LOG=true logs
    to ~/.ccproxy/ccproxy.log, naming ignored settings in one warning; a second server on that port is
    told who holds it and what to do."""
    bare = box.run()
    assert bare.returncode == 0, bare.stderr
    assert "ccproxy is not running" in bare.stdout
    for command in ("ccproxy code", "ccproxy start", "ccproxy serve"):
        assert command in bare.stdout
    helped = box.run("help")
    assert helped.returncode == 0 and "serve" in helped.stdout and "server" in helped.stdout
    assert "--reload" in box.run("help", "serve").stdout
    assert box.run("help", "nonsense").returncode == 2

    port = free_port()
    box.write(box.cwd / ".ccproxy.toml", '[server]\nworkers = 2\n[cors]\nallow_origins = ["*"]\n')
    server = box.popen("server", "--port", str(port), "--debug", CCPROXY_LOG="true")
    pid = wait_for(lambda: (health(port) or {}).get("pid"), "the server answers")
    assert pid == server.pid
    log = box.home / ".ccproxy" / "ccproxy.log"
    wait_for(lambda: log.is_file() and "listening on" in log.read_text(), "the Go proxy's log file is written")
    assert " DEBUG " in log.read_text(), "--debug after the command turned debug logging on"
    warned = [line for line in log.read_text().splitlines() if "mean nothing to ccproxy" in line]
    assert len(warned) == 1 and "server.workers" in warned[0] and "cors" in warned[0], "one startup warning"

    taken = box.run("serve", "--port", str(port))
    assert taken.returncode == 1
    assert f"127.0.0.1:{port}" in taken.stderr and f"in use by pid {pid}" in taken.stderr
    assert "--port" in taken.stderr and "Traceback" not in taken.stderr


def test_serve_reload_restarts_the_server_when_its_config_changes(box: Box) -> None:
    """`ccproxy serve --reload`: a saved config file brings up a new server process on the same port."""
    port = free_port()
    config = box.write(box.cwd / "dev.json", json.dumps({"port": port}))
    box.popen("serve", "--reload", "--config", str(config))
    first = wait_for(lambda: (health(port) or {}).get("pid"), "the first server answers")
    config.write_text(json.dumps({"port": port, "log": {"level": "debug"}}))
    second = wait_for(lambda: (health(port) or {}).get("pid") not in (None, first) and health(port), "a new server")
    assert second["pid"] != first
    with contextlib.suppress(OSError):
        os.kill(first, 0)
        pytest.fail("the old server still runs")


def fake_claude(box: Box) -> Path:
    """A `claude` on PATH that writes its ANTHROPIC_* environment to a file."""
    out = box.root / "claude-env.json"
    script = box.bin / "claude"
    script.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os
        with open({str(out)!r}, "w") as f:
            json.dump({{k: v for k, v in os.environ.items() if k.startswith("ANTHROPIC_")}}, f)
        """)
    )
    script.chmod(0o755)
    return out


def test_the_running_servers_own_config_gives_code_env_auth_and_status_their_answers(box: Box) -> None:
    """A daemon started in a project with `apikey` and an OAuth provider: `code`/`env` from elsewhere
    send its key, `env --config` is accepted, `auth` uses the provider's accounts_path, and `status`
    says why the provider is unusable until an account is imported."""
    port = free_port()
    project = box.root / "project"
    box.write(
        project / ".ccproxy" / "config.json",
        json.dumps(
            {
                "port": port,
                "apikey": "project-key",
                "providers": [
                    {"name": "max", "kind": "anthropic", "auth": "oauth", "accounts_path": "~/pool/accounts.json"}
                ],
            }
        ),
    )
    started = box.run("start", cwd=project)
    assert started.returncode == 0, started.stderr

    elsewhere = box.cwd
    env = box.run("env", cwd=elsewhere)
    assert env.returncode == 0, env.stderr
    assert "export ANTHROPIC_AUTH_TOKEN='project-key'" in env.stdout
    assert f"export ANTHROPIC_BASE_URL='http://127.0.0.1:{port}'" in env.stdout
    other = box.write(box.root / "other.json", '{"apikey": "other-key"}')
    assert "ANTHROPIC_AUTH_TOKEN='other-key'" in box.run("env", "--config", str(other), cwd=elsewhere).stdout
    recorded = fake_claude(box)
    assert box.run("code", cwd=elsewhere).returncode == 0
    assert json.loads(recorded.read_text())["ANTHROPIC_AUTH_TOKEN"] == "project-key"
    assert f"running on http://127.0.0.1:{port}" in box.run(cwd=elsewhere).stdout

    accounts = box.home / "pool" / "accounts.json"
    status = box.run("status", cwd=elsewhere)
    assert f"max: {accounts} does not exist" in status.stdout, status.stdout
    assert str(accounts) in box.run("auth", "status", cwd=project).stdout

    creds = box.write(
        box.root / "creds.json",
        json.dumps(
            {
                "claudeAiOauth": {
                    "accessToken": "sk-ant-oat01-a",
                    "refreshToken": "sk-ant-ort01-r",
                    "expiresAt": int(time.time() * 1000) + 3_600_000,
                }
            }
        ),
    )
    imported = box.run("auth", "import", "--from", str(creds), "--name", "work", cwd=project)
    assert imported.returncode == 0, imported.stderr
    assert "work" in json.loads(accounts.read_text())["accounts"]
    assert "does not exist" not in box.run("status", cwd=elsewhere).stdout


def test_seed_config_files_and_variables_through_config_show(box: Box) -> None:
    """ccproxy-multi's config.toml, ccproxy-api's .ccproxy.toml and SERVER__* load unchanged, and
    `config show` names where each value came from and which settings were ignored."""
    box.write(
        box.home / ".config" / "ccproxy" / "config.toml",
        textwrap.dedent("""\
        [server]
        host = "127.0.0.1"
        port = 8082
        [rotation]
        enabled = true
        accounts_path = "~/.claude/accounts.json"
        hot_reload = true
        refresh_buffer_seconds = 300
        [security]
        auth_token = "multi-secret-token"
        """),
    )
    project = box.write(box.cwd / ".ccproxy.toml", '[server]\nport = 8000\n[claude]\ncli_path = "auto"\n')
    shown = box.run("config", "show", SERVER__LOG_LEVEL="DEBUG", CCPROXY_LOG="true")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"port = 8000    # {project}" in out
    assert 'log.level = "debug"    # env SERVER__LOG_LEVEL' in out
    assert f'log.file = "{box.home}/.ccproxy/ccproxy.log"    # env CCPROXY_LOG' in out
    assert "rotation.refresh_buffer_seconds = 300" in out
    assert (
        'providers.0.name = "claude"' in out
        and f'providers.0.accounts_path = "{box.home}/.claude/accounts.json"' in out
    )
    assert "multi-secret-token" not in out and "apikey = " in out
    assert "# ignored:" in out and "claude: ignored" in out
