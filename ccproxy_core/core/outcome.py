"""What one upstream answer means, decided once: `classify(status, headers, body)` -> `Outcome`.

Every reader takes its answer from the same `Outcome`: the pool (bench the credential or not),
the credential loop (`next_credential`), the provider failover (`next_provider`) and the circuit
breaker (`breaker_failure`). Pure, and separate from the pool so the table of phrases can be read
(and grown) on its own:

    OK                 success
    ACCOUNT_EXHAUSTED  this credential's quota (quota headers, or an account rate-limit phrase)
    RATE_LIMITED       a 429 that is not quota: bench this credential for the provider's
                       `retry-after` (or briefly, with no hint), so the next requests go elsewhere
    TRANSIENT          overloaded, 5xx, 408: another credential or provider may do, bench none
    REQUEST_SPECIFIC   the request's own fault (413, prompt too long): relay it to the client
    SPEND_LIMIT        billing (402, insufficient_quota): bench for a long time
    AUTH               401/403: the credential was refused
    NO_ANSWER          no HTTP answer at all (refused, reset, timed out, broken before a byte)

Spend limit is checked first, then auth, then request-specific, so a billing phrase wins over
the status code; a 429 is account exhaustion only when its headers or message say so. The
`reason` is the upstream message scrubbed of anything token-like; the pool keeps it as
lastError / cooldownReason.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import orjson
from attrs import frozen

from ccproxy_core.core import ratelimit_headers as rl
from ccproxy_core.core.redaction import scrub


class OutcomeKind(enum.Enum):
    OK = "ok"
    ACCOUNT_EXHAUSTED = "account_exhausted"  # this credential's quota: cool down until the reset
    RATE_LIMITED = "rate_limited"  # a 429 that is not quota: cool down for its retry-after
    TRANSIENT = "transient"  # overloaded / 5xx: try another, do not bench this one
    REQUEST_SPECIFIC = "request_specific"  # the request's fault: return it to the client
    SPEND_LIMIT = "spend_limit"  # billing: cool down for a long time
    AUTH = "auth"  # credential refused: auth_error (OAuth: refresh once, retry once)
    NO_ANSWER = "no_answer"  # the provider could not be reached or read


# Another credential of the same provider may succeed where this one failed.
_NEXT_CREDENTIAL = frozenset(
    {
        OutcomeKind.ACCOUNT_EXHAUSTED,
        OutcomeKind.RATE_LIMITED,
        OutcomeKind.TRANSIENT,
        OutcomeKind.SPEND_LIMIT,
        OutcomeKind.AUTH,
    }
)
# Another provider may succeed: everything a credential change may fix, and no answer at all.
_NEXT_PROVIDER = _NEXT_CREDENTIAL | {OutcomeKind.NO_ANSWER}


@frozen
class Outcome:
    kind: OutcomeKind
    status: int | None = 200  # None: no HTTP answer
    reason: str = ""  # upstream's message, scrubbed; becomes lastError / cooldownReason
    resets_in: float | None = None  # seconds until the quota is back, when the body says (ChatGPT)

    @property
    def next_credential(self) -> bool:
        """Another credential of the same provider may succeed where this one failed."""
        return self.kind in _NEXT_CREDENTIAL

    @property
    def next_provider(self) -> bool:
        """The route's fallback provider may succeed where this provider failed."""
        return self.kind in _NEXT_PROVIDER

    @property
    def breaker_failure(self) -> bool:
        """Whether this counts against the provider's circuit breaker.

        No answer, 5xx and 429 count: a provider that rate-limits every key is as unusable as a
        down one. The request's own faults (4xx) and refused credentials do not."""
        return self.status is None or self.status == 429 or self.status >= 500


OK = Outcome(OutcomeKind.OK)


def no_answer(reason: str) -> Outcome:
    """The outcome of an attempt that got no HTTP answer (connect error, timeout, broken read)."""
    return Outcome(OutcomeKind.NO_ANSWER, None, scrub(reason))


_SPEND = (
    "enforced_spend_limit_reached",
    "insufficient_quota",
    "credit_balance_exhausted",
    "billing_hard_limit_reached",
    "credit balance is too low",
    "exceeded your current quota",
)
_REQUEST_SPECIFIC = (
    "extra usage is required for long context",
    "long context beta is not",
    "request too large",
    "prompt is too long",
)
_ACCOUNT = (
    "exceed your account's rate limit",
    "your organization's rate limit",
    "rate limit reached for",
    "usage_limit_reached",  # ChatGPT (codex) accounts: the plan's 5-hour or weekly window is spent
)


def classify(status: int, headers: Mapping[str, str], body: bytes) -> Outcome:
    """What an upstream answer means for the credential that got it. Pure."""
    if status < 400:
        return Outcome(OutcomeKind.OK, status)
    etype, code, message = _error_fields(body)
    text = f"{etype} {code} {message}".lower()
    reason = scrub(message or etype or f"HTTP {status}")

    def out(kind: OutcomeKind, why: str = reason) -> Outcome:
        return Outcome(kind, status, why)

    if status == 402 or any(p in text for p in _SPEND):
        return out(OutcomeKind.SPEND_LIMIT)
    if status in (401, 403):
        return out(OutcomeKind.AUTH)
    if status == 413 or any(p in text for p in _REQUEST_SPECIFIC):
        return out(OutcomeKind.REQUEST_SPECIFIC)
    if status == 429:
        info = rl.parse(headers, 0.0)
        windows = [b.name.removeprefix("unified-") for b in info.buckets if b.rejected]
        if info.unified_status == "rejected" or windows:
            claim = info.representative_claim or ", ".join(windows) or "unified"
            return out(OutcomeKind.ACCOUNT_EXHAUSTED, f"subscription limit reached ({claim})")
        drained = [b.name for b in info.buckets if b.remaining == 0]
        if drained:
            return out(OutcomeKind.ACCOUNT_EXHAUSTED, f"rate limit: no {', '.join(drained)} left")
        if any(p in text for p in _ACCOUNT):
            return Outcome(OutcomeKind.ACCOUNT_EXHAUSTED, status, reason, _resets_in(body))
        # A 429 without quota headers is not quota (entitlement, bot protection, lane
        # classification): it benches the credential only for the provider's retry-after (or a
        # moment), so the next requests go elsewhere without burning through every account.
        return out(OutcomeKind.RATE_LIMITED)
    if status >= 500 or status == 408 or etype == "overloaded_error":
        return out(OutcomeKind.TRANSIENT)
    return out(OutcomeKind.REQUEST_SPECIFIC)


def _resets_in(body: bytes) -> float | None:
    """Seconds until the quota is back, when the error body says so (ChatGPT's `resets_in_seconds`)."""
    try:
        err = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    value = err.get("resets_in_seconds") if isinstance(err, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _error_fields(body: bytes) -> tuple[str, str, str]:
    """(type, code, message) from an Anthropic or OpenAI error body, or the raw text."""
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        doc = None
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        details = err.get("details")
        code = err.get("code") or (details.get("error_code") if isinstance(details, dict) else None)
        return str(err.get("type") or ""), str(code or ""), str(err.get("message") or "")
    if isinstance(err, str):
        return "", "", err
    return "", "", body[:300].decode("utf-8", "replace").strip()
