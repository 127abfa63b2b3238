"""What a credential pool says about itself: its `/status` document, the error a client gets
when no credential can serve, and the small state document that carries cooldowns and disabled
flags over a restart.

Apart from the pool because none of it is on the way of a request that gets served: the pool
(`core/pool.py`) chooses and learns, and hands its credentials and their states here, as values,
when someone asks. Pure: `now` is passed in.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from ccproxy_core.core.credential import Credential, CredentialState, cool, iso, state_of
from ccproxy_core.core.errors import CredentialsRejected, ProxyError, RateLimited, ServiceUnavailable
from ccproxy_core.core.wire import JSON

States = Mapping[str, CredentialState]


# --- why nothing can serve ---------------------------------------------------------------------


def explain(cred: Credential, st: CredentialState, now: float) -> str:
    """Why one credential cannot serve now, for the error of a request pinned to it."""
    state = state_of(cred, st, now)
    if state == "rate_limited":
        return f"rate_limited until {iso(st.rate_limited_until)} ({st.cooldown_reason})"
    if state == "expired":
        return f"expired: token expired at {iso(cred.expires_at)}, refresh pending"
    return state + (f" ({st.last_error})" if st.last_error and state == "auth_error" else "")


def nothing_usable(
    provider: str, source: str, creds: Sequence[Credential], states: States, exclude: AbstractSet[str], now: float
) -> ProxyError:
    """The error for a request that finds no usable credential (none configured, all tried, all
    rejected, all cooling down), saying when the first one is free again."""
    where = f"provider '{provider}'"
    if not creds:
        where_from = (
            f" (it read {source}; add an account with `ccproxy auth import --provider {provider}`)" if source else ""
        )
        return ServiceUnavailable(f"{where} has no credentials configured{where_from}")
    left = [c for c in creds if c.name not in exclude]
    if not left:
        return ServiceUnavailable(f"all {len(creds)} credentials of {where} were tried")
    named = {c.name: state_of(c, states[c.name], now) for c in left}
    if all(s == "auth_error" for s in named.values()):
        return rejection(provider, creds, states)
    counts = Counter(named.values())
    others = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "rate_limited")
    limited = [states[n].rate_limited_until or now for n, s in named.items() if s == "rate_limited"]
    if limited:
        first = min(limited)
        return RateLimited(
            f"all usable credentials of {where} are rate limited; the first is free again at "
            f"{iso(first)}" + (f" (also {others})" if others else ""),
            retry_after=first - now,
        )
    return ServiceUnavailable(f"no usable credential for {where}: {others}")


def rejection(provider: str, creds: Sequence[Credential], states: States) -> ProxyError:
    """What a client gets when the provider refuses every credential ccproxy holds for it.

    Not retryable (a 403, not a 5xx/429/529), so a client such as Claude Code stops at once
    with something to act on instead of retrying for minutes."""
    rejected = [c for c in creds if states[c.name].auth_error]
    named = "; ".join(f"{c.name}: {states[c.name].last_error or 'refused'}" for c in rejected)
    due = [at for c in rejected if (at := states[c.name].reprobe_at) is not None]
    again = f"; ccproxy tries it again by itself at {iso(min(due))}" if due else ""
    fix = (
        "log in again with `ccproxy auth login NAME`"
        if any(c.kind == "oauth" for c in rejected)
        else "fix the key in the config (providers[].api_key / api_keys)"
    )
    return CredentialsRejected(f"provider '{provider}' rejected its credentials ({named}); {fix}{again}")


# --- status ------------------------------------------------------------------------------------


def account_json(cred: Credential, st: CredentialState, now: float) -> JSON:
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


def snapshot(provider: str, creds: Sequence[Credential], states: States, nxt: Credential | None, now: float) -> JSON:
    """`GET /status` of one provider: the aggregate and every account; `nxt` is the real next pick."""
    accounts = [account_json(c, states[c.name], now) for c in creds]
    counts = Counter(a["state"] for a in accounts)
    return {
        "provider": provider,
        "totalAccounts": len(accounts),
        "availableAccounts": counts["available"],
        "rateLimitedAccounts": counts["rate_limited"],
        "authErrorAccounts": counts["auth_error"],
        "disabledAccounts": counts["disabled"],
        "expiredAccounts": counts["expired"],
        "nextAccount": None if nxt is None else nxt.name,
        "accounts": accounts,
    }


# --- across a restart --------------------------------------------------------------------------


def to_state(states: States, now: float) -> JSON:
    """Cooldowns and disabled flags, to survive a restart."""
    accounts: JSON = {}
    for name, st in states.items():
        entry: JSON = {}
        if st.disabled:
            entry["disabled"] = True
        if st.rate_limited_until is not None and st.rate_limited_until > now:
            entry["rateLimitedUntil"] = st.rate_limited_until
            entry["cooldownReason"] = st.cooldown_reason
        if entry:
            accounts[name] = entry
    return {"version": 1, "accounts": accounts}


def load_state(states: States, data: Any, now: float) -> list[str]:
    """Apply a `to_state` document to `states`; unknown names and lapsed cooldowns are skipped."""
    accounts = data.get("accounts") if isinstance(data, dict) else None
    if not isinstance(accounts, dict):
        return ["state file: no 'accounts' object; ignored"]
    warnings = []
    for name, entry in accounts.items():
        st = states.get(name)
        if st is None or not isinstance(entry, dict):
            warnings.append(f"state file: '{name}' is not a known account; ignored")
            continue
        st.disabled = entry.get("disabled") is True
        until = entry.get("rateLimitedUntil")
        if isinstance(until, (int, float)) and until > now:
            reason = entry.get("cooldownReason")
            cool(st, float(until), reason if isinstance(reason, str) else "restored", now)
    return warnings
