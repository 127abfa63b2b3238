"""Prices: what a request cost, from the model that served it and the tokens it reported.

The one place for price facts. `PRICES` maps a model-name glob to USD per million tokens for
input, output, cache writes (5-minute and 1-hour) and cache reads, for the Claude families and
the common OpenAI, DeepSeek, Gemini and Groq models, as their price pages list them (figures
checked in 2025; a config `pricing` entry overrides any of them). A model is matched by its
lower-cased name and, for routers that prefix a vendor (`anthropic/claude-...`), by the part
after the last `/`; of several matching globs the longest (most specific) wins, so
`gpt-4.1-mini*` beats `gpt-4.1*` whatever their order.

A model with no price costs `None`, never 0: an unpriced request must show up as unpriced,
not as free. Tokens are in Anthropic's sense (input excludes cache reads and writes); cache
writes are priced at the 5-minute rate except the part the usage says went to the 1-hour cache.
Providers without a cache-write charge (OpenAI, DeepSeek, Gemini) list their input rate there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from attrs import frozen

PER = 1_000_000.0


@frozen
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float

    @classmethod
    def simple(cls, input: float, output: float, cache_read: float | None = None) -> Price:
        """A provider whose cache costs nothing to write (reads at `cache_read`, else input)."""
        return cls(input, output, input, input, input if cache_read is None else cache_read)

    @classmethod
    def claude(cls, input: float, output: float) -> Price:
        """Anthropic's rule: 5-minute writes 1.25x input, 1-hour writes 2x, reads 0.1x."""
        return cls(input, output, round(input * 1.25, 6), input * 2, round(input * 0.1, 6))


@frozen
class TokenCounts:
    """What one request used, in Anthropic's sense (`input` excludes every cached token)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    cache_creation_1h: int = 0  # the part of `cache_creation` written to the 1-hour cache


PRICES: Mapping[str, Price] = {
    # Anthropic (per MTok): opus 4.5+ is cheaper than opus 4/4.1
    "claude-opus-4-5*": Price.claude(5.0, 25.0),
    "claude-opus-4-6*": Price.claude(5.0, 25.0),
    "claude-opus-4*": Price.claude(15.0, 75.0),
    "claude-3-opus*": Price.claude(15.0, 75.0),
    "claude-sonnet-4*": Price.claude(3.0, 15.0),
    "claude-3-7-sonnet*": Price.claude(3.0, 15.0),
    "claude-3-5-sonnet*": Price.claude(3.0, 15.0),
    "claude-haiku-4*": Price.claude(1.0, 5.0),
    "claude-3-5-haiku*": Price.claude(0.8, 4.0),
    "claude-3-haiku*": Price(0.25, 1.25, 0.30, 0.50, 0.03),
    # OpenAI
    "gpt-5*": Price.simple(1.25, 10.0, 0.125),
    "gpt-5-mini*": Price.simple(0.25, 2.0, 0.025),
    "gpt-5-nano*": Price.simple(0.05, 0.40, 0.005),
    "gpt-4.1*": Price.simple(2.0, 8.0, 0.50),
    "gpt-4.1-mini*": Price.simple(0.40, 1.60, 0.10),
    "gpt-4.1-nano*": Price.simple(0.10, 0.40, 0.025),
    "gpt-4o*": Price.simple(2.50, 10.0, 1.25),
    "gpt-4o-mini*": Price.simple(0.15, 0.60, 0.075),
    "o1*": Price.simple(15.0, 60.0, 7.50),
    "o3*": Price.simple(2.0, 8.0, 0.50),
    "o3-mini*": Price.simple(1.10, 4.40, 0.55),
    "o4-mini*": Price.simple(1.10, 4.40, 0.275),
    # DeepSeek (V3.2 prices; cache hits are reads)
    "deepseek-chat*": Price.simple(0.28, 0.42, 0.028),
    "deepseek-reasoner*": Price.simple(0.28, 0.42, 0.028),
    # Gemini (prompts up to 200k tokens)
    "gemini-2.5-pro*": Price.simple(1.25, 10.0, 0.125),
    "gemini-2.5-flash*": Price.simple(0.30, 2.50, 0.03),
    "gemini-2.5-flash-lite*": Price.simple(0.10, 0.40, 0.01),
    "gemini-2.0-flash*": Price.simple(0.10, 0.40, 0.025),
    # Groq
    "llama-3.3-70b-versatile": Price.simple(0.59, 0.79),
    "llama-3.1-8b-instant": Price.simple(0.05, 0.08),
    "gpt-oss-120b": Price.simple(0.15, 0.60),
    "gpt-oss-20b": Price.simple(0.075, 0.30),
    "moonshotai/kimi-k2*": Price.simple(1.0, 3.0),
    "kimi-k2*": Price.simple(1.0, 3.0),
}


def _candidates(model: str) -> tuple[str, ...]:
    name = model.strip().lower()
    tail = name.rsplit("/", 1)[-1]
    return (name,) if tail == name else (name, tail)


def _best(names: Iterable[str], table: Mapping[str, Price]) -> Price | None:
    names = tuple(names)
    best: tuple[int, Price] | None = None
    for pattern, price in table.items():
        glob = pattern.lower()
        if any(fnmatchcase(n, glob) for n in names):
            weight = len(glob.replace("*", "")) + (1000 if "*" not in glob else 0)  # exact beats any glob
            if best is None or weight > best[0]:
                best = (weight, price)
    return None if best is None else best[1]


def price_for(model: str, overrides: Mapping[str, Price] | None = None) -> Price | None:
    """The price of `model` (the upstream model): a config override first, then the table."""
    if not model:
        return None
    names = _candidates(model)
    if overrides:
        found = _best(names, overrides)
        if found is not None:
            return found
    return _best(names, PRICES)


def cost_usd(price: Price | None, tokens: TokenCounts) -> float | None:
    """USD for these tokens at this price; `None` when the model has no price."""
    if price is None:
        return None
    one_hour = min(tokens.cache_creation_1h, tokens.cache_creation)
    total = (
        tokens.input * price.input
        + tokens.output * price.output
        + tokens.cache_read * price.cache_read
        + (tokens.cache_creation - one_hour) * price.cache_write_5m
        + one_hour * price.cache_write_1h
    )
    return round(total / PER, 10)


@frozen
class PriceSetting:
    """A config `pricing` entry (USD per million tokens); cache rates default to the input rate."""

    input: float
    output: float
    cache_write_5m: float | None = None
    cache_write_1h: float | None = None  # defaults to the 5-minute write rate
    cache_read: float | None = None

    def price(self) -> Price:
        w5 = self.input if self.cache_write_5m is None else self.cache_write_5m
        return Price(
            self.input,
            self.output,
            w5,
            w5 if self.cache_write_1h is None else self.cache_write_1h,
            self.input if self.cache_read is None else self.cache_read,
        )


def overrides(settings: Mapping[str, PriceSetting]) -> dict[str, Price]:
    return {pattern: s.price() for pattern, s in settings.items()}
