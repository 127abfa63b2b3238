"""`ccproxy usage`: the ledger as a table or as the /usage JSON, from the file when no server runs."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from ccproxy_core.cli import usage
from ccproxy_core.cli.main import main
from ccproxy_core.usage.ledger import Ledger
from ccproxy_core.usage.record import UsageRecord


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "usage.sqlite3"
    ledger = Ledger(path)
    ledger.start()
    now = time.time()
    for i, (cred, cost) in enumerate((("alice", 0.25), ("alice", 0.5), ("bob", None))):
        ledger.add(
            UsageRecord(
                ts=now - 60 + i,
                request_id=f"r{i}",
                provider="max",
                credential=cred,
                model="m",
                upstream_model="m",
                status=200,
                input_tokens=1000 * (i + 1),
                output_tokens=10,
                cost_usd=cost,
            )
        )
    ledger.sync()
    ledger.close()
    cfg = tmp_path / "config.json"
    cfg.write_text(orjson.dumps({"usage": {"path": str(path)}}).decode())
    return str(cfg)


def test_table_from_the_ledger_file_when_no_server_runs(config_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    """With no server, the file is read: one line per credential, a totals line, unpriced requests marked."""
    assert main(["usage", "--by", "credential", "--config", config_file]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "by credential" in lines[0] and "usage.sqlite3" in lines[0]
    assert lines[1].split()[:3] == ["CREDENTIAL", "REQUESTS", "ERRORS"]
    alice = next(line for line in lines if line.startswith("max/alice"))
    assert alice.split()[1] == "2" and alice.split()[3] == "3,000" and alice.endswith("0.7500")
    bob = next(line for line in lines if line.startswith("max/bob"))
    assert bob.endswith("unpriced")
    assert lines[-1].startswith("TOTAL") and "(+1 unpriced)" in lines[-1]


def test_json_is_the_usage_document(config_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the /usage document: rows and totals with every field."""
    assert main(["usage", "--json", "--by", "model", "--since", "1h", "--config", config_file]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert doc["group_by"] == "model" and doc["totals"]["requests"] == 3
    assert set(doc["rows"][0]) == {
        "key",
        "requests",
        "errors",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
        "cost_usd",
        "unpriced_requests",
    }


def test_bad_since_names_the_flag(config_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A --since that is neither a span nor a date is one line naming it."""
    assert main(["usage", "--since", "last week", "--config", config_file]) == 1
    assert "since: expected ISO 8601" in capsys.readouterr().err


def test_no_ledger_yet_says_where_it_looked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before any request was recorded, it says which file it looked for."""
    cfg = tmp_path / "c.json"
    cfg.write_text(orjson.dumps({"usage": {"path": str(tmp_path / "none.sqlite3")}}).decode())
    assert main(["usage", "--config", str(cfg)]) == 1
    assert "no usage recorded yet" in capsys.readouterr().err


def test_render_empty_window() -> None:
    """An empty window says so instead of printing an empty table."""
    doc = {"since": "a", "until": "b", "group_by": "model", "rows": [], "totals": {}}
    assert usage.render(doc, "x").endswith("no requests in this window")
