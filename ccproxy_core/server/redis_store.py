"""How the Redis backend talks to Redis: one connection's timeouts and what counts as Redis being
down, the names of every key it uses, scripts sent by EVALSHA, values as read.

Apart from the backend (`redis_state.py`) so the key names are written once and every module of
the backend (the group commit in `redis_cas.py`, the refresh lock in `redis_refresh.py`) reaches
Redis the same way. Keys (all under `state.key_prefix`, "ccproxy" by default):

    P:cred:PROVIDER          hash: credential name -> its entry (core/shared.py), the newest word
    P:sticky:PROVIDER:N      hash per TTL-long period N: conversation -> [credential, when told], for
                             instances that start later (expired by Redis after two periods)
    P:events                 pub/sub channel: every change one instance tells the others
    P:bucket:provider:NAME   a token bucket's (tokens, last refill), updated by compare-and-set;
    P:bucket:client:DIGEST   a client's bucket is named by a digest of its key or address
    P:key:NAME               a client key's counters and requests in flight, compare-and-set
    P:tokens:PROVIDER:NAME   the newest OAuth tokens of an account (written by the refresher)
    P:refresh:PROVIDER:NAME  the lock one instance holds while it refreshes that account
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import redis.asyncio as aioredis
from attrs import frozen
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

TIMEOUT = 1.0  # seconds for one Redis call: past it, Redis counts as down
# What a call to Redis raises when Redis is down, unreachable or too slow.
ERRORS = (RedisError, OSError, asyncio.TimeoutError)


def connect(url: str) -> aioredis.Redis:
    """A client that fails fast: no retries, TIMEOUT per call (the backend falls back to local
    state rather than keep a request waiting on Redis)."""
    return aioredis.Redis.from_url(
        url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT, retry=Retry(NoBackoff(), 0)
    )


async def evalsha(client: aioredis.Redis, script: AsyncScript, key: str, *args: bytes | str | int) -> Any:
    """EVALSHA on one key, loading the script again if Redis lost it (a restart, SCRIPT FLUSH).

    Sent as a plain command: redis-py's Script wrapper costs a third more CPU per call."""
    try:
        return await client.execute_command("EVALSHA", script.sha, 1, key, *args)  # type: ignore[no-untyped-call]
    except NoScriptError:
        await client.script_load(script.script)
        return await client.execute_command("EVALSHA", script.sha, 1, key, *args)  # type: ignore[no-untyped-call]


@frozen
class Keys:
    """The name of every key and of the channel, under one prefix."""

    prefix: str

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @property
    def events(self) -> str:
        return self._key("events")

    def cred(self, provider: str) -> str:
        return self._key("cred", provider)

    def sticky(self, provider: str, period: int) -> str:
        return self._key("sticky", provider, str(period))

    def bucket(self, key: str) -> str:
        """A bucket's Redis key: `provider:NAME` as it is, a client (its key or address) only
        as a digest, so no client's secret ever names a key in the shared store."""
        kind, _, name = key.partition(":")
        if kind == "client":
            name = hashlib.blake2b(name.encode(), digest_size=12).hexdigest()
        return self._key("bucket", kind, name)

    def client_key(self, name: str) -> str:
        return self._key("key", name)

    def tokens(self, provider: str, name: str) -> str:
        return self._key("tokens", provider, name)

    def refresh(self, provider: str, name: str) -> str:
        return self._key("refresh", provider, name)


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def as_bytes(value: bytes | str | None) -> bytes | None:
    """A value as read (the client is not asked to decode responses)."""
    return value.encode() if isinstance(value, str) else value


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    _, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{'***@' if at else ''}{host}"
