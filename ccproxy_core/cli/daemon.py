"""The background proxy: `ccproxy start | stop | restart | status | logs`.

Files, in the directories of dirs.py (nothing is touched at import time):

    user_state_dir/ccproxy.pid    what runs, and how it was started (cli/pidfile.py)
    user_state_dir/ccproxy.lock   held while a start, stop or restart runs, so two `ccproxy code`
                                  launched at once start one server, not two
    user_log_dir/ccproxy.log      the server's stdout and stderr, rotated by size (5 MB, 3 old
                                  files) inside the server process itself; written and read by
                                  `daemon_log`

How the server is started. The detached child is `sys.executable -c BOOT ROOT LOG serve ...`
(`BOOT` is in `daemon_log`), where ROOT is the directory this package was imported from. That
is the same code as the running command whatever `sys.argv[0]` is: a pip console script,
`python ccproxy.py` in a checkout, or the shiv zipapp (ROOT is then its extracted site-packages
under ~/.shiv or SHIV_ROOT, where the dependencies are too). An upgrade that replaces the .pyz
on disk does not disturb a running daemon, and `ccproxy restart` starts the new version. The
child starts in a new session (a process group on Windows), with stdin from /dev/null and no
console, in the caller's working directory so that a project's `./.ccproxy/config.json` applies
as in `serve`.

A pid alone does not name a process: pids are reused. The pidfile keeps the start time of the
process (`processes.probe`: /proc, `ps`, or GetProcessTimes on Windows); a pid that is dead, a
zombie, or alive with another start time is some other program, and the pidfile is stale. `status` only
reads and never removes it; `start` replaces a stale pidfile and `stop` removes it.

Exit codes: 0 done (or already in the state asked for); 1 failed; 3 from `status` when not
running, as LSB init scripts do. On Windows `stop` cannot deliver a graceful signal to a process
without a console, so it terminates the server at once (what `taskkill /F` does).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ccproxy_core import __version__
from ccproxy_core.cli.daemon_log import BOOT, log_path, show, tail
from ccproxy_core.cli.pidfile import (
    Endpoint,
    Flags,
    PidInfo,
    client_url,
    is_ours,
    load_pidfile,
    lock_path,
    pidfile_path,
    remove_pidfile,
    write_pidfile,
)
from ccproxy_core.cli.processes import DaemonError, locked, probe, terminate

READY_TIMEOUT = 15.0
RESTART_STOP_TIMEOUT = 10.0
LOG_TAIL_ON_FAILURE = 20
STATUS_NOT_RUNNING = 3
_LOCK_TIMEOUT = 60.0


# --- HTTP to the server ---------------------------------------------------------------------------


def _get_json(url: str, timeout: float, headers: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """GET a JSON object, or None for any failure; never through an HTTP(S)_PROXY from the env."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=dict(headers or {})), timeout=timeout) as resp:
            data = orjson.loads(resp.read(1 << 20))
    except (OSError, ValueError, http.client.HTTPException):
        return None
    return data if isinstance(data, dict) else None


# --- starting -------------------------------------------------------------------------------------


def _server_command(flags: Flags, host: str, port: int, log: Path) -> list[str]:
    if not sys.executable:
        raise DaemonError("cannot find the Python interpreter to start the server with (sys.executable is empty)")
    root = str(Path(__file__).resolve().parents[2])  # the directory holding the ccproxy_core package
    argv = [sys.executable, "-c", BOOT, root, str(log), "serve", "--host", host, "--port", str(port)]
    if flags.config:
        argv += ["--config", flags.config]
    if flags.log_level:
        argv += ["--log-level", flags.log_level]
    if flags.workers and flags.workers > 1:
        argv += ["--workers", str(flags.workers)]
    return argv


def _detach() -> dict[str, Any]:
    if sys.platform == "win32":
        return {"creationflags": subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP}
    else:  # see _probe
        return {"start_new_session": True}


def _spawn(flags: Flags, timeout: float) -> PidInfo:
    from ccproxy_core.config.load import load  # raises ConfigError for a bad config: refused here, not in the log

    config_flags: dict[str, Any] = {"host": flags.host, "port": flags.port}
    if flags.log_level:
        config_flags["log"] = {"level": flags.log_level}
    effective = load(flags=config_flags, config_file=flags.config).config
    if flags.workers and flags.workers > 1:  # refused here, with exit 2, rather than in the log
        from ccproxy_core.cli import workers
        from ccproxy_core.config.model import ConfigError

        problem = workers.refusal(effective, flags.workers, workers.has_reuse_port())
        if problem:
            raise ConfigError([problem])
    log = log_path()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            _server_command(flags, effective.host, effective.port, log),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=os.getcwd(),
            **_detach(),
        )
    info = PidInfo(
        pid=proc.pid,
        host=effective.host,
        port=effective.port,
        url=client_url(effective.host, effective.port),
        started_at=time.time(),
        version=__version__,
        proc_start=probe(proc.pid)[1],
        log=str(log),
        flags=flags,
        cwd=os.getcwd(),
    )
    write_pidfile(info)
    try:
        _wait_ready(proc, info, timeout)
    except BaseException:
        with contextlib.suppress(DaemonError):
            terminate(proc.pid, info.proc_start, 3.0)
        remove_pidfile(proc.pid)
        raise
    return info


def _wait_ready(proc: subprocess.Popen[bytes], info: PidInfo, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay, other = 0.05, None
    while True:
        code = proc.poll()
        if code is not None:
            busy = f"; port {info.port} is served by another ccproxy (pid {other})" if other else ""
            raise _failure(f"the server exited with code {code} before answering at {info.url}{busy}", Path(info.log))
        health = _get_json(f"{info.url}/health", timeout=1.0)
        if health is not None:
            if proc.pid in (health.get("pid"), (health.get("worker") or {}).get("supervisor")):
                return  # the server, or one of its workers (`--workers N`)
            other = health.get("pid")
        if time.monotonic() >= deadline:
            raise _failure(f"no answer from {info.url}/health within {timeout:g} s", Path(info.log))
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def _failure(reason: str, log: Path) -> DaemonError:
    last = tail(log, LOG_TAIL_ON_FAILURE).rstrip("\n")
    shown = "\n".join(f"    {line}" for line in last.splitlines()) if last else "    (empty)"
    return DaemonError(f"ccproxy did not start: {reason}\nlast lines of {log}:\n{shown}")


def _ensure(flags: Flags, timeout: float = READY_TIMEOUT) -> tuple[PidInfo, bool]:
    """The running daemon, or a new one; call with the lock held. (info, started by this call)."""
    exists, info = load_pidfile()
    if info is not None and is_ours(info):
        return info, False
    if exists:
        why = f"pid {info.pid} is not ccproxy any more" if info else "unreadable"
        print(f"ccproxy: replacing a stale pidfile ({why}): {pidfile_path()}", file=sys.stderr)
        remove_pidfile()
    return _spawn(flags, timeout), True


def start(
    *, host: str | None, port: int | None, config: str | None, log_level: str | None, workers: int | None = None
) -> int:
    try:
        with locked(lock_path(), _LOCK_TIMEOUT):
            info, started = _ensure(Flags.given(host, port, config, log_level, workers))
    except DaemonError as exc:
        print(f"ccproxy: {exc}", file=sys.stderr)
        return 1
    _report_start(info, started)
    return 0


def _report_start(info: PidInfo, started: bool) -> None:
    if started:
        many = f", {info.flags.workers} workers" if info.flags.workers and info.flags.workers > 1 else ""
        print(f"ccproxy started (pid {info.pid}{many}) on {info.url}; log: {info.log}")
    else:
        print(f"ccproxy is already running (pid {info.pid}) on {info.url}; `ccproxy restart` applies new settings")


def ensure_running(host: str | None, port: int | None, config: str | None) -> Endpoint:
    """The running daemon's endpoint, starting one when none runs (for `ccproxy code`)."""
    with locked(lock_path(), _LOCK_TIMEOUT):
        info, started = _ensure(Flags.given(host, port, config, None))
    if started:
        return info.endpoint(started=True)
    if (host is not None and host != info.host) or (port is not None and port != info.port):
        raise DaemonError(
            f"ccproxy already runs on {info.url} (pid {info.pid}); drop --host/--port to use "
            "it, or move it with `ccproxy restart --host H --port P`"
        )
    if _get_json(f"{info.url}/health", timeout=3.0) is None:
        raise DaemonError(
            f"ccproxy runs (pid {info.pid}) but does not answer at {info.url}; "
            "`ccproxy logs` shows why, `ccproxy restart` starts it afresh"
        )
    return info.endpoint()


def config_of(info: PidInfo) -> Any:
    """The configuration the running server reads: its --config, with its working directory's project files."""
    from ccproxy_core.config.load import load

    return load(config_file=info.flags.config, cwd=Path(info.cwd) if info.cwd else None).config


def running() -> PidInfo | None:
    """The pidfile's content when its process runs and is the one started; reads only."""
    _, info = load_pidfile()
    return info if info is not None and is_ours(info) else None


# --- stopping -------------------------------------------------------------------------------------


def _stop_locked(timeout: float, *, quiet: bool = False) -> int:
    def say(text: str) -> None:
        if not quiet:
            print(text)

    exists, info = load_pidfile()
    if info is None or not is_ours(info):
        if exists:
            remove_pidfile()
            say(f"ccproxy is not running (removed a stale pidfile{f' for pid {info.pid}' if info else ''})")
        else:
            say("ccproxy is not running")
        return 0
    how = terminate(info.pid, info.proc_start, timeout)
    remove_pidfile(info.pid)
    say(
        f"ccproxy stopped (pid {info.pid})"
        if how == "stopped"
        else f"ccproxy (pid {info.pid}) did not exit within {timeout:g} s and was killed"
    )
    return 0


def stop(*, timeout: float) -> int:
    try:
        with locked(lock_path(), _LOCK_TIMEOUT):
            return _stop_locked(timeout)
    except DaemonError as exc:
        print(f"ccproxy: {exc}", file=sys.stderr)
        return 1


def restart(
    *, host: str | None, port: int | None, config: str | None, log_level: str | None, workers: int | None = None
) -> int:
    """Stop, then start with the flags given, the others taken from the previous start."""
    try:
        with locked(lock_path(), _LOCK_TIMEOUT):
            _, previous = load_pidfile()
            flags = Flags.given(host, port, config, log_level, workers)
            if previous is not None:
                flags = flags.over(previous.flags)
            _stop_locked(RESTART_STOP_TIMEOUT)
            info, started = _ensure(flags)
    except DaemonError as exc:
        print(f"ccproxy: {exc}", file=sys.stderr)
        return 1
    _report_start(info, started)
    return 0


# --- status and logs ------------------------------------------------------------------------------


def status(*, as_json: bool) -> int:
    """`ccproxy status` (in `cli.status`); exit 0 running, 1 not answering, 3 not running."""
    from ccproxy_core.cli import status as status_cmd

    return status_cmd.show(as_json=as_json)


def logs(*, follow: bool, lines: int) -> int:
    path = log_path()
    try:
        f: BinaryIO = open(path, "rb")  # noqa: SIM115 (closed by show, which may move to a new file)
    except FileNotFoundError:
        print(f"ccproxy: no log yet at {path} (it is written by `ccproxy start`)", file=sys.stderr)
        return 1
    with contextlib.suppress(KeyboardInterrupt):
        show(path, f, lines, follow=follow)
    return 0
