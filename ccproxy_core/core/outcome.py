"""What an upstream answer means for the credential that got it: `classify(status, headers, body)`.

Pure, and separate from the pool so the table of phrases can be read (and grown) on its own:

    OK                 success
    ACCOUNT_EXHAUSTED  this credential's quota (quota headers, or an account rate-limit phrase)
    TRANSIENT          overloaded, 5xx, or a bare 429: another credential may do, bench none
    REQUEST_SPECIFIC   the request's own fault (413, prompt too long): relay it to the client
    SPEND_LIMIT        billing (402, insufficient_quota): bench for a long time
    AUTH               401/403: the credential was refused

Spend limit is checked first, then auth, then request-specific, so a billing phrase wins over
the status code; a 429 is account exhaustion only when its headers or message say so. The `reason` is the upstream
message scrubbed of anything token-like; the pool keeps it as lastError / cooldownReason.
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
    TRANSIENT = "transient"  # overloaded / bare 429: try another, do not bench this one
    REQUEST_SPECIFIC = "request_specific"  # the request's fault: return it to the client
    SPEND_LIMIT = "spend_limit"  # billing: cool down for a long time
    AUTH = "auth"  # credential refused: auth_error (OAuth: refresh once, retry once)


_FAILOVER = frozenset({OutcomeKind.ACCOUNT_EXHAUSTED, OutcomeKind.TRANSIENT, OutcomeKind.SPEND_LIMIT, OutcomeKind.AUTH})


@frozen
class Outcome:
    kind: OutcomeKind
    status: int = 200
    reason: str = ""  # upstream's message, scrubbed; becomes lastError / cooldownReason

    @property
    def failover(self) -> bool:
        """Another credential may succeed where this one failed."""
        return self.kind in _FAILOVER


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
_ACCOUNT = ("exceed your account's rate limit", "your organization's rate limit", "rate limit reached for")


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
            return out(OutcomeKind.ACCOUNT_EXHAUSTED)
        # A 429 without quota headers is not quota (entitlement, bot protection, lane
        # classification): benching on it would burn through every account.
        return out(OutcomeKind.TRANSIENT)
    if status >= 500 or etype == "overloaded_error":
        return out(OutcomeKind.TRANSIENT)
    return out(OutcomeKind.REQUEST_SPECIFIC)


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
