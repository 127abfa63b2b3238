"""The pending-calls rule (translate/pending.py): notes wait behind awaited calls, and calls left
without a result get an answer filled in, whatever the wire shape of the translator using it."""

from __future__ import annotations

from typing import Any

import pytest

from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.pending import PendingCalls


def _filled(call_id: str) -> JSON:
    return {"filled": call_id}


def _run(steps: list[tuple[str, Any]]) -> list[Any]:
    """Plays (operation, argument) steps; collects what each returns that goes out, and answer's verdicts."""
    pending = PendingCalls(_filled)
    out: list[Any] = []
    for op, arg in steps:
        if op == "expect":
            pending.expect(arg)
        elif op == "answer":
            out.append(("answered" if pending.answer(arg) else "orphan", arg))
        elif op == "note":
            out.extend(pending.note(arg))
        else:
            out.extend(pending.settle())
    return out


@pytest.mark.parametrize(
    ("steps", "out"),
    [
        pytest.param([("note", "n1"), ("settle", None)], ["n1"], id="a note with nothing awaited goes out at once"),
        pytest.param([("settle", None)], [], id="settling with nothing pending gives nothing"),
        pytest.param(
            [("expect", "a"), ("answer", "a"), ("settle", None)],
            [("answered", "a")],
            id="an answered call needs no filled-in answer",
        ),
        pytest.param(
            [("expect", "a"), ("expect", "b"), ("answer", "b"), ("settle", None)],
            [("answered", "b"), {"filled": "a"}],
            id="a call left without a result is answered at settle",
        ),
        pytest.param(
            [("expect", "a"), ("answer", "x"), ("answer", "a"), ("answer", "a")],
            [("orphan", "x"), ("answered", "a"), ("orphan", "a")],
            id="a result for no awaited call is an orphan, and a call is answered once",
        ),
        pytest.param(
            [("expect", "a"), ("note", "n1"), ("note", "n2"), ("answer", "a"), ("settle", None)],
            [("answered", "a"), "n1", "n2"],
            id="notes arriving while a call awaits are held until settle, in order",
        ),
        pytest.param(
            [("expect", "a"), ("note", "n1"), ("settle", None)],
            [{"filled": "a"}, "n1"],
            id="held notes follow the filled-in answers",
        ),
        pytest.param(
            [("expect", "a"), ("note", "n1"), ("settle", None), ("note", "n2"), ("settle", None)],
            [{"filled": "a"}, "n1", "n2"],
            id="after settle nothing awaits: the next note goes out at once and nothing is repeated",
        ),
        pytest.param(
            [("expect", "a"), ("settle", None), ("answer", "a")],
            [{"filled": "a"}, ("orphan", "a")],
            id="a result that comes after its turn settled is an orphan",
        ),
    ],
)
def test_pending_calls(steps: list[tuple[str, Any]], out: list[Any]) -> None:
    """Each sequence of calls, results and notes gives out these items, in this order."""
    assert _run(steps) == out


def test_settle_returns_a_new_sequence_each_time() -> None:
    """What settle returned stays as it was when the next turn's calls are expected."""
    pending = PendingCalls(_filled)
    pending.expect("a")
    first = pending.settle()
    pending.expect("b")
    assert list(first) == [{"filled": "a"}]
    assert list(pending.settle()) == [{"filled": "b"}]
