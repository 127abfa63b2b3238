"""The usage ledger file: SQLite (WAL), written in batches by one thread, never in a request's way.

The writer starts with the first row added or with `start` (a reader's first read), not with the
server, and opens the file on its own thread: a server that has proxied nothing has not loaded SQLite
(about 1.6 MB). A finished request hands its `UsageRecord` to `Ledger.add`, which only appends it to a bounded
queue: when the queue is full the record is counted as dropped (and the drop logged, once per
burst), so a slow disk can cost rows but never a request's latency. One writer thread owns the
writing connection; twice a second (or at once when a reader asks for `sync`) it writes what is
queued in transactions of up to `BATCH` rows, so the ledger costs two commits a second, not one
per request; it deletes rows past `retention_days` at start and then hourly. Readers
(`/usage`, `ccproxy usage`) open their own connections: WAL lets them read while it writes.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ccproxy_core import dirs
from ccproxy_core.usage.record import COLUMNS, UsageRecord

if TYPE_CHECKING:
    import sqlite3

log = logging.getLogger("ccproxy.usage")

BATCH = 1000
QUEUE_SIZE = 20_000
PURGE_EVERY = 3600.0
FLUSH_INTERVAL = 0.5  # seconds between writes: two commits a second, whatever the request rate

_TYPES = {
    "ts": "REAL NOT NULL",
    "status": "INTEGER",
    "stream": "INTEGER",
    "latency_ms": "REAL",
    "ttfb_ms": "REAL",
    "input_tokens": "INTEGER",
    "output_tokens": "INTEGER",
    "cache_read_tokens": "INTEGER",
    "cache_creation_tokens": "INTEGER",
    "cost_usd": "REAL",
}
_COLUMN_DEFS = ", ".join(f"{c} {_TYPES.get(c, 'TEXT')}" for c in COLUMNS)
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS requests ({_COLUMN_DEFS});CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);"
)
# Rows go in by multi-row INSERTs of up to ROWS_PER_STATEMENT rows (SQLite's 999-parameter
# limit of versions before 3.32), not by executemany: sqlite3 lets go of the GIL around each
# statement it steps, so a statement per row handed the GIL to the event loop's thread and back
# twice per row, each handoff a futex call and a context switch on the loop's thread.
ROWS_PER_STATEMENT = 999 // len(COLUMNS)


def statement_sizes(rows: int) -> list[int]:
    """How many rows each INSERT of a batch of `rows` holds: full statements, then the rest as
    powers of two (37 = 32 + 4 + 1). SQLite compiles each distinct statement text once (the
    connection caches it); a statement of every size a batch happened to have compiled anew at
    nearly every write under a steady load, for more instructions than the rows' inserting."""
    sizes = [ROWS_PER_STATEMENT] * (rows // ROWS_PER_STATEMENT)
    rest = rows % ROWS_PER_STATEMENT
    while rest:
        size = 1 << (rest.bit_length() - 1)
        sizes.append(size)
        rest -= size
    return sizes


@functools.cache
def insert_rows(count: int) -> str:
    """The INSERT statement of `count` rows."""
    row = f"({', '.join('?' * len(COLUMNS))})"
    return f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES {', '.join([row] * count)}"


INSERT = insert_rows(1)


def default_path() -> Path:
    return dirs.state_dir() / "usage.sqlite3"


def resolve_path(setting: str) -> Path:
    """`usage.path`, or the default under the user's state directory."""
    return Path(setting).expanduser() if setting else default_path()


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """A connection to the ledger; `create` makes the file (0600) and its table when missing."""
    import sqlite3  # loaded with the first connection, not with the server

    if create:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    elif not path.exists():
        raise FileNotFoundError(f"no usage ledger at {path}")
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 5000")
    if create:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(SCHEMA)
    return conn


@contextlib.contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


class Ledger:
    """The writer: `add` from the event loop, rows written by a thread of its own."""

    def __init__(
        self,
        path: Path,
        *,
        retention_days: float = 90.0,
        queue_size: int = QUEUE_SIZE,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        self.path = path
        self.retention_days = retention_days
        self.flush_interval = flush_interval
        self.queue_size = queue_size
        self.dropped = 0
        self.written = 0
        self.failed = 0
        # A deque, not a queue.Queue: appending is one atomic call with no lock, and the writer is
        # not woken per row (it wakes every flush_interval, or when a reader asks for a sync).
        self._pending: deque[UsageRecord] = deque()
        self._enqueued = 0  # only the event loop's thread writes it
        self._wake = threading.Event()
        self._stop = False
        self._done = threading.Condition()
        self._thread: threading.Thread | None = None
        self._opened = threading.Event()  # set once the writer has opened the file, or failed to
        self._failed_open = False
        self._drop_logged = False

    def start(self) -> None:
        """Start the writer, which opens (or creates) the file first; nothing here waits on the disk.
        A ledger that cannot open is logged, not fatal: its rows are counted as failed."""
        if self._thread is None and not self._stop:  # never again after close(): the server is going
            self._thread = threading.Thread(target=self._run, name="ccproxy-ledger", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        """Started, and not (yet) known to be unable to open its file."""
        return self._thread is not None and self._thread.is_alive() and not self._failed_open

    def add(self, record: UsageRecord) -> bool:
        """Queue one row, starting the writer with the first; never blocks. False (and counted in
        `dropped`) when the queue is full; False, uncounted, once closed or unable to open its file."""
        if self._thread is None:
            self.start()
        if self._failed_open or self._stop:
            return False
        if len(self._pending) >= self.queue_size:
            self.dropped += 1
            if not self._drop_logged:
                self._drop_logged = True
                log.warning(
                    "usage ledger queue is full (%d rows): dropping rows until it drains; %d dropped so far",
                    self.queue_size,
                    self.dropped,
                )
            return False
        self._pending.append(record)
        self._enqueued += 1
        return True

    def sync(self, timeout: float = 5.0) -> bool:
        """Wait until every row queued before this call is in the file (for readers that must see it)."""
        if not self.running:
            return True
        target = self._enqueued
        if not self._opened.wait(timeout):
            return False
        with self._done:
            self._wake.set()
            return self._done.wait_for(lambda: self.written + self.failed >= target, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer (for good: a later row or read does not start it again)."""
        self._stop = True
        if self._thread is None:
            return
        self._wake.set()
        self._thread.join(timeout)

    # --- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        import sqlite3

        try:
            conn = connect(self.path, create=True)
        except (OSError, sqlite3.Error) as exc:
            log.error(
                "usage ledger disabled: cannot open %s: %s (set usage.path, or usage.enabled: false)", self.path, exc
            )
            with self._done:
                self._failed_open = True
                self.failed += len(self._pending)
                self._pending.clear()
                self._done.notify_all()
            self._opened.set()
            return
        self._opened.set()
        next_purge = 0.0
        try:
            while True:
                now = time.time()
                if now >= next_purge:
                    self._purge(conn, now)
                    next_purge = now + PURGE_EVERY
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                stop = self._stop
                while True:  # everything queued, in transactions of at most BATCH rows
                    batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
                    self._write(conn, batch)
                    if len(batch) < BATCH:
                        break
                if stop:
                    return
        finally:
            conn.close()

    def _write(self, conn: sqlite3.Connection, records: list[UsageRecord]) -> None:
        import sqlite3

        ok = True
        if records:
            try:
                with conn:
                    conn.execute("BEGIN")
                    start = 0
                    for size in statement_sizes(len(records)):
                        part = records[start : start + size]
                        values = list(itertools.chain.from_iterable(part))  # a record is its row
                        conn.execute(insert_rows(size), values)
                        start += size
            except sqlite3.Error as exc:
                ok = False
                log.error("usage ledger: could not write %d row(s) to %s: %s", len(records), self.path, exc)
        with self._done:
            if ok:
                self.written += len(records)
            else:
                self.failed += len(records)
            self._drop_logged = False
            self._done.notify_all()

    def _purge(self, conn: sqlite3.Connection, now: float) -> None:
        import sqlite3

        if self.retention_days <= 0:
            return
        try:
            gone = conn.execute("DELETE FROM requests WHERE ts < ?", (now - self.retention_days * 86400.0,)).rowcount
        except sqlite3.Error as exc:
            log.warning("usage ledger: could not delete old rows: %s", exc)
            return
        if gone:
            log.info("usage ledger: deleted %d row(s) older than %g days", gone, self.retention_days)
