"""The daemon from a pip install: `ccproxy start | stop | restart | status | logs | code | env`.

Each test runs the real console script in a sandbox (HOME and the XDG dirs under tmp_path, so
platformdirs puts the pidfile and the log there) and always kills what it started. The same
commands from the shiv zipapp are covered in test_install.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ccproxy_core import __version__
from ccproxy_core.cli import daemon, daemon_log, pidfile, processes

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("ccproxy")
CCPROXY = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, str(ROOT / "ccproxy.py")]
_FOREIGN = ("CCPROXY_", "ANTHROPIC_", "XDG_", "CLAUDE_CODE_", "SHIV_")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(url: str) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{url}/health", timeout=5) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def kill_started_under(root: Path) -> None:
    """Kill, by pid, every process whose command line names `root` (our daemons and sleeps)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if str(root).encode() in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)


class Sandbox:
    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.home = root / "home"
        self.cwd = root / "work"
        self.bin = root / "bin"
        for d in (self.home, self.cwd, self.bin):
            d.mkdir(parents=True)
        for key in list(os.environ):
            if key.startswith(_FOREIGN) or key in ("NO_PROXY", "no_proxy"):
                monkeypatch.delenv(key)
        xdg = {
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_STATE_HOME": str(self.home / ".local/state"),
            "XDG_DATA_HOME": str(self.home / ".local/share"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        for key, value in xdg.items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(self.cwd)
        self.port = free_port()

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def run(
        self, *args: str, timeout: float = 30, env: dict[str, str] | None = None, command: list[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*(command or CCPROXY), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env or self.env,
            cwd=self.cwd,
            check=False,
        )

    def pidinfo(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(pidfile.pidfile_path().read_text())
        return data

    def config(self, data: dict[str, Any]) -> Path:
        path = self.cwd / "proxy.json"
        path.write_text(json.dumps(data))
        return path


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path / "sandbox", monkeypatch)
    try:
        yield box
    finally:
        with contextlib.suppress(Exception):
            info = json.loads(pidfile.pidfile_path().read_text())
            os.kill(int(info["pid"]), signal.SIGKILL)
        kill_started_under(tmp_path)


def fake_claude(box: Sandbox, exit_code: int = 0) -> Path:
    """A `claude` on PATH that records its argv, its environment and the proxy's /health pid."""
    script = box.bin / "claude"
    script.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, sys, urllib.request
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
        with opener.open(os.environ["ANTHROPIC_BASE_URL"] + "/health", timeout=5) as r:
            proxy_pid = json.loads(r.read())["pid"]
        out = os.path.join({str(box.root)!r}, f"claude-{{os.getpid()}}.json")
        with open(out, "w") as f:
            json.dump({{"argv": sys.argv[1:], "env": dict(os.environ), "proxy_pid": proxy_pid}}, f)
        sys.exit({exit_code})
        """)
    )
    script.chmod(0o755)
    return script


def claude_runs(box: Sandbox) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(box.root.glob("claude-*.json"), key=os.path.getmtime)]


# --- start / status / stop / restart ---------------------------------------------------------------


@pytest.mark.slow
def test_start_status_restart_stop_cycle(sandbox: Sandbox) -> None:
    """start returns once /health answers; status reads it; restart keeps the port; stop ends it."""
    started = sandbox.run("start", "--port", str(sandbox.port))
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{sandbox.port}"
    assert "ccproxy started (pid " in started.stdout
    assert url in started.stdout
    info = sandbox.pidinfo()
    assert health(url)["pid"] == info["pid"]  # answering at once: start waited for it
    assert {"pid", "host", "port", "url", "started_at", "version", "proc_start"} <= info.keys()
    assert info["url"] == url
    assert info["version"] == __version__
    assert info["proc_start"]

    again = sandbox.run("start", "--port", str(sandbox.port))
    assert again.returncode == 0
    assert "already running" in again.stdout
    assert sandbox.pidinfo()["pid"] == info["pid"]

    text = sandbox.run("status")
    assert text.returncode == 0, text.stdout + text.stderr
    assert f"pid {info['pid']}" in text.stdout
    assert url in text.stdout
    assert "providers:" in text.stdout
    report = json.loads(sandbox.run("status", "--json").stdout)
    assert report["running"] is True
    assert report["pid"] == info["pid"]
    assert report["status"] in ("ok", "degraded")
    assert report["version"] == __version__
    assert report["uptime"] >= 0
    assert report["providers"]

    restarted = sandbox.run("restart")
    assert restarted.returncode == 0, restarted.stderr
    new = sandbox.pidinfo()
    assert new["pid"] != info["pid"]
    assert new["port"] == sandbox.port, "restart reuses the flags of the last start"
    assert health(url)["pid"] == new["pid"]
    assert not processes.probe(info["pid"])[0]

    logs = sandbox.run("logs", "-n", "20")
    assert logs.returncode == 0
    assert "listening on" in logs.stdout

    stopped = sandbox.run("stop")
    assert stopped.returncode == 0
    assert f"ccproxy stopped (pid {new['pid']})" in stopped.stdout
    assert not pidfile.pidfile_path().exists()
    assert not processes.probe(new["pid"])[0]
    gone = sandbox.run("status")
    assert gone.returncode == 3
    assert "not running" in gone.stdout
    assert json.loads(sandbox.run("status", "--json").stdout)["running"] is False
    again_stop = sandbox.run("stop")
    assert again_stop.returncode == 0
    assert "ccproxy is not running" in again_stop.stdout


@pytest.mark.slow
def test_stale_pidfile_of_a_dead_process_is_reported_then_replaced(sandbox: Sandbox) -> None:
    """status reports a dead pid as not running without touching the file; start replaces it."""
    dead = subprocess.Popen(["true"])
    dead.wait(timeout=10)
    pidfile.write_pidfile(
        pidfile.PidInfo(
            dead.pid,
            "127.0.0.1",
            sandbox.port,
            f"http://127.0.0.1:{sandbox.port}",
            time.time(),
            __version__,
            "linux:1",
            "log",
        )
    )
    before = pidfile.pidfile_path().read_bytes()
    status = sandbox.run("status")
    assert status.returncode == 3
    assert "stale pidfile" in status.stdout
    assert pidfile.pidfile_path().read_bytes() == before, "status never changes state"

    started = sandbox.run("start", "--port", str(sandbox.port))
    assert started.returncode == 0, started.stderr
    assert "stale pidfile" in started.stderr
    assert sandbox.pidinfo()["pid"] != dead.pid
    assert sandbox.run("stop").returncode == 0


@pytest.mark.slow
def test_pidfile_naming_a_live_unrelated_program_is_never_signalled(sandbox: Sandbox) -> None:
    """A pid reused by another program (here `sleep`) is stale: not running, and stop leaves it alive."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        alive, identity = processes.probe(sleeper.pid)
        assert alive
        assert identity
        pidfile.write_pidfile(
            pidfile.PidInfo(
                sleeper.pid,
                "127.0.0.1",
                sandbox.port,
                f"http://127.0.0.1:{sandbox.port}",
                time.time(),
                __version__,
                identity + "0",
                "log",
            )
        )
        assert daemon.running() is None
        assert sandbox.run("status").returncode == 3
        stop = sandbox.run("stop")
        assert stop.returncode == 0
        assert "stale pidfile" in stop.stdout
        assert not pidfile.pidfile_path().exists()
        assert sleeper.poll() is None, "the unrelated program was not signalled"

        # A hand-written pidfile without a start time falls back on the command line.
        pidfile.write_pidfile(
            pidfile.PidInfo(
                sleeper.pid,
                "127.0.0.1",
                sandbox.port,
                f"http://127.0.0.1:{sandbox.port}",
                time.time(),
                __version__,
                "",
                "log",
            )
        )
        started = sandbox.run("start", "--port", str(sandbox.port))
        assert started.returncode == 0, started.stderr
        assert sandbox.pidinfo()["pid"] != sleeper.pid
        assert sleeper.poll() is None
        assert sandbox.run("stop").returncode == 0
    finally:
        sleeper.kill()
        sleeper.wait(timeout=10)


@pytest.mark.slow
def test_start_fails_fast_with_the_log_when_the_port_is_taken(sandbox: Sandbox) -> None:
    """A server that cannot bind exits; start says so with the last log lines, exit 1, no pidfile."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        t0 = time.monotonic()
        result = sandbox.run("start", "--port", str(port))
        assert time.monotonic() - t0 < 10
    assert result.returncode == 1
    assert "did not start" in result.stderr
    assert "last lines of" in result.stderr
    assert "is already in use by pid" in result.stderr and "--port" in result.stderr  # the holder, and a way out
    assert not pidfile.pidfile_path().exists()


def test_start_refuses_an_invalid_config_before_starting_anything(sandbox: Sandbox) -> None:
    """A config error is reported by `start` itself (exit 2), not buried in the daemon's log."""
    bad = sandbox.config({"port": "not a port", "nonsense": 1})
    result = sandbox.run("start", "--config", str(bad))
    assert result.returncode == 2
    assert "configuration error" in result.stderr
    assert "nonsense" in result.stderr
    assert not pidfile.pidfile_path().exists()


def test_status_and_logs_when_nothing_ever_ran(sandbox: Sandbox) -> None:
    assert daemon.status(as_json=False) == daemon.STATUS_NOT_RUNNING
    assert daemon.logs(follow=False, lines=10) == 1
    assert daemon.stop(timeout=1) == 0


# --- ccproxy code / env ----------------------------------------------------------------------------


@pytest.mark.slow
def test_code_runs_claude_through_a_shared_daemon_and_returns_its_exit_code(sandbox: Sandbox) -> None:
    """claude gets the proxy's URL and key, its exit status comes back, and a second run reuses the daemon."""
    fake_claude(sandbox, exit_code=7)
    config = sandbox.config({"port": sandbox.port, "apikey": "s3cret-key"})
    env = {**sandbox.env, "NO_PROXY": "example.com", "ANTHROPIC_API_KEY": "sk-real", "CLAUDE_CODE_USE_BEDROCK": "1"}

    first = sandbox.run("code", "--config", str(config), "--", "-p", "hello world", env=env)
    assert first.returncode == 7, first.stderr
    assert "started the proxy in the background" in first.stderr
    second = sandbox.run("code", "--config", str(config), "--", "--model", "opus", env=env)
    assert second.returncode == 7, second.stderr
    assert "started" not in second.stderr

    runs = claude_runs(sandbox)
    assert [r["argv"] for r in runs] == [["-p", "hello world"], ["--model", "opus"]]
    pid = sandbox.pidinfo()["pid"]
    assert [r["proxy_pid"] for r in runs] == [pid, pid], "both sessions talked to the one daemon"
    child_env = runs[0]["env"]
    assert child_env["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{sandbox.port}"
    assert child_env["ANTHROPIC_AUTH_TOKEN"] == "s3cret-key"
    assert child_env["API_TIMEOUT_MS"] == "600000"
    assert child_env["NO_PROXY"] == "example.com,127.0.0.1"
    assert "ANTHROPIC_API_KEY" not in child_env
    assert "CLAUDE_CODE_USE_BEDROCK" not in child_env
    assert processes.probe(pid)[0], "the daemon outlives the sessions"
    assert sandbox.run("stop").returncode == 0


@pytest.mark.slow
def test_code_refuses_to_silently_use_a_daemon_on_another_port(sandbox: Sandbox) -> None:
    fake_claude(sandbox)
    assert sandbox.run("start", "--port", str(sandbox.port)).returncode == 0
    other = sandbox.run("code", "--port", str(sandbox.port + 1))
    assert other.returncode == 1
    assert f"already runs on http://127.0.0.1:{sandbox.port}" in other.stderr
    assert claude_runs(sandbox) == []
    assert sandbox.run("stop").returncode == 0


@pytest.mark.slow
def test_two_starts_at_once_start_one_server(sandbox: Sandbox) -> None:
    """The start lock: one of two simultaneous starts runs the server, the other finds it."""
    procs = [
        subprocess.Popen(
            [*CCPROXY, "start", "--port", str(sandbox.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=sandbox.env,
            cwd=sandbox.cwd,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=30)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sorted("already running" in out for out in outs) == [False, True]
    assert health(f"http://127.0.0.1:{sandbox.port}")["pid"] == sandbox.pidinfo()["pid"]
    assert sandbox.run("stop").returncode == 0


def test_logs_follow_survives_rotation(sandbox: Sandbox) -> None:
    """`logs -f` prints what is appended, also after the file is rotated away."""
    log = daemon_log.log_path()
    log.parent.mkdir(parents=True)
    log.write_text("one\n")
    follower = subprocess.Popen(
        [*CCPROXY, "logs", "-f", "-n", "5"], stdout=subprocess.PIPE, text=True, env=sandbox.env, cwd=sandbox.cwd
    )
    lines: queue.Queue[str] = queue.Queue()
    stdout = follower.stdout
    assert stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        with log.open("a") as f:
            f.write("two\n")  # before or after the follower starts: shown once either way
        assert [lines.get(timeout=10), lines.get(timeout=10)] == ["one\n", "two\n"]
        log.rename(log.with_name("ccproxy.log.1"))
        log.write_text("three\n")
        assert lines.get(timeout=10) == "three\n"
    finally:
        follower.kill()
        follower.wait(timeout=10)
        stdout.close()


def test_code_without_claude_says_how_to_install_it(sandbox: Sandbox) -> None:
    env = {**sandbox.env, "PATH": str(sandbox.bin)}
    result = sandbox.run("code", env=env, command=[sys.executable, str(ROOT / "ccproxy.py")])
    assert result.returncode == 127
    assert "npm install -g @anthropic-ai/claude-code" in result.stderr
    assert not pidfile.pidfile_path().exists(), "nothing was started for nothing"


def test_env_output_evaluates_in_sh(sandbox: Sandbox) -> None:
    """`eval "$(ccproxy env)"` sets the variables in a POSIX shell."""
    env = {**sandbox.env, "CCPROXY_PORT": "4567", "CCPROXY_API_KEY": "it's $HOME `x`", "NO_PROXY": "a,b"}
    command = " ".join(CCPROXY)
    result = subprocess.run(
        [
            "sh",
            "-c",
            f'eval "$({command} env)"; printf "%s\\n" "$ANTHROPIC_BASE_URL" "$ANTHROPIC_AUTH_TOKEN" '
            '"$API_TIMEOUT_MS" "$NO_PROXY"',
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
        cwd=sandbox.cwd,
    )
    assert result.returncode == 0, result.stderr
    expected = ["http://127.0.0.1:4567", "it's $HOME `x`", "600000", "a,b,127.0.0.1"]
    assert result.stdout.splitlines() == expected


# --- pieces ---------------------------------------------------------------------------------------


def test_rotating_log_keeps_a_bounded_number_of_files(tmp_path: Path) -> None:
    """Past max_bytes the log moves to .1, .1 to .2 ...; no more than `backups` old files remain."""
    path = tmp_path / "logs" / "ccproxy.log"
    log = daemon_log.RotatingLog(path, max_bytes=100, backups=2)
    for i in range(20):
        log.write(f"line {i:02d} " + "x" * 30 + "\n")
    log.close()
    assert sorted(p.name for p in path.parent.iterdir()) == ["ccproxy.log", "ccproxy.log.1", "ccproxy.log.2"]
    assert all(p.stat().st_size <= 100 for p in path.parent.iterdir())
    assert "line 19" in path.read_text()
    assert "line 17" in path.with_name("ccproxy.log.1").read_text()


def test_rotating_log_rotates_an_oversized_log_when_it_opens(tmp_path: Path) -> None:
    path = tmp_path / "ccproxy.log"
    path.write_text("old\n" * 100)
    daemon_log.RotatingLog(path, max_bytes=50, backups=1).close()
    assert path.stat().st_size == 0
    assert path.with_name("ccproxy.log.1").read_text().startswith("old")


def test_tail_reads_the_last_lines(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_text("".join(f"{i}\n" for i in range(100_000)))
    assert daemon_log.tail(path, 3) == "99997\n99998\n99999\n"
    assert daemon_log.tail(path, 0) == ""
    assert daemon_log.tail(tmp_path / "missing", 3) == ""


def test_client_url_turns_wildcards_into_loopback() -> None:
    assert pidfile.client_url("0.0.0.0", 80) == "http://127.0.0.1:80"
    assert pidfile.client_url("::", 80) == "http://[::1]:80"
    assert pidfile.client_url("::1", 80) == "http://[::1]:80"
    assert pidfile.client_url("localhost", 3456) == "http://localhost:3456"


def test_restart_flags_fall_back_on_the_previous_start() -> None:
    previous = pidfile.Flags(host="0.0.0.0", port=4000, config="/c.json", log_level="debug")
    assert pidfile.Flags(port=5000).over(previous) == pidfile.Flags("0.0.0.0", 5000, "/c.json", "debug")


def test_probe_tells_the_living_from_the_dead() -> None:
    alive, identity = processes.probe(os.getpid())
    assert alive
    assert identity == processes.probe(os.getpid())[1]
    dead = subprocess.Popen(["true"])
    dead.wait(timeout=10)
    assert processes.probe(dead.pid) == (False, "")
    assert processes.probe(0) == (False, "")


async def test_stop_lets_a_stream_in_flight_finish(sandbox: Sandbox, make_fake: Any) -> None:
    """SIGTERM drains: a stream already flowing completes, and stop reports a graceful stop."""
    import asyncio

    import aiohttp

    from tests.fakes import Stream, sse_events

    fake = await make_fake()
    fake.default = Stream(sse_events("anthropic/stream_text.sse"), pause_after=2, pause=1.5)
    config = sandbox.config(
        {"providers": [{"name": "anthropic", "kind": "anthropic", "api_base_url": fake.url, "api_key": "k"}]}
    )
    started = await asyncio.to_thread(sandbox.run, "start", "--port", str(sandbox.port), "--config", str(config))
    assert started.returncode == 0, started.stderr
    request = {
        "model": "claude-opus-4-8",
        "max_tokens": 8,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    async with aiohttp.ClientSession() as s, s.post(f"http://127.0.0.1:{sandbox.port}/v1/messages", json=request) as r:
        first = await r.content.readuntil(b"\n\n")
        stopping = asyncio.ensure_future(asyncio.to_thread(sandbox.run, "stop", "--timeout", "10"))
        rest = await r.read()
    stopped = await stopping
    assert b"message_start" in first
    assert first + rest == b"".join(sse_events("anthropic/stream_text.sse")), "the stream finished whole"
    assert stopped.returncode == 0 and "stopped" in stopped.stdout and "killed" not in stopped.stdout
