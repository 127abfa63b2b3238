"""The credential pool of one provider: which API key or OAuth account serves the next request.

Pure decisions, no I/O: every method that depends on time takes `now` (epoch seconds), and the
pool changes only through the calls below, never by watching HTTP traffic. That is what keeps a
401 the proxy itself produced (bad client key) from poisoning an upstream account.

    CredentialPool.select(now, pin=, exclude=, prefer=)   round robin, most headroom first
    CredentialPool.record(name, outcome, headers, now)

What an upstream answer means (`classify` -> `Outcome`) lives in `outcome.py`; the retry policy
of one request (`FailoverPlan`) in `failover.py`.

States are derived, not stored, so no transition can be forgotten:

    disabled      manual (`disable`), until `enable`
    auth_error    upstream 401/403, or the refresh token was refused (invalid_grant)
    rate_limited  `rate_limited_until` is in the future (lifted lazily by the clock)
    expired       OAuth token past `expires_at`; the refresh scheduler is on it
    available     everything else

`refreshing` is a flag beside the state, so a refresh can neither hide nor clear a cooldown.
The rotation cursor is the *name* of the last credential served, so it survives a reload that
reorders, adds or removes credentials. The pool lives on the event loop thread: no locks.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from typing import Any, Literal

from attrs import define, evolve, field, frozen

from ccproxy_core.core import ratelimit_headers as rl
from ccproxy_core.core.errors import CredentialsRejected, NotFound, ProxyError, RateLimited, ServiceUnavailable
from ccproxy_core.core.outcome import Outcome, OutcomeKind
from ccproxy_core.core.redaction import redact, scrub
from ccproxy_core.core.wire import JSON

Kind = Literal["api_key", "oauth"]
_NO_NAMES: frozenset[str] = frozenset()
# Headroom is compared in 5 % bands: tiny differences (19999 vs 20000 requests left) must not
# defeat round robin, which breaks ties inside a band.
_BANDS = 20


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


def _usable(cred: Credential, st: CredentialState, now: float) -> bool:
    """Available, or a rejected API key whose re-probe is due (keys come back without a restart)."""
    state = state_of(cred, st, now)
    if state == "available":
        return True
    return state == "auth_error" and st.reprobe_at is not None and st.reprobe_at <= now


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


# --- the pool ---------------------------------------------------------------------------------


@frozen
class PoolSettings:
    exhausted_cooldown_seconds: float = 600.0  # a quota 429 that names no reset time
    spend_limit_cooldown_seconds: float = 24 * 3600.0  # spend limits clear monthly, if at all
    min_cooldown_seconds: float = 1.0  # `retry-after: 0` on a quota 429 still benches briefly
    # A 429 that is not quota benches for the provider's retry-after, at most this long, and for
    # `rate_limit_cooldown_seconds` when it gives no hint: long enough that the requests already
    # on their way go elsewhere, short enough that a momentary limit costs nothing.
    rate_limit_cooldown_seconds: float = 5.0
    max_retry_after_seconds: float = 900.0
    # A rejected API key (401/403) is tried again by itself after this, doubling per rejection.
    auth_reprobe_seconds: float = 30.0
    max_auth_reprobe_seconds: float = 1800.0
    # A success re-reads the rate-limit headers at most this often per credential: headroom moves
    # slowly next to the request rate, and parsing them is the costliest step of a success.
    headroom_interval_seconds: float = 1.0


class CredentialPool:
    def __init__(
        self,
        credentials: Sequence[Credential] = (),
        *,
        provider: str = "anthropic",
        settings: PoolSettings = PoolSettings(),
        source: str = "",
    ) -> None:
        self.provider = provider
        self.settings = settings
        self.source = source  # where the credentials come from (an accounts file), for messages
        self._creds: list[Credential] = []
        self._by_name: dict[str, Credential] = {}
        self._states: dict[str, CredentialState] = {}
        self._cursor: str | None = None  # name of the last credential served by rotation
        self.replace_credentials(list(credentials))

    def __len__(self) -> int:
        return len(self._creds)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self._creds]

    def get(self, name: str) -> Credential | None:
        return self._by_name.get(name)

    def state(self, name: str) -> CredentialState:
        return self._states[name]

    def credentials(self) -> tuple[Credential, ...]:
        return tuple(self._creds)

    # selection

    def select(
        self,
        now: float,
        *,
        pin: str | None = None,
        exclude: AbstractSet[str] = _NO_NAMES,
        prefer: str | None = None,
    ) -> Credential:
        """The credential for the next attempt; raises the error the client should get.

        `prefer`: the credential a conversation sticks to (core/sticky.py), taken while it is
        usable and not excluded, without moving the rotation; otherwise round robin as usual."""
        if pin is not None:
            cred = self._named(pin)
            st = self._states[pin]
            state = state_of(cred, st, now)
            if not _usable(cred, st, now):
                headers: dict[str, str] = {}
                if state == "rate_limited" and st.rate_limited_until is not None:
                    headers["retry-after"] = str(max(1, math.ceil(st.rate_limited_until - now)))
                raise ServiceUnavailable(
                    f"account '{pin}' of provider '{self.provider}' is not usable: {self._explain(cred, st, now)}",
                    headers=headers,
                )
            self._claim(st, now)
            return cred
        sticky = self._by_name.get(prefer) if prefer is not None and prefer not in exclude else None
        if sticky is not None and state_of(sticky, self._states[sticky.name], now) == "available":
            self._claim(self._states[sticky.name], now)
            return sticky
        chosen = self._choose(now, exclude)
        if chosen is None:
            raise self._nothing_usable(now, exclude)
        self._cursor = chosen.name
        self._claim(self._states[chosen.name], now)
        return chosen

    def _claim(self, st: CredentialState, now: float) -> None:
        st.last_used = now
        if st.auth_error and st.reprobe_at is not None:
            # This request is the re-probe of a rejected key: the next one waits for its verdict.
            st.reprobe_at = now + self._reprobe_delay(max(1, st.auth_failures))

    def _reprobe_delay(self, failures: int) -> float:
        backoff = self.settings.auth_reprobe_seconds * 2.0 ** (failures - 1)
        return min(backoff, self.settings.max_auth_reprobe_seconds)

    def has_usable(self, now: float, exclude: AbstractSet[str] = _NO_NAMES) -> bool:
        return self._choose(now, exclude) is not None

    def _choose(self, now: float, exclude: AbstractSet[str]) -> Credential | None:
        best, best_band = None, -1
        start = self.names.index(self._cursor) + 1 if self._cursor in self._by_name else 0
        for cred in self._creds[start:] + self._creds[:start]:
            st = self._states[cred.name]
            if cred.name in exclude or not _usable(cred, st, now):
                continue
            band = self._band(st, now)
            if band > best_band:  # strictly greater: ties go to the earlier in rotation order
                best, best_band = cred, band
        return best

    @staticmethod
    def _band(st: CredentialState, now: float) -> int:
        stale = st.headroom_until is not None and now >= st.headroom_until
        if st.headroom is None or stale:
            return _BANDS  # unmeasured or refilled since: assume full
        return max(0, min(_BANDS, math.floor(st.headroom * _BANDS)))

    def _nothing_usable(self, now: float, exclude: AbstractSet[str]) -> ProxyError:
        where = f"provider '{self.provider}'"
        if not self._creds:
            where_from = (
                f" (it read {self.source}; add an account with `ccproxy auth import --provider {self.provider}`)"
                if self.source
                else ""
            )
            return ServiceUnavailable(f"{where} has no credentials configured{where_from}")
        left = [c for c in self._creds if c.name not in exclude]
        if not left:
            return ServiceUnavailable(f"all {len(self._creds)} credentials of {where} were tried")
        states = {c.name: state_of(c, self._states[c.name], now) for c in left}
        if all(s == "auth_error" for s in states.values()):
            return self.rejection(now)
        counts = Counter(states.values())
        others = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "rate_limited")
        limited = [self._states[n].rate_limited_until or now for n, s in states.items() if s == "rate_limited"]
        if limited:
            first = min(limited)
            return RateLimited(
                f"all usable credentials of {where} are rate limited; the first is free again at "
                f"{iso(first)}" + (f" (also {others})" if others else ""),
                retry_after=first - now,
            )
        return ServiceUnavailable(f"no usable credential for {where}: {others}")

    def rejection(self, now: float) -> ProxyError:
        """What a client gets when the provider refuses every credential ccproxy holds for it.

        Not retryable (a 403, not a 5xx/429/529), so a client such as Claude Code stops at once
        with something to act on instead of retrying for minutes."""
        rejected = [c for c in self._creds if self._states[c.name].auth_error]
        named = "; ".join(f"{c.name}: {self._states[c.name].last_error or 'refused'}" for c in rejected)
        due = [at for c in rejected if (at := self._states[c.name].reprobe_at) is not None]
        again = f"; ccproxy tries it again by itself at {iso(min(due))}" if due else ""
        fix = (
            "log in again with `ccproxy auth login NAME`"
            if any(c.kind == "oauth" for c in rejected)
            else "fix the key in the config (providers[].api_key / api_keys)"
        )
        return CredentialsRejected(f"provider '{self.provider}' rejected its credentials ({named}); {fix}{again}")

    def _explain(self, cred: Credential, st: CredentialState, now: float) -> str:
        state = state_of(cred, st, now)
        if state == "rate_limited":
            return f"rate_limited until {iso(st.rate_limited_until)} ({st.cooldown_reason})"
        if state == "expired":
            return f"expired: token expired at {iso(cred.expires_at)}, refresh pending"
        return state + (f" ({st.last_error})" if st.last_error and state == "auth_error" else "")

    def _named(self, name: str) -> Credential:
        cred = self._by_name.get(name)
        if cred is None:
            known = ", ".join(self.names) or "none"
            raise NotFound(f"no account named '{name}' in provider '{self.provider}' (known: {known})")
        return cred

    # learning from outcomes

    def record(
        self, name: str, outcome: Outcome, headers: Mapping[str, str], now: float, *, used: Credential | None = None
    ) -> None:
        """Learn from one upstream answer. `used` is the credential as it was sent, so a 401
        for a token that a refresh has already replaced does not condemn the new one."""
        cred, st = self._by_name.get(name), self._states.get(name)
        if cred is None or st is None:
            return  # removed by a reload while the request was in flight
        st.requests += 1
        kind = outcome.kind
        if kind is OutcomeKind.OK and st.auth_error and (used is None or used.secret == cred.secret):
            # A re-probe went through: the provider accepts the credential again.
            st.auth_error, st.auth_failures, st.reprobe_at = False, 0, None
        if (
            kind is OutcomeKind.OK
            and st.headroom_read_at is not None
            and (now - st.headroom_read_at < self.settings.headroom_interval_seconds)
        ):
            return
        st.headroom_read_at = now
        info = rl.parse(headers, now)
        if info.fraction is not None:
            binding = info.binding
            st.headroom = info.fraction
            st.headroom_until = binding.reset_at if binding is not None else info.unified_reset
            st.utilization = info.utilization
        if kind in (OutcomeKind.OK, OutcomeKind.REQUEST_SPECIFIC):
            return
        st.errors += 1
        st.last_error = outcome.reason or f"HTTP {outcome.status}"
        reset = rl.reset_at(headers, now)
        if reset is None and outcome.resets_in is not None:
            reset = now + outcome.resets_in  # the body said when (ChatGPT's usage limit)
        if kind is OutcomeKind.ACCOUNT_EXHAUSTED:
            until = now + self.settings.exhausted_cooldown_seconds if reset is None else reset
            self._cool(st, max(until, now + self.settings.min_cooldown_seconds), st.last_error, now)
            st.headroom, st.headroom_until = 0.0, st.rate_limited_until
        elif kind is OutcomeKind.RATE_LIMITED:
            hint = min(reset - now, self.settings.max_retry_after_seconds) if reset is not None else None
            wait = self.settings.rate_limit_cooldown_seconds if hint is None else hint
            self._cool(st, now + max(wait, self.settings.min_cooldown_seconds), st.last_error, now)
        elif kind is OutcomeKind.SPEND_LIMIT:
            until = max(now + self.settings.spend_limit_cooldown_seconds, reset or 0.0)
            self._cool(st, until, f"spend limit: {st.last_error}", now)
        elif kind is OutcomeKind.AUTH and (used is None or used.secret == cred.secret):
            st.auth_error = True
            st.needs_refresh = cred.kind == "oauth" and bool(cred.refresh_token)
            if cred.kind == "api_key":
                st.auth_failures += 1
                st.reprobe_at = now + self._reprobe_delay(st.auth_failures)

    @staticmethod
    def _cool(st: CredentialState, until: float, reason: str, now: float) -> None:
        # Never shorten a cooldown already in force: the later reset wins.
        current = st.rate_limited_until
        if current is None or current <= now or until > current:
            st.rate_limited_until, st.cooldown_reason = until, reason

    # operator and scheduler transitions

    def enable(self, name: str, now: float | None = None) -> str:
        """Back to service, clearing disabled, auth_error and any cooldown; returns the old state."""
        before = self._state_before(name, now)
        st = self._states[name]
        st.disabled = st.auth_error = st.needs_refresh = False
        st.rate_limited_until = st.cooldown_reason = None
        return before

    def disable(self, name: str, now: float | None = None) -> str:
        """Out of rotation until `enable` (pinning it answers 503); returns the old state."""
        before = self._state_before(name, now)
        self._states[name].disabled = True
        return before

    def _state_before(self, name: str, now: float | None) -> str:
        cred, st = self._named(name), self._states[name]
        if now is not None:
            return state_of(cred, st, now)
        # Without a clock only the flags can be read; a set cooldown counts as in force.
        if st.disabled or st.auth_error:
            return "disabled" if st.disabled else "auth_error"
        return "rate_limited" if st.rate_limited_until is not None else "available"

    def tokens_refreshed(self, name: str, new: Credential, now: float) -> None:
        """New tokens from a refresh (already persisted). A refresh proves the account can
        authenticate; it says nothing about quota, so a cooldown stays in force."""
        if name not in self._by_name:
            return
        self._by_name[name] = new
        self._creds = [new if c.name == name else c for c in self._creds]
        st = self._states[name]
        st.auth_error = st.needs_refresh = False
        st.last_refresh_at = now

    def mark_auth_error(self, name: str, reason: str) -> None:
        """The refresh token was refused: only a new login (or a file edit) brings it back."""
        if (st := self._states.get(name)) is not None:
            st.auth_error, st.needs_refresh, st.last_error = True, False, scrub(reason)

    def note_error(self, name: str, reason: str) -> None:
        """Remember a problem that changes no state (a transient refresh failure)."""
        if (st := self._states.get(name)) is not None:
            st.last_error = scrub(reason)

    def set_refreshing(self, name: str, flag: bool) -> None:
        if (st := self._states.get(name)) is not None:
            st.refreshing = flag

    # hot reload

    def replace_credentials(self, new: Sequence[Credential]) -> list[str]:
        """Swap in a reloaded set. State and the cursor are kept by name; a credential whose
        tokens changed gets a fresh chance (auth_error cleared). Requests in flight keep the
        `Credential` they hold. Returns warnings."""
        warnings: list[str] = []
        merged: dict[str, Credential] = {}
        for cred in new:
            if cred.name in merged:
                warnings.append(f"duplicate credential name '{cred.name}': the first one is used")
                continue
            old = self._by_name.get(cred.name)
            if old is not None and old != cred:
                if _older_tokens(cred, old):
                    # Re-using a refresh token a refresh already consumed would log the
                    # account out: keep the newer tokens the pool holds.
                    warnings.append(
                        f"account '{cred.name}': the file holds older tokens than the "
                        "running proxy; keeping the newer ones"
                    )
                    cred = old
                elif (st := self._states.get(cred.name)) is not None:
                    st.auth_error = st.needs_refresh = False
            merged[cred.name] = cred
        if self._cursor is not None and self._cursor not in merged:
            # Step back to the nearest surviving predecessor so rotation resumes after it.
            old_names = self.names
            i = old_names.index(self._cursor)
            back = [old_names[(i - k) % len(old_names)] for k in range(1, len(old_names))]
            self._cursor = next((n for n in back if n in merged), None)
        self._creds = list(merged.values())
        self._by_name = merged
        self._states = {n: self._states.get(n) or CredentialState() for n in merged}
        return warnings

    # status and persistence

    def account_json(self, name: str, now: float) -> JSON:
        cred, st = self._named(name), self._states[name]
        return {
            "name": cred.name,
            "kind": cred.kind,
            "state": state_of(cred, st, now),
            "tokenExpiresAt": iso(cred.expires_at),
            "tokenExpiresIn": None if cred.expires_at is None else math.floor(cred.expires_at - now),
            "rateLimitedUntil": iso(st.rate_limited_until) if (st.rate_limited_until or 0) > now else None,
            "cooldownReason": st.cooldown_reason if (st.rate_limited_until or 0) > now else None,
            "lastUsed": iso(st.last_used),
            "lastError": st.last_error,
            "requests": st.requests,
            "errors": st.errors,
            "headroom": None if st.headroom is None else round(st.headroom, 4),
            "utilization": dict(st.utilization),
            "refreshing": st.refreshing,
            "lastRefreshAt": iso(st.last_refresh_at),
        }

    def snapshot(self, now: float) -> JSON:
        """`GET /status`: the aggregate and every account; `nextAccount` is the real next pick."""
        accounts = [self.account_json(c.name, now) for c in self._creds]
        counts = Counter(a["state"] for a in accounts)
        nxt = self._choose(now, _NO_NAMES)
        return {
            "provider": self.provider,
            "totalAccounts": len(accounts),
            "availableAccounts": counts["available"],
            "rateLimitedAccounts": counts["rate_limited"],
            "authErrorAccounts": counts["auth_error"],
            "disabledAccounts": counts["disabled"],
            "expiredAccounts": counts["expired"],
            "nextAccount": None if nxt is None else nxt.name,
            "accounts": accounts,
        }

    def to_state(self, now: float) -> JSON:
        """Cooldowns and disabled flags, to survive a restart."""
        accounts: JSON = {}
        for name, st in self._states.items():
            entry: JSON = {}
            if st.disabled:
                entry["disabled"] = True
            if st.rate_limited_until is not None and st.rate_limited_until > now:
                entry["rateLimitedUntil"] = st.rate_limited_until
                entry["cooldownReason"] = st.cooldown_reason
            if entry:
                accounts[name] = entry
        return {"version": 1, "accounts": accounts}

    def load_state(self, data: Any, now: float) -> list[str]:
        """Apply a `to_state` document; unknown names and lapsed cooldowns are skipped."""
        accounts = data.get("accounts") if isinstance(data, dict) else None
        if not isinstance(accounts, dict):
            return ["state file: no 'accounts' object; ignored"]
        warnings = []
        for name, entry in accounts.items():
            st = self._states.get(name)
            if st is None or not isinstance(entry, dict):
                warnings.append(f"state file: '{name}' is not a known account; ignored")
                continue
            st.disabled = entry.get("disabled") is True
            until = entry.get("rateLimitedUntil")
            if isinstance(until, (int, float)) and until > now:
                reason = entry.get("cooldownReason")
                self._cool(st, float(until), reason if isinstance(reason, str) else "restored", now)
        return warnings


def _older_tokens(incoming: Credential, current: Credential) -> bool:
    return (
        incoming.kind == current.kind == "oauth"
        and incoming.refresh_token != current.refresh_token
        and incoming.expires_at is not None
        and current.expires_at is not None
        and incoming.expires_at < current.expires_at
    )


def with_tokens(cred: Credential, secret: str, refresh_token: str | None, expires_at: float | None) -> Credential:
    """The same account with new tokens (the refresh token is kept when none is issued)."""
    return evolve(cred, secret=secret, refresh_token=refresh_token or cred.refresh_token, expires_at=expires_at)
