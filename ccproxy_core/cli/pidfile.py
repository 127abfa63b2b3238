"""The background proxy's pidfile: what `ccproxy start` started, kept where every command finds it.

    user_state_dir/ccproxy.pid    JSON: pid, host, port, url, started_at, version, proc_start,
                                  flags, log, cwd; written atomically (temp file + rename)
    user_state_dir/ccproxy.lock   held while a start, stop or restart runs (cli/daemon.py)

A pid alone does not name a process: pids are reused, so the file keeps the process's start
time too, and `is_ours` checks both. cli/daemon.py starts and stops the server; `status`,
`code`, `usage`, `keys` and the home screen read the file through it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson
from attrs import asdict, frozen

from ccproxy_core import dirs
from ccproxy_core.cli.daemon_log import log_path
from ccproxy_core.cli.processes import cmdline, probe
from ccproxy_core.files import atomic_write


@frozen
class Flags:
    """The flags a daemon was started with, kept in the pidfile so `restart` can reuse them."""

    host: str | None = None
    port: int | None = None
    config: str | None = None
    log_level: str | None = None
    workers: int | None = None  # `--workers N` (cli/workers.py): the pid is then the supervisor's

    @classmethod
    def given(
        cls, host: str | None, port: int | None, config: str | None, log_level: str | None, workers: int | None = None
    ) -> Flags:
        return cls(host, port, str(Path(config).expanduser().resolve()) if config else None, log_level, workers)

    def over(self, previous: Flags) -> Flags:
        """These flags, falling back to `previous` for the ones not given."""
        return Flags(
            *(
                mine if mine is not None else old
                for mine, old in zip(asdict(self).values(), asdict(previous).values(), strict=True)
            )
        )


@frozen
class Endpoint:
    host: str
    port: int
    url: str
    pid: int
    started: bool = False  # True when this call started the server


@frozen
class PidInfo:
    pid: int
    host: str
    port: int
    url: str
    started_at: float
    version: str
    proc_start: str  # "" when the platform cannot tell
    log: str
    flags: Flags = Flags()
    cwd: str = ""  # where it was started: its project config is read from there

    def endpoint(self, *, started: bool = False) -> Endpoint:
        return Endpoint(self.host, self.port, self.url, self.pid, started)


# --- paths ----------------------------------------------------------------------------------------


def pidfile_path() -> Path:
    return dirs.state_dir() / "ccproxy.pid"


def lock_path() -> Path:
    return pidfile_path().with_name("ccproxy.lock")


def client_url(host: str, port: int) -> str:
    """The URL a client on this machine uses; a wildcard listen address becomes loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


# --- the pidfile ----------------------------------------------------------------------------------


def write_pidfile(info: PidInfo) -> None:
    atomic_write(pidfile_path(), orjson.dumps(asdict(info), option=orjson.OPT_INDENT_2) + b"\n", mode=0o644)


def load_pidfile() -> tuple[bool, PidInfo | None]:
    """(the file exists, its content when readable)."""
    path = pidfile_path()
    try:
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return False, None
    except (OSError, ValueError):
        return True, None
    try:
        flags = raw.get("flags") or {}
        info = PidInfo(
            pid=int(raw["pid"]),
            host=str(raw["host"]),
            port=int(raw["port"]),
            url=str(raw["url"]),
            started_at=float(raw.get("started_at") or 0),
            version=str(raw.get("version") or "?"),
            proc_start=str(raw.get("proc_start") or ""),
            log=str(raw.get("log") or log_path()),
            flags=Flags(
                flags.get("host"), flags.get("port"), flags.get("config"), flags.get("log_level"), flags.get("workers")
            ),
            cwd=str(raw.get("cwd") or ""),
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        return True, None
    return True, info


def remove_pidfile(pid: int | None = None) -> None:
    """Remove the pidfile; with `pid`, only while it still names that process."""
    if pid is not None:
        _, info = load_pidfile()
        if info is not None and info.pid != pid:
            return
    with contextlib.suppress(FileNotFoundError):
        pidfile_path().unlink()


# --- processes ------------------------------------------------------------------------------------


def is_ours(info: PidInfo) -> bool:
    """Is the pidfile's process alive, and still the one that was started (not a reused pid)?"""
    alive, identity = probe(info.pid)
    if not alive:
        return False
    if identity and info.proc_start:
        return identity == info.proc_start
    command = cmdline(info.pid)  # a pidfile without a start time: fall back on the command line
    return command is None or "ccproxy" in command
