"""The error tree: one name per fact, and the 503/529 overload mapping in one place."""

from __future__ import annotations

import pytest

from ccproxy_core.core.errors import (
    InvalidRequest,
    Overloaded,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
    anthropic_body,
    openai_status_and_body,
    status_for_anthropic_type,
    status_for_dialect,
)


@pytest.mark.parametrize(
    ("status", "dialect", "expected"),
    [
        (529, "openai", 503),
        (503, "anthropic", 529),
        (503, "openai", 503),
        (529, "anthropic", 529),
        (500, "openai", 500),
    ],
)
def test_overload_is_529_for_anthropic_and_503_for_openai(status: int, dialect: str, expected: int) -> None:
    """Overload is spelled 529 to Anthropic clients and 503 to OpenAI ones; other statuses pass."""
    assert status_for_dialect(status, dialect) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("etype", "status"),
    [
        ("invalid_request_error", 400),
        ("billing_error", 402),
        ("request_too_large", 413),
        ("rate_limit_error", 429),
        ("timeout_error", 504),
        ("overloaded_error", 529),
        ("something_new", 500),
    ],
)
def test_an_in_band_error_type_stands_for_its_status(etype: str, status: int) -> None:
    """A stream `error` event carries only a type; the status comes from the same table."""
    assert status_for_anthropic_type(etype) == status


def test_an_openai_503_reads_as_anthropic_overload() -> None:
    """A provider's OpenAI-style 503 becomes 529 overloaded_error, and 503 again to OpenAI clients."""
    err = UpstreamError.from_openai(503, {"error": {"message": "busy"}})
    assert (err.http_status, err.type) == (529, "overloaded_error")
    assert openai_status_and_body(err)[0] == 503
    assert openai_status_and_body(Overloaded("x"))[0] == 503


def test_overload_carried_by_another_status_is_503_to_openai_clients() -> None:
    """An overload typed error on a 504 (a stalled stream) is still a 503 to an OpenAI client."""

    class Stalled(UpstreamTimeout):
        _type = "overloaded_error"

    assert openai_status_and_body(Stalled("idle"))[0] == 503
    assert openai_status_and_body(UpstreamTimeout("slow"))[0] == 504
    assert openai_status_and_body(ServiceUnavailable("none"))[0] == 503


def test_each_fact_has_one_read_name() -> None:
    """`http_status` and `type` are the read API; the old `status`/`error_type` names are gone."""
    err = InvalidRequest("bad")
    assert (err.http_status, err.type) == (400, "invalid_request_error")
    assert not hasattr(err, "status") and not hasattr(err, "error_type")
    assert anthropic_body(err)["error"] == {"type": "invalid_request_error", "message": "bad"}
