"""What instances of ccproxy tell each other, and how one applies what another learned.

With a shared state backend (`state.backend: redis`), each instance still decides from its own
in-process state, which is what keeps the request path free of network round trips; what one
instance learns about a credential, a conversation or a provider is published, and every other
instance folds it into its own state with the rules below. Pure: no I/O, clocks passed in.

    entry_of(state, now)          what others need to know about one credential
    merge_entry(state, entry, now)  fold another instance's entry in (True if anything changed)
    encode(event) / decode(raw)   the wire form of one event (JSON, with the sender's id)

The rules, which make the order of delivery irrelevant where it can be:
- a cooldown merges by its later end: two instances that saw two 429s keep the longer bench;
- the operator's flags (disabled) and the provider's verdicts (a rejected key, its re-probe
  time) are the newest word on the account: the entry as sent wins;
- a rejected key whose re-probe passed elsewhere comes back here too (an entry without `auth`).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

import orjson

from ccproxy_core.core.credential import Credential, CredentialState, with_tokens

EventKind = Literal["cred", "stick", "breaker", "tokens"]


class CredentialEntry(TypedDict, total=False):
    disabled: bool
    until: float  # cooled down until (epoch seconds)
    reason: str
    auth: bool  # the provider refused it (API key: re-probed at `reprobe`)
    failures: int
    reprobe: float
    error: str


def entry_of(st: CredentialState, now: float) -> CredentialEntry:
    """The part of a credential's state that other instances must know (never a secret)."""
    entry: CredentialEntry = {}
    if st.disabled:
        entry["disabled"] = True
    if st.rate_limited_until is not None and st.rate_limited_until > now:
        entry["until"] = st.rate_limited_until
        entry["reason"] = st.cooldown_reason or ""
    if st.auth_error:
        entry["auth"] = True
        entry["failures"] = st.auth_failures
        if st.reprobe_at is not None:
            entry["reprobe"] = st.reprobe_at
        if st.last_error:
            entry["error"] = st.last_error
    return entry


def merge_entry(st: CredentialState, entry: CredentialEntry, now: float) -> bool:
    """Fold another instance's entry into this instance's state; whether anything changed."""
    before = entry_of(st, now)
    st.disabled = entry.get("disabled", False)
    until = entry.get("until")
    if until is not None and until > now and (st.rate_limited_until is None or until > st.rate_limited_until):
        st.rate_limited_until, st.cooldown_reason = until, entry.get("reason") or "shared"
    auth = entry.get("auth", False)
    if auth:
        st.auth_error = True
        st.auth_failures = entry.get("failures", st.auth_failures)
        st.reprobe_at = entry.get("reprobe")
        st.last_error = entry.get("error", st.last_error)
    elif st.auth_error:
        st.auth_error, st.auth_failures, st.reprobe_at, st.needs_refresh = False, 0, None, False
    return entry_of(st, now) != before


def merge_entries(local: CredentialEntry, remote: CredentialEntry, now: float) -> CredentialEntry:
    """After an outage: this instance's entry (changed meanwhile) over the shared one, keeping
    the later end of the two cooldowns."""
    merged: CredentialEntry = {**local}
    until = remote.get("until")
    if until is not None and until > now and until > local.get("until", 0.0):
        merged["until"], merged["reason"] = until, remote.get("reason", "")
    return merged


def shared_tokens(cred: Credential, doc: Any) -> Credential | None:
    """`cred` with the tokens of a shared document, if it holds other, later-expiring ones."""
    if not isinstance(doc, dict) or not isinstance(doc.get("access"), str):
        return None
    expires = doc.get("expires_at")
    if doc.get("refresh") == cred.refresh_token or not isinstance(expires, (int, float)):
        return None
    if cred.expires_at is not None and expires <= cred.expires_at:
        return None
    return with_tokens(cred, doc["access"], doc.get("refresh"), float(expires))


def encode(kind: EventKind, sender: str, provider: str, **fields: Any) -> bytes:
    return orjson.dumps({"k": kind, "from": sender, "p": provider, **fields})


def decode(raw: bytes | str) -> dict[str, Any] | None:
    """One event, or None for anything that is not one (a foreign publisher on the channel)."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("k"), str) or not isinstance(event.get("p"), str):
        return None
    return event
