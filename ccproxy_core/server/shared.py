"""The state instances share, behind one interface: in this process (the default) or in Redis.

Each instance decides from its own in-process state (pool, sticky table, breakers), which keeps
the request path free of network round trips. A backend adds two things:

- **telling**: what this instance learned (a credential's cooldown or flags, a conversation's
  binding, a circuit that opened or closed, tokens a refresh got) goes to every other instance,
  which folds it in with the pure rules of `core/shared.py`;
- **counting**: limits that must hold across instances (token buckets, a client key's rpm, tpm,
  concurrency and budgets) and the one-refresh-per-account rule are decided atomically in the
  shared store.

`SharedState` here is the memory backend, and the interface: it tells nobody and counts in
process. `server/redis_state.py` is the Redis backend (`state.backend: redis`), imported only
when configured, so a single instance never loads the `redis` client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ccproxy_core.config.model import ConfigError
from ccproxy_core.core import limits
from ccproxy_core.core.credential import Credential
from ccproxy_core.core.ratelimit import BucketSet
from ccproxy_core.core.shared import CredentialEntry

if TYPE_CHECKING:
    from ccproxy_core.config.model import StateConfig
    from ccproxy_core.keys.model import ClientKey
    from ccproxy_core.server.state import State

log = logging.getLogger("ccproxy.shared")

Fetch = Callable[[], Awaitable[Credential]]


class SharedState:
    """The memory backend: every method decides in this process and tells no one."""

    backend = "memory"

    async def start(self, state: State) -> None:
        """Connect and subscribe (a backend that cannot reach its store starts degraded)."""

    async def close(self) -> None:
        """Stop listening; push nothing more."""

    def problems(self) -> list[str]:
        """Why shared state is degraded now (for /health); empty when it is not."""
        return []

    # --- what this instance tells the others (fire and forget) -------------------------------------

    def credential_changed(self, provider: str, name: str, entry: CredentialEntry) -> None:
        """A credential's cooldown, flags or verdict changed here."""

    def sticky_bound(self, provider: str, session: str, credential: str) -> None:
        """A conversation was (re)bound to a credential here."""

    def breaker_changed(self, provider: str, open_for: float | None) -> None:
        """A provider's circuit opened here (for `open_for` seconds) or closed (None)."""

    # --- decided across instances ------------------------------------------------------------------

    async def take(self, key: str, buckets: BucketSet) -> float:
        """One token from `key`'s bucket: 0.0 to go ahead, else the seconds to wait."""
        return buckets.take(key, time.monotonic())

    async def key_admit(
        self, key: ClientKey, local: limits.Counters, request_id: str, now: float
    ) -> limits.Refusal | None:
        """Whether a client key may make this request (and if so, count it in flight)."""
        refusal = limits.admit(key, local, now)
        if refusal is None:
            limits.start(local)
        return refusal

    async def key_finish(
        self, key: ClientKey, local: limits.Counters, request_id: str, tokens: int, cost: float, now: float
    ) -> None:
        """A client key's request ended: no longer in flight; its tokens and cost are charged."""
        limits.finish(key, local, tokens, cost, now)

    async def key_counters(self, key: ClientKey, local: limits.Counters | None, now: float) -> limits.Counters | None:
        """The counters that hold for this key now (for the admin API); None if it was never used."""
        return local

    async def refresh(self, provider: str, cred: Credential, fetch: Fetch) -> Credential:
        """New tokens for an OAuth account: `fetch()` them, unless another instance already did."""
        return await fetch()


MEMORY = SharedState()


def backend_for(settings: StateConfig) -> SharedState:
    """The configured backend; Redis's module (and the `redis` client) is imported only for it."""
    if settings.backend != "redis":
        return MEMORY
    try:
        from ccproxy_core.server.redis_state import RedisState
    except ImportError:  # the extra is not installed
        raise ConfigError(
            [
                "state.backend: redis needs the redis client, which is not installed; install it with "
                "`pip install 'ccproxy[redis]'` (or `pip install 'redis[hiredis]'`), or use the memory backend"
            ]
        ) from None
    return RedisState(settings)
