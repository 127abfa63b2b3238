"""One refresh of an OAuth account at a time across all instances, and its tokens for everyone.

A refresh token is good for one use: two instances that refresh the same account at once log it
out. The instance that takes the account's lock in Redis refreshes it and stores the new tokens
(and tells the others); an instance that finds the lock taken waits for those tokens instead of
calling the provider itself. Apart from the backend (`redis_state.py`), which falls back to a
refresh of its own when Redis is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable

import orjson
import redis.asyncio as aioredis

from ccproxy_core.core import shared as rules
from ccproxy_core.core.credential import Credential
from ccproxy_core.server.redis_store import ERRORS, Keys, as_bytes, evalsha
from ccproxy_core.server.shared import Fetch

REFRESH_LOCK_MS = 60_000  # one refresh at most this long; then another instance may try
TOKENS_TTL = 30 * 86400
LOCK_POLL = 0.05  # seconds between looks for the holder's tokens

# Release a lock only if this instance still holds it.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

Send = Callable[..., Awaitable[None]]  # the backend's pipeline: commands out, failures noted as lost


class RefreshLock:
    """The cluster-wide side of `SharedState.refresh`, used while Redis is up."""

    def __init__(
        self, client: aioredis.Redis, keys: Keys, sender: str, send: Send, lost: Callable[[BaseException], None]
    ) -> None:
        self.client = client
        self.keys = keys
        self.sender = sender  # this instance's id, on the event that carries the tokens
        self._send = send
        self._lost = lost
        self._unlock = client.register_script(_UNLOCK)

    async def refresh(self, provider: str, cred: Credential, fetch: Fetch) -> Credential:
        """New tokens for `cred`: another instance's if it refreshed meanwhile, else `fetch()`ed
        under the account's lock; without Redis, `fetch()`ed alone."""
        tokens_key = self.keys.tokens(provider, cred.name)
        lock_key = self.keys.refresh(provider, cred.name)
        me = secrets.token_hex(8)
        try:
            while True:
                newer = _newer(cred, as_bytes(await self.client.get(tokens_key)))
                if newer is not None:
                    return newer  # another instance refreshed it: its tokens, no call of ours
                if await self.client.set(lock_key, me, nx=True, px=REFRESH_LOCK_MS):
                    break
                await asyncio.sleep(LOCK_POLL)  # the holder is refreshing: its tokens will be in tokens_key
        except ERRORS as exc:
            self._lost(exc)
            return await fetch()
        try:
            newer = _newer(cred, as_bytes(await self.client.get(tokens_key)))  # it may have finished as we locked
            if newer is not None:
                return newer
            new = await fetch()
            doc = orjson.dumps({"access": new.secret, "refresh": new.refresh_token, "expires_at": new.expires_at})
            event = rules.encode("tokens", self.sender, provider, n=cred.name, t=orjson.loads(doc))
            await self._send(("SET", tokens_key, doc, "EX", str(TOKENS_TTL)), ("PUBLISH", self.keys.events, event))
            return new
        finally:
            with contextlib.suppress(*ERRORS):
                await evalsha(self.client, self._unlock, lock_key, me)


def _newer(cred: Credential, value: bytes | None) -> Credential | None:
    """The account with the shared tokens, if they are newer than `cred`'s."""
    if not value:
        return None
    return rules.shared_tokens(cred, orjson.loads(value))
