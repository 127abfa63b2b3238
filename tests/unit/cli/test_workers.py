"""The supervisor's pure decisions (cli/workers.py) and the worker's log tag (server.app.configure_logging)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccproxy_core.cli import daemon, pidfile, workers
from ccproxy_core.cli.main import build_parser
from ccproxy_core.config.model import structure
from ccproxy_core.server.app import configure_logging
from ccproxy_core.server.workers import WorkerSlot

REDIS = {"state": {"backend": "redis", "redis_url": "redis://127.0.0.1:6379/0"}}


def test_one_worker_is_never_refused() -> None:
    """A single worker needs neither shared state nor SO_REUSEPORT."""
    assert workers.refusal(structure({}), 1, reuse_port=False) is None


def test_many_workers_with_the_memory_backend_are_refused_with_the_fix() -> None:
    """With state in memory, the refusal names what would diverge and both ways to select Redis."""
    why = workers.refusal(structure({}), 3, reuse_port=True)
    assert why is not None and why.startswith("--workers 3: state.backend is memory")
    assert "cooldowns" in why and "state.redis_url" in why and "CCPROXY_REDIS_URL" in why


def test_many_workers_without_so_reuseport_are_refused() -> None:
    """Where the OS cannot share a port, the refusal says so and points at one instance per port."""
    why = workers.refusal(structure(REDIS), 2, reuse_port=False)
    assert why is not None and "no SO_REUSEPORT" in why and "Many instances" in why
    assert workers.refusal(structure(REDIS), 2, reuse_port=True) is None


def test_the_restart_budget_allows_a_few_restarts_a_minute() -> None:
    """RESTARTS restarts fit in the window, the next one does not, and one fits again once the oldest has aged out."""
    budget = workers.RestartBudget(limit=3, window=60.0)
    for t in (0.0, 1.0, 2.0):
        ok, budget = budget.spend(t)
        assert ok
    ok, budget = budget.spend(30.0)
    assert not ok
    ok, budget = budget.spend(60.5)
    assert ok and budget.times == (1.0, 2.0, 60.5)


def test_exit_reasons_read_as_words() -> None:
    """A return code becomes an exit status or a named signal."""
    assert workers.exit_reason(1) == "exit status 1"
    assert workers.exit_reason(-9) == "signal 9 (SIGKILL)"
    assert workers.exit_reason(-200) == "signal 200"


def test_each_worker_runs_serve_with_its_index() -> None:
    """A worker's arguments repeat the resolved host, port, config and log level, plus the group size and its index."""
    argv = workers.worker_argv(2, 3, "0.0.0.0", 3456, "/etc/c.json", "debug")
    own = ["serve", "--host", "0.0.0.0", "--port", "3456", "--config", "/etc/c.json", "--log-level", "debug"]
    assert argv == [*own, "--workers", "3", "--worker-index", "2"]
    args = build_parser().parse_args(argv)
    assert (args.workers, args.worker_index, args.port) == (3, 2, 3456)


def test_the_workers_flag_takes_a_positive_count() -> None:
    """`--workers 0` is refused by the parser, with the range."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--workers", "0"])


@pytest.fixture
def ccproxy_log() -> Iterator[io.StringIO]:
    """The "ccproxy" logger writing to a buffer; its previous handlers are put back afterwards."""
    logger = logging.getLogger("ccproxy")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield io.StringIO()
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_worker_tags_its_log_lines(fmt: str, ccproxy_log: io.StringIO) -> None:
    """A text line carries "[worker 2/3]" after the logger name; a JSON line a "worker" field."""
    configure_logging("info", fmt=fmt, worker=WorkerSlot(2, 3, 1).label)
    handler = logging.getLogger("ccproxy").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(ccproxy_log)
    logging.getLogger("ccproxy").info("hello")
    line = ccproxy_log.getvalue().strip()
    if fmt == "json":
        assert json.loads(line)["worker"] == "worker 2/3"
    else:
        assert line.endswith("INFO ccproxy [worker 2/3]: hello")


def test_the_background_server_keeps_its_worker_count(tmp_path: Path) -> None:
    """`start --workers 3` passes the count to the detached `serve`, the pidfile keeps it, and `restart` without the flag reuses it."""
    flags = pidfile.Flags.given(None, None, None, None, workers=3)
    argv = daemon._server_command(flags, "127.0.0.1", 3456, tmp_path / "log")
    assert argv[argv.index("--workers") + 1] == "3"
    assert pidfile.Flags.given(None, 4000, None, None).over(flags).workers == 3
    one = daemon._server_command(pidfile.Flags.given(None, None, None, None, workers=1), "127.0.0.1", 3456, tmp_path)
    assert "--workers" not in one
    info = pidfile.PidInfo(1, "127.0.0.1", 3456, "http://127.0.0.1:3456", 0.0, "v", "", "log", flags)
    pidfile.write_pidfile(info)
    loaded = pidfile.load_pidfile()[1]
    assert loaded is not None and loaded.flags.workers == 3
