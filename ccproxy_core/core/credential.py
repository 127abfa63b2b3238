"""One credential (an API key or an OAuth account), what the pool has learned about it, and the
state derived from the two.

Apart from the pool because most of the code that speaks of credentials never chooses among
them: the accounts store reads and writes them, the OAuth refresher swaps their tokens, the
shared-state rules merge their entries. Pure: every rule that depends on time takes `now`.

States are derived, not stored, so no transition can be forgotten:

    disabled      manual (`disable`), until `enable`
    auth_error    upstream 401/403, or the refresh token was refused (invalid_grant)
    rate_limited  `rate_limited_until` is in the future (lifted lazily by the clock)
    expired       OAuth token past `expires_at`; the refresh scheduler is on it
    available     everything else

`refreshing` is a flag beside the state, so a refresh can neither hide nor clear a cooldown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from attrs import define, evolve, field, frozen

from ccproxy_core.core.redaction import redact

Kind = Literal["api_key", "oauth"]


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@frozen
class Credential:
    """One API key or OAuth account. The secret never appears in `repr`."""

    name: str
    kind: Kind
    secret: str = field(repr=redact)  # the API key, or the OAuth access token
    refresh_token: str | None = field(default=None, repr=redact)
    expires_at: float | None = None  # epoch seconds, OAuth only
    account_id: str | None = None  # a ChatGPT account's id (the `chatgpt-account-id` header); codex only

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def api_key_credentials(keys: Sequence[str], prefix: str = "key") -> list[Credential]:
    """Credentials for a provider's `api_keys`, named by position (`key-1`, `key-2`, ...)."""
    return [Credential(f"{prefix}-{i}", "api_key", k) for i, k in enumerate(keys, 1)]


def with_tokens(cred: Credential, secret: str, refresh_token: str | None, expires_at: float | None) -> Credential:
    """The same account with new tokens (the refresh token is kept when none is issued)."""
    return evolve(cred, secret=secret, refresh_token=refresh_token or cred.refresh_token, expires_at=expires_at)


def older_tokens(incoming: Credential, current: Credential) -> bool:
    """Whether `incoming` holds tokens that a refresh of `current` has already replaced."""
    return (
        incoming.kind == current.kind == "oauth"
        and incoming.refresh_token != current.refresh_token
        and incoming.expires_at is not None
        and current.expires_at is not None
        and incoming.expires_at < current.expires_at
    )


@define
class CredentialState:
    """What the pool has learned about one credential."""

    disabled: bool = False
    auth_error: bool = False
    needs_refresh: bool = False  # OAuth token refused upstream: the scheduler refreshes it now
    refreshing: bool = False
    rate_limited_until: float | None = None
    cooldown_reason: str | None = None
    last_used: float | None = None
    last_error: str | None = None
    requests: int = 0
    errors: int = 0
    headroom: float | None = None
    headroom_until: float | None = None  # the binding limit refills then; the figure goes stale
    headroom_read_at: float | None = None
    utilization: dict[str, float] = field(factory=dict)
    last_refresh_at: float | None = None
    auth_failures: int = 0  # consecutive rejections of an API key: its re-probe backs off
    reprobe_at: float | None = None  # when a rejected API key may be tried again


def state_of(cred: Credential, st: CredentialState, now: float) -> str:
    if st.disabled:
        return "disabled"
    if st.auth_error:
        return "auth_error"
    if st.rate_limited_until is not None and st.rate_limited_until > now:
        return "rate_limited"
    if cred.kind == "oauth" and cred.expired(now):
        return "expired"
    return "available"


def usable(cred: Credential, st: CredentialState, now: float) -> bool:
    """Available, or a rejected API key whose re-probe is due (keys come back without a restart)."""
    state = state_of(cred, st, now)
    if state == "available":
        return True
    return state == "auth_error" and st.reprobe_at is not None and st.reprobe_at <= now


def cool(st: CredentialState, until: float, reason: str, now: float) -> None:
    """Bench a credential until `until`. Never shortens a cooldown already in force: the later
    reset wins."""
    current = st.rate_limited_until
    if current is None or current <= now or until > current:
        st.rate_limited_until, st.cooldown_reason = until, reason
