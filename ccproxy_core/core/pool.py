"""The credential pool of one provider: which API key or OAuth account serves the next request.

Pure decisions, no I/O: every method that depends on time takes `now` (epoch seconds), and the
pool changes only through the calls below, never by watching HTTP traffic. That is what keeps a
401 the proxy itself produced (bad client key) from poisoning an upstream account.

    CredentialPool.select(now, pin=, exclude=, prefer=)   round robin, most headroom first
    CredentialPool.record(name, outcome, headers, now)

This module holds what a request goes through: the choice and what the pool learns from an
answer (cooldowns, headroom, rejected keys), plus the operator's, the refresher's and a reload's
transitions. A credential, its state and how the state is derived are in `credential.py`; what
the pool reports (`/status`, the error when nothing is usable, the state kept over a restart) in
`pool_report.py`. What an upstream answer means (`classify` -> `Outcome`) lives in `outcome.py`;
the retry policy of one request (`FailoverPlan`) in `failover.py`.

The rotation cursor is the *name* of the last credential served, so it survives a reload that
reorders, adds or removes credentials. The pool lives on the event loop thread: no locks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from attrs import frozen

from ccproxy_core.core import pool_report as report
from ccproxy_core.core import ratelimit_headers as rl
from ccproxy_core.core.credential import (
    Credential,
    CredentialState,
    cool,
    older_tokens,
    state_of,
    usable,
)
from ccproxy_core.core.errors import NotFound, ProxyError, ServiceUnavailable
from ccproxy_core.core.outcome import Outcome, OutcomeKind
from ccproxy_core.core.redaction import scrub
from ccproxy_core.core.wire import JSON

_NO_NAMES: frozenset[str] = frozenset()
# Headroom is compared in 5 % bands: tiny differences (19999 vs 20000 requests left) must not
# defeat round robin, which breaks ties inside a band.
_BANDS = 20


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
            if not usable(cred, st, now):
                headers: dict[str, str] = {}
                if state == "rate_limited" and st.rate_limited_until is not None:
                    headers["retry-after"] = str(max(1, math.ceil(st.rate_limited_until - now)))
                raise ServiceUnavailable(
                    f"account '{pin}' of provider '{self.provider}' is not usable: {report.explain(cred, st, now)}",
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
            raise report.nothing_usable(self.provider, self.source, self._creds, self._states, exclude, now)
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
            if cred.name in exclude or not usable(cred, st, now):
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

    def rejection(self, now: float) -> ProxyError:
        """What a client gets when the provider refuses every credential ccproxy holds for it
        (not retryable: a 403 the client can act on)."""
        return report.rejection(self.provider, self._creds, self._states)

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
            cool(st, max(until, now + self.settings.min_cooldown_seconds), st.last_error, now)
            st.headroom, st.headroom_until = 0.0, st.rate_limited_until
        elif kind is OutcomeKind.RATE_LIMITED:
            hint = min(reset - now, self.settings.max_retry_after_seconds) if reset is not None else None
            wait = self.settings.rate_limit_cooldown_seconds if hint is None else hint
            cool(st, now + max(wait, self.settings.min_cooldown_seconds), st.last_error, now)
        elif kind is OutcomeKind.SPEND_LIMIT:
            until = max(now + self.settings.spend_limit_cooldown_seconds, reset or 0.0)
            cool(st, until, f"spend limit: {st.last_error}", now)
        elif kind is OutcomeKind.AUTH and (used is None or used.secret == cred.secret):
            st.auth_error = True
            st.needs_refresh = cred.kind == "oauth" and bool(cred.refresh_token)
            if cred.kind == "api_key":
                st.auth_failures += 1
                st.reprobe_at = now + self._reprobe_delay(st.auth_failures)

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
                if older_tokens(cred, old):
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
        return report.account_json(self._named(name), self._states[name], now)

    def snapshot(self, now: float) -> JSON:
        """`GET /status`: the aggregate and every account; `nextAccount` is the real next pick."""
        return report.snapshot(self.provider, self._creds, self._states, self._choose(now, _NO_NAMES), now)

    def to_state(self, now: float) -> JSON:
        """Cooldowns and disabled flags, to survive a restart."""
        return report.to_state(self._states, now)

    def load_state(self, data: Any, now: float) -> list[str]:
        """Apply a `to_state` document; unknown names and lapsed cooldowns are skipped."""
        return report.load_state(self._states, data, now)
