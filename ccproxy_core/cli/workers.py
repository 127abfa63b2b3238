"""`ccproxy serve --workers N`: N server processes on one port, watched by a supervisor.

One Python process serves on one core; `--workers N` uses N. The process that runs `serve`
becomes the supervisor: it binds nothing itself and starts N workers, each `ccproxy serve` again
(the same interpreter and code root, as `daemon` starts the background server) with the hidden
`--worker-index I`, binding the port with SO_REUSEPORT so the kernel spreads connections over
them. The supervisor does not serve, so it never imports aiohttp, and every worker is alike: a
worker that dies is replaced the same way whichever it was.

    refusal(config, n, reuse_port)   why N workers cannot run here (pure): the memory backend
                                     would give each worker its own cooldowns, buckets and
                                     limits; without SO_REUSEPORT they cannot share the port
    RestartBudget                    at most `RESTARTS` restarts in `RESTART_WINDOW` seconds (pure)
    supervise(...)                   start, watch, restart, stop (the I/O)
    serve(...)                       `serve --workers N`: a worker, or the supervisor after the checks

Workers' output. Each worker's stdout and stderr are a pipe the supervisor copies line by line
to its own stderr, so the background server's log (daemon_log.RotatingLog, rotated by the one
process that writes it) stays a single writer; the workers tag their own log lines ("worker
2/3"). A worker's stdin is a pipe the supervisor holds open and never writes: end-of-file there
tells a worker that its supervisor is gone (server/workers.py), even after a SIGKILL.

SIGTERM or SIGINT to the supervisor sends SIGTERM to every worker (by pid), waits for them to
drain, and exits 0. A worker that exits on its own is restarted with its exit status in the log;
past the budget the supervisor stops the others and exits 1, naming that status.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO, Any

from attrs import frozen

MAX_WORKERS = 256
RESTARTS = 5  # at most this many worker restarts ...
RESTART_WINDOW = 60.0  # ... within this many seconds
DRAIN_TIMEOUT = 35.0  # a worker drains for up to 30 s (server.app.run's shutdown_timeout), then is killed
_POLL = 0.2
WORKER_BOOT = (
    "import sys; sys.path[0] = sys.argv.pop(1); from ccproxy_core.cli.main import main; sys.exit(main(sys.argv[1:]))"
)


# --- pure decisions -------------------------------------------------------------------------------


def refusal(config: Any, workers: int, reuse_port: bool) -> str | None:
    """Why `workers` processes cannot serve `config` on one port, with the fix; None when they can."""
    if workers <= 1:
        return None
    if config.state.backend == "memory":
        return (
            f"--workers {workers}: state.backend is memory, so each worker would keep its own credential "
            "cooldowns, rate-limit buckets, client-key limits and budgets, and breakers; set state.backend "
            'to "redis" with state.redis_url (or set CCPROXY_REDIS_URL) so the workers share them, '
            "or run one worker"
        )
    if not reuse_port:
        return (
            f"--workers {workers}: this system has no SO_REUSEPORT, so several processes cannot share "
            f"port {config.port}; run one worker per port behind a load balancer (see the README, "
            '"Many instances")'
        )
    return None


@frozen
class RestartBudget:
    """The restart times inside the window; `spend` answers whether one more fits."""

    times: tuple[float, ...] = ()
    limit: int = RESTARTS
    window: float = RESTART_WINDOW

    def spend(self, now: float) -> tuple[bool, RestartBudget]:
        recent = tuple(t for t in self.times if now - t < self.window)
        if len(recent) >= self.limit:
            return False, RestartBudget(recent, self.limit, self.window)
        return True, RestartBudget((*recent, now), self.limit, self.window)


def exit_reason(returncode: int) -> str:
    """A Popen return code in words: "exit status 1", "signal 9 (SIGKILL)"."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"
    return f"signal {-returncode} ({name})"


def worker_argv(index: int, count: int, host: str, port: int, config: str | None, log_level: str | None) -> list[str]:
    """`serve`'s arguments for worker `index` (1-based) of `count`."""
    argv = ["serve", "--host", host, "--port", str(port)]
    if config:
        argv += ["--config", config]
    if log_level:
        argv += ["--log-level", log_level]
    return [*argv, "--workers", str(count), "--worker-index", str(index)]


# --- the platform ---------------------------------------------------------------------------------


def has_reuse_port() -> bool:
    """Whether this OS lets several listening sockets share a port (SO_REUSEPORT, settable here)."""
    option = getattr(socket, "SO_REUSEPORT", None)
    if option is None or sys.platform == "win32":
        return False
    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, option, 1)
    except OSError:
        return False
    return True


def port_taken(host: str, port: int) -> OSError | None:
    """The error a plain bind of host:port meets, when another program listens there.

    Workers bind with SO_REUSEPORT, which would let them join the listening group of another
    ccproxy of the same user on that port and silently split its traffic; a bind without that
    option fails instead, so it is tried first."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp does: TIME_WAIT is no conflict
        try:
            s.bind((host or "0.0.0.0", port))
        except OSError as exc:
            return exc if exc.errno == errno.EADDRINUSE else None
    return None


# --- the supervisor -------------------------------------------------------------------------------


class _Worker:
    """One running worker process and the thread that copies its output."""

    def __init__(self, index: int, count: int, argv: list[str], out: Callable[[str], None]) -> None:
        self.index, self.count = index, count
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        assert self.proc.stdout is not None
        self.copier = threading.Thread(
            target=_copy_lines, args=(self.proc.stdout, out), name=f"worker-{index}-output", daemon=True
        )
        self.copier.start()

    @property
    def label(self) -> str:
        return f"worker {self.index}/{self.count} (pid {self.proc.pid})"

    def close(self) -> None:
        """After the process exited: its last lines copied, its pipes closed."""
        self.copier.join(timeout=2.0)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _copy_lines(stream: IO[bytes], out: Callable[[str], None]) -> None:
    with contextlib.suppress(OSError, ValueError):
        for line in iter(stream.readline, b""):
            out(line.decode("utf-8", "replace"))


class Supervisor:
    """Starts `count` workers, restarts those that die within the budget, stops them all on a signal."""

    def __init__(self, count: int, command: Callable[[int], list[str]], fmt: str = "text") -> None:
        self.count, self._command, self._fmt = count, command, fmt
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.workers: dict[int, _Worker] = {}

    def write(self, text: str) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):
            sys.stderr.write(text)
            sys.stderr.flush()

    def say(self, message: str, level: str = "INFO") -> None:
        """One log line in the workers' own format (server.app.configure_logging), from the supervisor."""
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f",{int(now * 1000) % 1000:03d}"
        if self._fmt == "json":
            import orjson

            record = {"time": stamp, "level": level, "logger": "ccproxy.supervisor", "message": message}
            self.write(orjson.dumps(record).decode() + "\n")
        else:
            self.write(f"{stamp} {level} ccproxy.supervisor: {message}\n")

    def _spawn(self, index: int) -> _Worker:
        worker = _Worker(index, self.count, self._command(index), self.write)
        self.workers[index] = worker
        return worker

    def request_stop(self, signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        self._stop.set()

    def run(self) -> int:
        """Until a signal (or the restart budget runs out); the exit code of `serve`."""
        previous = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        failure = ""
        try:
            for index in range(1, self.count + 1):
                self._spawn(index)
            pids = ", ".join(str(w.proc.pid) for w in self.workers.values())
            self.say(f"supervisor (pid {os.getpid()}) started {self.count} workers (pids {pids})")
            failure = self._watch()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if failure:
            self.say(failure, "ERROR")
            return 1
        self.say(f"supervisor (pid {os.getpid()}): every worker stopped")
        return 0

    def _watch(self) -> str:
        budget = RestartBudget()
        while not self._stop.wait(_POLL):
            for index, worker in list(self.workers.items()):
                code = worker.proc.poll()
                if code is None:
                    continue
                if self._stop.is_set():  # a signal arrived meanwhile: this exit is part of the stop
                    return ""
                allowed, budget = budget.spend(time.monotonic())
                if not allowed:
                    return (
                        f"{worker.label} exited unexpectedly with {exit_reason(code)}, after {budget.limit} "
                        f"worker restarts within {budget.window:g} s; stopping every worker"
                    )
                self.say(f"{worker.label} exited unexpectedly with {exit_reason(code)}; restarting it", "WARNING")
                worker.close()  # its last lines first
                self._spawn(index)
        return ""

    def _stop_all(self) -> None:
        """SIGTERM to every worker, a drain of up to DRAIN_TIMEOUT seconds, then SIGKILL."""
        for worker in self.workers.values():
            if worker.proc.poll() is None:
                with contextlib.suppress(OSError):
                    worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        for worker in self.workers.values():
            try:
                worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{worker.label} did not stop within {DRAIN_TIMEOUT:g} s; killing it", "WARNING")
                worker.proc.kill()
                worker.proc.wait()
            worker.close()


def supervise(config: Any, count: int, *, config_file: str | None, log_level: str | None) -> int:
    """Run `count` workers of `serve` for `config` until SIGTERM/SIGINT; the exit code.

    The caller has checked `refusal` (a ConfigError, exit 2, when it is not None)."""
    root = str(Path(__file__).resolve().parents[2])  # the directory holding ccproxy_core, as daemon does
    config_path = str(Path(config_file).expanduser().resolve()) if config_file else None

    def command(index: int) -> list[str]:
        args = worker_argv(index, count, config.host, config.port, config_path, log_level)
        return [sys.executable, "-c", WORKER_BOOT, root, *args]

    supervisor = Supervisor(count, command, config.log.format)
    supervisor.say(
        f"ccproxy starting {count} workers on http://{config.host}:{config.port} "
        f"(SO_REUSEPORT, state backend {config.state.backend})"
    )
    return supervisor.run()


def serve(loaded: Any, count: int, index: int | None, *, config_file: str | None, log_level: str | None) -> int:
    """`serve --workers N`: worker `index` of the group when the supervisor started this process
    (`--worker-index`), else the supervisor, once `refusal` and a taken port have been ruled out."""
    config = loaded.config
    if index is not None:
        from ccproxy_core.server import app as server
        from ccproxy_core.server.workers import WorkerSlot

        slot = WorkerSlot(index, count, os.getppid())
        server.run(config, config_files=tuple(str(f) for f in loaded.files), loaded=loaded, worker=slot)
        return 0
    from ccproxy_core.cli import ports
    from ccproxy_core.cli.errors import CommandError
    from ccproxy_core.config.model import ConfigError

    problem = refusal(config, count, has_reuse_port())
    if problem:
        raise ConfigError([problem])
    if port_taken(config.host, config.port) is not None:
        raise CommandError(ports.in_use_message(config.host, config.port, ports.holder(config.port)))
    return supervise(config, count, config_file=config_file, log_level=log_level)
