"""A real Redis for tests and benches: Debian's `redis-server` on a free loopback port.

Not fakeredis: the shared-state backend (issue 14) is tested against the server it will meet.
Nothing is persisted (`--save ""`, `--appendonly no`); its files go to a directory the caller
owns. `kill()` and `restart()` (on the same port) stage an outage; every stop is by pid.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

INSTALL_HINT = "redis-server is not installed (apt-get install redis-server; .ci/run installs it)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ping(port: int) -> bool:
    """Whether a Redis on 127.0.0.1:port answers PING (inline command, no client library)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process; `url` for clients, `kill`/`restart` for outages."""

    def __init__(self, directory: Path, port: int | None = None, binary: str | None = None) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.binary, self.dir, self.port = found, directory, port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(400):  # up to ~20 s on a loaded machine
            if ping(self.port):
                return self
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = self.dir / "redis.log"
                detail = log.read_text(errors="replace")[-2000:] if log.exists() else err
                raise RuntimeError(f"redis-server exited with {self.proc.returncode} on port {self.port}: {detail}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server never answered PING on port {self.port}")

    def _end(self, sig: int) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def stop(self) -> None:
        """SIGTERM by pid, and wait."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL by pid: an outage as a crash looks to clients."""
        self._end(signal.SIGKILL)

    def restart(self) -> RedisServer:
        """Start again on the same port (after `kill` or `stop`)."""
        self.stop()
        return self.start()
