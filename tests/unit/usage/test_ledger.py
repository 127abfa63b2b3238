"""The ledger file: batched writes from a thread, drops when full, retention, and the /usage queries."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.usage import query
from ccproxy_core.usage.ledger import ROWS_PER_STATEMENT, Ledger, reading, statement_sizes
from ccproxy_core.usage.record import UsageRecord

DAY = 86400.0


def rec(ts: float, **kw: object) -> UsageRecord:
    return UsageRecord(ts=ts, request_id=f"req_{ts}", **kw)  # type: ignore[arg-type]


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    led = Ledger(tmp_path / "state" / "usage.sqlite3", retention_days=90)
    led.start()
    yield led  # type: ignore[misc]
    led.close()


def test_rows_are_written_and_read_back(ledger: Ledger) -> None:
    """A queued record is in the file after sync, with every column."""
    now = time.time()
    r = rec(now, provider="anthropic", credential="a", status=200, input_tokens=5, cost_usd=None, stream=True)
    assert ledger.add(r)
    assert ledger.sync()
    with reading(ledger.path) as conn:
        rows = query.latest(conn)
    assert rows[0]["request_id"] == r.request_id and rows[0]["stream"] is True and rows[0]["cost_usd"] is None
    assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600


@pytest.mark.parametrize("count", [1, 37, ROWS_PER_STATEMENT - 1, ROWS_PER_STATEMENT + 5, ROWS_PER_STATEMENT * 2 + 3])
def test_a_batch_of_any_size_keeps_every_row(ledger: Ledger, count: int) -> None:
    """A batch in one statement, in full statements and powers of two, or in more statements
    than one holds: every row lands, each with its own values."""
    now = time.time()
    for i in range(count):
        assert ledger.add(rec(now + i, provider=f"p{i}", input_tokens=i, status=200))
    assert ledger.sync()
    with reading(ledger.path) as conn:
        rows = conn.execute("SELECT request_id, provider, input_tokens FROM requests ORDER BY ts").fetchall()
    assert rows == [(f"req_{now + i}", f"p{i}", i) for i in range(count)]
    assert ledger.written == count


def test_batches_of_any_size_use_a_handful_of_statements() -> None:
    """Every batch size splits into statements that hold all its rows, from at most
    ROWS_PER_STATEMENT rows each, and all sizes together use a few distinct statements (each is
    compiled once by SQLite, then taken from the connection's cache)."""
    seen: set[int] = set()
    for rows in range(0, 2001):
        sizes = statement_sizes(rows)
        assert sum(sizes) == rows and all(0 < size <= ROWS_PER_STATEMENT for size in sizes)
        assert sizes == sorted(sizes, reverse=True)
        seen.update(sizes)
    assert statement_sizes(ROWS_PER_STATEMENT + 37) == [ROWS_PER_STATEMENT, 32, 4, 1]
    assert len(seen) <= 1 + ROWS_PER_STATEMENT.bit_length()


def test_the_first_row_starts_the_writer(tmp_path: Path) -> None:
    """A ledger nobody started opens its file with the first row added, and writes it."""
    led = Ledger(tmp_path / "state" / "u.sqlite3")
    assert not led.running and not led.path.exists()
    assert led.add(rec(1.0)) and led.running
    assert led.sync()
    led.close()
    with reading(led.path) as conn:
        assert [r["request_id"] for r in query.latest(conn)] == ["req_1.0"]


def test_a_closed_ledger_is_not_started_again(tmp_path: Path) -> None:
    """After close (the server shutting down), a late row is refused and does not start a new writer."""
    led = Ledger(tmp_path / "u.sqlite3")
    led.start()
    assert led.add(rec(1.0)) and led.sync()
    led.close()
    led.start()
    assert not led.add(rec(2.0)) and not led.running
    with reading(led.path) as conn:
        assert [r["request_id"] for r in query.latest(conn)] == ["req_1.0"]


def test_full_queue_counts_drops_and_never_blocks(tmp_path: Path) -> None:
    """With the queue full, add returns False at once and counts the drop."""
    led = Ledger(tmp_path / "u.sqlite3", queue_size=2)
    led._thread = object()  # type: ignore[assignment]  # a writer that never drains
    assert led.add(rec(1.0)) and led.add(rec(2.0))
    assert not led.add(rec(3.0))
    assert led.dropped == 1


def test_retention_deletes_old_rows_on_start(tmp_path: Path) -> None:
    """Rows older than retention_days are gone after a restart."""
    path = tmp_path / "u.sqlite3"
    first = Ledger(path, retention_days=1)
    first.start()
    first.add(rec(time.time() - 3 * DAY))
    first.add(rec(time.time()))
    first.sync()
    first.close()
    second = Ledger(path, retention_days=1)
    second.start()
    second.sync()
    time.sleep(0.05)
    second.close()
    with reading(path) as conn:
        assert len(query.latest(conn)) == 1


def test_unwritable_path_disables_the_ledger(tmp_path: Path) -> None:
    """A ledger that cannot open its file is off, and add simply returns False."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    led = Ledger(blocker / "sub" / "u.sqlite3")
    led.start()
    led.sync()  # the writer opens the file on its own thread: by now it has failed
    assert not led.running and not led.add(rec(1.0))


def test_rows_added_as_the_writer_opens_are_written(tmp_path: Path) -> None:
    """start() does not wait for the file: rows added at once are queued and land once it is open."""
    led = Ledger(tmp_path / "state" / "u.sqlite3")
    led.start()
    assert led.add(rec(1.0)) and led.add(rec(2.0))
    assert led.sync()
    led.close()
    with reading(led.path) as conn:
        assert [r["request_id"] for r in query.latest(conn)] == ["req_2.0", "req_1.0"]


def test_aggregate_groups_and_totals(ledger: Ledger) -> None:
    """Grouping by credential keys rows provider/name; unpriced requests are counted; cost sums priced ones."""
    now = time.time()
    ledger.add(
        rec(now - 10, provider="max", credential="alice", status=200, input_tokens=10, output_tokens=1, cost_usd=0.5)
    )
    ledger.add(rec(now - 9, provider="max", credential="alice", status=200, input_tokens=20, cost_usd=0.25))
    ledger.add(rec(now - 8, provider="max", credential="bob", status=429, cost_usd=0.0))
    ledger.add(rec(now - 7, provider="local", status=200, output_tokens=3, cost_usd=None))
    ledger.add(rec(now - 6, status=401, cost_usd=0.0))
    ledger.add(rec(now - 2 * DAY, provider="max", credential="alice", status=200, input_tokens=999))
    ledger.sync()
    with reading(ledger.path) as conn:
        doc = query.aggregate(conn, since=now - DAY, until=now, group_by="credential")
    rows = {r["key"]: r for r in doc["rows"]}
    assert rows["max/alice"]["requests"] == 2 and rows["max/alice"]["input_tokens"] == 30
    assert rows["max/alice"]["cost_usd"] == 0.75
    assert rows["max/bob"]["errors"] == 1
    assert rows["local/-"]["cost_usd"] is None and rows["local/-"]["unpriced_requests"] == 1
    assert rows["(none)"]["requests"] == 1
    assert doc["totals"]["requests"] == 5 and doc["totals"]["input_tokens"] == 30
    assert doc["totals"]["unpriced_requests"] == 1


def test_day_groups_are_in_time_order(ledger: Ledger) -> None:
    """group_by=day keys are dates, oldest first."""
    now = time.time()
    for days in (3, 1, 2):
        ledger.add(rec(now - days * DAY))
    ledger.sync()
    with reading(ledger.path) as conn:
        keys = [r["key"] for r in query.aggregate(conn, since=now - 7 * DAY, until=now, group_by="day")["rows"]]
    assert keys == sorted(keys) and len(keys) == 3


def test_latest_pages_back_with_before(ledger: Ledger) -> None:
    """limit and before page through the newest rows."""
    for i in range(5):
        ledger.add(rec(1000.0 + i))
    ledger.sync()
    with reading(ledger.path) as conn:
        page = query.latest(conn, limit=2)
        older = query.latest(conn, limit=2, before=page[-1]["ts"])
    assert [r["ts"] for r in page] == [1004.0, 1003.0]
    assert [r["ts"] for r in older] == [1002.0, 1001.0]


def test_parse_time_accepts_spans_and_iso() -> None:
    """24h, 7d and ISO 8601 all parse; anything else names the field and the forms."""
    assert query.parse_time("24h", 100_000.0) == 100_000.0 - DAY
    assert query.parse_time("2025-06-01T00:00:00Z", 0) == query.parse_time("2025-06-01", 0)
    with pytest.raises(InvalidRequest, match="since: expected ISO 8601"):
        query.parse_time("yesterday", 0)


def test_unknown_group_is_refused() -> None:
    """group_by names the values it accepts."""
    with pytest.raises(InvalidRequest, match="group_by: expected one of provider, model"):
        query.group_column("colour")
