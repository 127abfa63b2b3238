"""Circuit breakers: closed -> open -> half_open -> closed, driven by an injected clock."""

from __future__ import annotations

import pytest

from ccproxy_core.core.breaker import BreakerBoard, BreakerSettings, CircuitBreaker, counts_as_failure

SETTINGS = BreakerSettings(
    consecutive_failures=3,
    error_threshold=0.5,
    min_requests=6,
    open_seconds=30.0,
    half_open_max_requests=2,
    window_seconds=60.0,
)


def fail(b: CircuitBreaker, times: int, now: float = 0.0) -> None:
    for _ in range(times):
        b.record(False, now)


def opened(now: float = 0.0) -> CircuitBreaker:
    b = CircuitBreaker(SETTINGS)
    fail(b, 3, now)
    assert b.state(now) == "open"
    return b


def test_starts_closed_and_allows() -> None:
    """A new breaker is closed and lets requests through."""
    b = CircuitBreaker(SETTINGS)
    assert (b.state(0.0), b.allow(0.0), b.available(0.0)) == ("closed", True, True)


def test_opens_after_consecutive_failures() -> None:
    """N failures in a row open the circuit; N-1 do not."""
    b = CircuitBreaker(SETTINGS)
    fail(b, 2)
    assert b.state(0.0) == "closed"
    fail(b, 1)
    assert b.state(1.0) == "open"
    assert b.allow(1.0) is False
    assert b.retry_after(1.0) == pytest.approx(29.0)


def test_a_success_resets_the_consecutive_count() -> None:
    """Failures separated by successes do not count as consecutive."""
    b = CircuitBreaker(SETTINGS)
    for _ in range(2):
        fail(b, 2)
        b.record(True, 0.0)
    assert b.state(0.0) == "closed"


@pytest.mark.parametrize(
    ("outcomes", "state"),
    [
        # 3 failures of 6 (0.5 >= threshold), never 3 in a row; judged when a failure arrives
        ([True, False, True, True, False, False], "open"),
        # 2 of 6 is below the threshold
        ([True, False, True, False, True, True], "closed"),
        # 2 of 4 is at the threshold but below min_requests
        ([True, False, True, False], "closed"),
    ],
)
def test_error_rate_over_min_requests(outcomes: list[bool], state: str) -> None:
    """The error rate opens the circuit only with at least min_requests in the window."""
    b = CircuitBreaker(SETTINGS)
    for ok in outcomes:
        b.record(ok, 0.0)
    assert b.state(0.0) == state


def test_old_outcomes_leave_the_window() -> None:
    """Errors older than the window no longer count toward the error rate."""
    b = CircuitBreaker(SETTINGS)
    for ok in (False, True, False, True):
        b.record(ok, 0.0)
    for ok in (True, True, False, True):  # 1 failure of 4 recent; 3 of 8 overall
        b.record(ok, 100.0)
    assert b.state(100.0) == "closed"


def test_half_open_after_open_seconds() -> None:
    """The circuit stays open for open_seconds, then lets probes through."""
    b = opened(now=10.0)
    assert b.state(39.9) == "open"
    assert b.available(39.9) is False
    assert b.state(40.0) == "half_open"
    assert b.retry_after(40.0) == 0.0


def test_half_open_allows_only_the_probe_budget() -> None:
    """In half_open, only half_open_max_requests requests are let through."""
    b = opened()
    assert [b.allow(30.0) for _ in range(3)] == [True, True, False]
    assert b.available(30.0) is False


def test_half_open_closes_after_enough_successes() -> None:
    """As many successful probes as the budget close the circuit."""
    b = opened()
    b.allow(30.0)
    b.record(True, 30.5)
    assert b.state(30.5) == "half_open"
    b.allow(30.5)
    b.record(True, 31.0)
    assert b.state(31.0) == "closed"
    fail(b, 2, 31.0)  # the old failures were forgotten on close
    assert b.state(31.0) == "closed"


def test_any_half_open_failure_reopens() -> None:
    """One failed probe reopens the circuit for another open_seconds."""
    b = opened()
    b.allow(30.0)
    b.record(True, 30.0)
    b.allow(30.0)
    b.record(False, 31.0)
    assert b.state(31.0) == "open"
    assert b.state(60.9) == "open"
    assert b.state(61.0) == "half_open"


def test_probes_that_never_report_are_released() -> None:
    """A probe lost without an outcome frees its slot after open_seconds of silence."""
    b = opened()
    assert b.allow(30.0)
    assert b.allow(30.0)
    assert b.allow(59.0) is False
    assert b.allow(60.0) is True


def test_late_outcomes_while_open_are_ignored() -> None:
    """An answer to a request sent before the circuit opened changes nothing."""
    b = opened()
    b.record(True, 1.0)
    b.record(True, 1.0)
    assert b.state(1.0) == "open"


def test_disabled_breaker_never_opens() -> None:
    """With enabled false every request is allowed whatever happens."""
    b = CircuitBreaker(BreakerSettings(enabled=False, consecutive_failures=1))
    fail(b, 10)
    assert (b.state(0.0), b.allow(0.0)) == ("closed", True)


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        (None, True),
        (500, True),
        (502, True),
        (529, True),
        (429, True),
        (200, False),
        (400, False),
        (401, False),
        (404, False),
        (413, False),
    ],
)
def test_which_outcomes_are_the_providers_fault(status: int | None, failure: bool) -> None:
    """No answer, 429 and 5xx count against a provider; client errors do not."""
    assert counts_as_failure(status) is failure


def test_board_reports_unavailable_providers() -> None:
    """The board keeps one breaker per provider and lists the ones routing must skip."""
    board = BreakerBoard(SETTINGS)
    fail(board.get("deepseek"), 3, 0.0)
    board.get("openai").record(True, 0.0)
    assert board.get("deepseek") is board.get("deepseek")
    assert board.unavailable(1.0) == frozenset({"deepseek"})
    assert board.states(1.0) == {"deepseek": "open", "openai": "closed"}
    assert board.unavailable(30.0) == frozenset()  # half_open: probes may go
