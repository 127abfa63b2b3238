"""Rate-limit headers of every family become one headroom figure and one reset time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccproxy_core.core.ratelimit_headers import headroom, parse, reset_at, retry_after
from tests.fakes import recorded_headers

NOW = 1_800_000_000.0


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("recording", "expected"),
    [
        # API key, buckets barely touched: requests 19999/20000 is the tightest.
        ("anthropic/stream_text.headers.json", 19999 / 20000),
        # OpenAI: requests 29999/30000 is tighter than tokens 149999993/150000000.
        ("openai/headers_200_chat_stream.json", 29999 / 30000),
        # 2024 API-key 429: requests remaining 0.
        ("anthropic/error_429_headers_api_key_2024.json", 0.0),
        # Subscription 429: unified status rejected.
        ("anthropic/error_429_headers_oauth_unified.json", 0.0),
        # Subscription 200s carry statuses but no utilization figure: unknown, not full.
        ("anthropic/headers_200_oauth_unified_stream.json", None),
        ("anthropic/headers_200_oauth_unified_nonstream.json", None),
        # Headers stripped by the recorder: nothing to say.
        ("anthropic/error_429_rate_limit.headers.json", None),
        ("anthropic/error_529_overloaded.headers.json", None),
    ],
)
def test_headroom_of_real_recordings(recording: str, expected: float | None) -> None:
    """The fraction left in the most restrictive limit of each recorded response."""
    assert headroom(recorded_headers(recording)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"anthropic-ratelimit-unified-5h-utilization": "0.3", "anthropic-ratelimit-unified-7d-utilization": "0.6"},
            0.4,
        ),
        ({"anthropic-ratelimit-unified-7d-sonnet-utilization": "0.95"}, 0.05),
        (
            {"anthropic-ratelimit-unified-status": "allowed", "anthropic-ratelimit-unified-overage-status": "rejected"},
            None,
        ),
        ({"anthropic-ratelimit-unified-5h-status": "rejected"}, 0.0),
        (
            {
                "anthropic-ratelimit-tokens-limit": "1000",
                "anthropic-ratelimit-tokens-remaining": "250",
                "anthropic-ratelimit-requests-limit": "50",
                "anthropic-ratelimit-requests-remaining": "40",
            },
            0.25,
        ),
        ({"X-RateLimit-Limit-Tokens": "100", "X-RateLimit-Remaining-Tokens": "10"}, 0.1),
        ({"anthropic-ratelimit-tokens-limit": "0", "anthropic-ratelimit-tokens-remaining": "0"}, None),
        ({"anthropic-ratelimit-tokens-limit": "lots", "anthropic-ratelimit-tokens-remaining": "1"}, None),
        ({}, None),
    ],
)
def test_headroom_is_the_tightest_known_limit(headers: dict[str, str], expected: float | None) -> None:
    """Unified utilization, counted buckets and OpenAI buckets; overage is not a capacity window."""
    assert headroom(headers) == pytest.approx(expected)


def test_unified_utilization_is_reported_by_window() -> None:
    """The status API gets each unified window's utilization under its short name."""
    info = parse(recorded_headers("anthropic/error_429_headers_oauth_unified.json"), NOW)
    assert info.utilization == {"5h": 1.0, "7d": 0.3}
    assert info.representative_claim == "five_hour"
    assert info.exhausted


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "120"}, 120.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"Retry-After": " 7 "}, 7.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": datetime.fromtimestamp(NOW + 90, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")}, 90.0),
        ({"retry-after": "Sun, 06 Nov 1994 08:49:37 GMT"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str], expected: float | None) -> None:
    """Seconds (float allowed), milliseconds first, or an HTTP date; never negative."""
    assert retry_after(headers, NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # retry-after is the upstream's own instruction and wins.
        (recorded_headers("anthropic/error_429_headers_oauth_unified.json"), NOW + 684),
        # Without it, the rejected window's reset.
        (
            {
                k: v
                for k, v in recorded_headers("anthropic/error_429_headers_oauth_unified.json").items()
                if k != "retry-after"
            },
            1791069000.0,
        ),
        (
            {
                "anthropic-ratelimit-unified-status": "rejected",
                "anthropic-ratelimit-unified-reset": "1800000500",
                "anthropic-ratelimit-unified-5h-status": "allowed",
                "anthropic-ratelimit-unified-5h-reset": "1800000100",
                "anthropic-ratelimit-unified-7d-status": "rejected",
                "anthropic-ratelimit-unified-7d-reset": "1800009000",
            },
            1800009000.0,
        ),
        # No window rejected: the unified reset.
        (
            {"anthropic-ratelimit-unified-status": "rejected", "anthropic-ratelimit-unified-reset": "1800000500"},
            1800000500.0,
        ),
        # 2024 API-key 429 without retry-after: the drained bucket's reset.
        (recorded_headers("anthropic/error_429_headers_api_key_2024.json"), epoch("2024-03-26T20:00:00")),
        # Two drained buckets: the later reset.
        (
            {
                "anthropic-ratelimit-requests-limit": "5",
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:10Z",
                "anthropic-ratelimit-tokens-limit": "5",
                "anthropic-ratelimit-tokens-remaining": "0",
                "anthropic-ratelimit-tokens-reset": "2026-01-01T00:01:00Z",
            },
            epoch("2026-01-01T00:01:00"),
        ),
        # OpenAI durations are relative to now.
        (
            {
                "x-ratelimit-limit-tokens": "100",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "6m0s",
            },
            NOW + 360,
        ),
        # Nothing drained, nothing said.
        (recorded_headers("anthropic/stream_text.headers.json"), None),
        (recorded_headers("openai/headers_200_chat_stream.json"), None),
        ({}, None),
    ],
)
def test_reset_at_order(headers: dict[str, str], expected: float | None) -> None:
    """retry-after, then the unified (rejected window's) reset, then the latest drained bucket."""
    assert reset_at(headers, NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("2ms", 0.002),
        ("0s", 0.0),
        ("6m0s", 360.0),
        ("1h2m3.5s", 3723.5),
        ("1.378s", 1.378),
        ("750us", 0.00075),
        ("20", 20.0),
        ("5x", None),
        ("m5", None),
        ("", None),
    ],
)
def test_openai_reset_durations(duration: str, seconds: float | None) -> None:
    """Go duration strings as OpenAI sends them; a bare number is read as seconds."""
    headers = {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": duration,
    }
    expected = None if seconds is None else NOW + seconds
    assert reset_at(headers, NOW) == pytest.approx(expected)


@given(
    limit=st.integers(min_value=-5, max_value=10**9),
    remaining=st.integers(min_value=-5, max_value=10**9),
    used=st.floats(allow_nan=True, allow_infinity=True),
)
def test_headroom_is_always_a_fraction_or_unknown(limit: int, remaining: int, used: float) -> None:
    """Whatever numbers an upstream sends, headroom is within 0..1 or None."""
    value = headroom(
        {
            "anthropic-ratelimit-tokens-limit": str(limit),
            "anthropic-ratelimit-tokens-remaining": str(remaining),
            "anthropic-ratelimit-unified-5h-utilization": str(used),
        }
    )
    assert value is None or 0.0 <= value <= 1.0
