"""Prices: the most specific glob wins, overrides come first, unpriced is None and never 0."""

from __future__ import annotations

import pytest

from ccproxy_core.core.pricing import PRICES, Price, PriceSetting, TokenCounts, cost_usd, overrides, price_for


def test_dated_claude_snapshot_matches_its_family() -> None:
    """A dated model id is priced by its family's glob."""
    assert price_for("claude-sonnet-4-5-20250929") == Price.claude(3.0, 15.0)
    assert price_for("claude-opus-4-5-20251101") == Price.claude(5.0, 25.0)
    assert price_for("claude-opus-4-1-20250805") == Price.claude(15.0, 75.0)


def test_longest_glob_wins_over_a_shorter_one() -> None:
    """gpt-4.1-mini is priced as mini, not as gpt-4.1, whatever the table's order."""
    assert price_for("gpt-4.1-mini") == PRICES["gpt-4.1-mini*"]
    assert price_for("gpt-4o-mini-2024-07-18") == PRICES["gpt-4o-mini*"]
    assert price_for("gpt-4.1") == PRICES["gpt-4.1*"]


def test_vendor_prefixed_model_is_priced_by_its_tail() -> None:
    """Routers write `vendor/model`; the part after the slash is matched too."""
    assert price_for("anthropic/claude-sonnet-4") == Price.claude(3.0, 15.0)
    assert price_for("openai/gpt-oss-120b") == PRICES["gpt-oss-120b"]


def test_unknown_model_has_no_price_and_no_cost() -> None:
    """An unpriced model costs None, never 0."""
    assert price_for("my-local-llama") is None
    assert cost_usd(None, TokenCounts(input=100)) is None


def test_override_beats_the_table_and_exact_beats_glob() -> None:
    """A config entry replaces the built-in price; an exact name beats a glob."""
    table = overrides({"claude-*": PriceSetting(1.0, 2.0), "claude-sonnet-4-5": PriceSetting(7.0, 8.0)})
    assert price_for("claude-sonnet-4-5", table) == Price(7.0, 8.0, 7.0, 7.0, 7.0)
    assert price_for("claude-opus-4-1", table) == Price(1.0, 2.0, 1.0, 1.0, 1.0)
    assert price_for("gpt-4.1", table) == PRICES["gpt-4.1*"]


def test_setting_defaults_cache_rates() -> None:
    """Omitted cache rates fall back: writes to input, the 1 h write to the 5 m write, reads to input."""
    assert PriceSetting(2.0, 4.0, cache_write_5m=3.0).price() == Price(2.0, 4.0, 3.0, 3.0, 2.0)


def test_cost_prices_cache_tokens_at_their_own_rates() -> None:
    """Reads, 5-minute writes and 1-hour writes each have their own rate."""
    price = Price.claude(3.0, 15.0)  # read 0.30, 5m 3.75, 1h 6.00
    tokens = TokenCounts(
        input=1_000_000, output=1_000_000, cache_read=1_000_000, cache_creation=2_000_000, cache_creation_1h=1_000_000
    )
    assert cost_usd(price, tokens) == pytest.approx(3.0 + 15.0 + 0.30 + 3.75 + 6.0)


def test_zero_tokens_on_a_priced_model_cost_zero() -> None:
    """A priced model with no tokens costs 0.0 (not None)."""
    assert cost_usd(Price.claude(3.0, 15.0), TokenCounts()) == 0.0
