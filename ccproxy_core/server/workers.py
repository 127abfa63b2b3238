"""The server's side of `ccproxy serve --workers N`: which worker this process is, and its tie to the supervisor.

The supervisor (cli/workers.py) starts N copies of `ccproxy serve`, each binding the same port
with SO_REUSEPORT. A worker learns its place from the hidden `--worker-index` flag and keeps it
as a `WorkerSlot` in the app (`WORKER`), so `/health` can say which worker answered and the log
lines say "worker 2/3".

A worker must not outlive its supervisor: its stdin is a pipe whose only writer is the
supervisor, so end-of-file on it means the supervisor is gone (even by SIGKILL, which no handler
sees). `watch_supervisor` then sends the worker SIGTERM: it drains its requests and exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

from aiohttp import web
from attrs import frozen


@frozen
class WorkerSlot:
    index: int  # 1-based
    count: int
    supervisor: int  # the supervisor's pid

    @property
    def label(self) -> str:
        return f"worker {self.index}/{self.count}"

    def health(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count, "supervisor": self.supervisor}


WORKER = web.AppKey("worker", WorkerSlot)


def watch_supervisor() -> threading.Thread:
    """SIGTERM to this process once stdin (the supervisor's pipe) reaches end-of-file."""

    def wait_for_eof() -> None:
        # os.read, not sys.stdin: a daemon thread blocked inside the buffered reader holds its
        # lock, and the interpreter aborts when it meets that lock at exit.
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass  # the supervisor writes nothing; anything sent is ignored
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=wait_for_eof, name="supervisor-watch", daemon=True)
    thread.start()
    return thread
