"""The Redis backend of shared state (`state.backend: redis`): many instances, one pool.

Keys (all under `state.key_prefix`, "ccproxy" by default):

    P:cred:PROVIDER          hash: credential name -> its entry (core/shared.py), the newest word
    P:sticky:PROVIDER:N      hash per TTL-long period N: conversation -> [credential, when told], for
                             instances that start later (expired by Redis after two periods)
    P:events                 pub/sub channel: every change one instance tells the others
    P:bucket:provider:NAME   a token bucket's (tokens, last refill), updated by compare-and-set;
    P:bucket:client:DIGEST   a client's bucket is named by a digest of its key or address
    P:key:NAME               a client key's counters and requests in flight, compare-and-set
    P:tokens:PROVIDER:NAME   the newest OAuth tokens of an account (written by the refresher)
    P:refresh:PROVIDER:NAME  the lock one instance holds while it refreshes that account

Counted limits are read, decided by the same pure code as a single instance (core/ratelimit.py,
core/limits.py) and written back only if nobody wrote in between (a Lua compare-and-set), so
the rules live in one place and still hold across instances. Only requests that have a limit to
count touch Redis on their way; everything else is told by pub/sub after the fact.

Redis down, at start or later: every request is served from this instance's own state (said
once in the log; /health says degraded and why). A watchdog pings every second; when Redis is
back it pushes what changed meanwhile (credential entries merged by the later cooldown, the
tokens this instance took from buckets, the spend of client keys), reads the shared entries
again and resubscribes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from ccproxy_core.core import limits
from ccproxy_core.core import shared as rules
from ccproxy_core.core import shared_counts as counts
from ccproxy_core.core.credential import Credential
from ccproxy_core.core.ratelimit import BucketSet
from ccproxy_core.core.shared import CredentialEntry
from ccproxy_core.core.shared_counts import Step
from ccproxy_core.core.sticky import StickyTable
from ccproxy_core.server.shared import Fetch, SharedState

if TYPE_CHECKING:
    from ccproxy_core.config.model import StateConfig
    from ccproxy_core.keys.model import ClientKey
    from ccproxy_core.server.state import State

log = logging.getLogger("ccproxy.shared")

T = TypeVar("T")

TIMEOUT = 1.0  # seconds for one Redis call: past it, Redis counts as down
WATCHDOG = 1.0  # seconds between pings while down (back in sync within a few of these)
CAS_ATTEMPTS = 64
KEY_TTL = 40 * 86400  # a client key's counters outlive its monthly budget window
REFRESH_LOCK_MS = 60_000  # one refresh at most this long; then another instance may try
TOKENS_TTL = 30 * 86400

# Compare-and-set: write ARGV[2] (with a TTL of ARGV[3] ms) only if the key still holds ARGV[1];
# otherwise answer what it holds, so the next attempt needs no read of its own.
_CAS = """
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then return {0, cur} end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1}
"""
LAST_WRITTEN_MAX = 10_000  # values this instance last wrote, kept to skip the read before a write
# Release a lock only if this instance still holds it.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class _Conflict(Exception):
    """A compare-and-set lost CAS_ATTEMPTS times in a row."""


def _instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class RedisState(SharedState):
    backend = "redis"

    def __init__(self, settings: StateConfig) -> None:
        self.url = settings.redis_url
        self.prefix = settings.key_prefix
        self.id = _instance_id()
        self.client = aioredis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=TIMEOUT,
            socket_timeout=TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        self._cas = self.client.register_script(_CAS)
        self._unlock = self.client.register_script(_UNLOCK)
        self.up = False
        self._state: State | None = None
        self._down_since: float | None = None
        self._down_reason = "not connected yet"
        self._dirty: set[tuple[str, str]] = set()  # credentials changed while Redis was down
        self._pending_takes: Counter[str] = Counter()  # bucket tokens taken while down
        self._pending_spend: dict[str, tuple[ClientKey, int, float]] = {}  # key -> (key, tokens, cost) while down
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._pubsub: PubSub | None = None
        self._closing = False
        # per key: the updates waiting for the write under way (group commit, see `_update`)
        self._batches: dict[str, list[tuple[Step, asyncio.Future[Any]]]] = {}
        self._written: OrderedDict[str, bytes] = OrderedDict()  # per key: the value this instance last wrote

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _bucket_key(self, key: str) -> str:
        """A bucket's Redis key: `provider:NAME` as it is, a client (its key or address) only
        as a digest, so no client's secret ever names a key in the shared store."""
        kind, _, name = key.partition(":")
        if kind == "client":
            name = hashlib.blake2b(name.encode(), digest_size=12).hexdigest()
        return self._key("bucket", kind, name)

    @property
    def _channel(self) -> str:
        return self._key("events")

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self, state: State) -> None:
        self._state = state
        try:
            await self._sync()
        except _ERRORS as exc:
            self._down(f"cannot reach Redis at start: {exc}")
        self._watchdog = asyncio.get_running_loop().create_task(self._watch(), name="redis-watchdog")

    async def close(self) -> None:
        self._closing = True
        for task in (self._watchdog, *self._tasks):
            if task is not None:
                task.cancel()
        for task in (self._watchdog, *self._tasks):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, *_ERRORS):
                    await task
        await self._stop_listening()
        with contextlib.suppress(*_ERRORS):
            await self.client.aclose()

    async def _stop_listening(self) -> None:
        """End the listener first, then close its subscription: closing it under a listener
        that is still reading would fail that read and leave its connection behind."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_ERRORS):
                await listener
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*_ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def problems(self) -> list[str]:
        if self.up:
            return []
        where = _safe_url(self.url)
        return [f"shared state (Redis at {where}) unreachable: {self._down_reason}; serving from local state"]

    def _down(self, reason: str) -> None:
        if self.up or self._down_since is None:
            log.warning("redis: %s; serving from this instance's own state until it is back", reason)
            self._down_since = time.time()
        self.up = False
        self._down_reason = reason

    def _lost(self, exc: BaseException) -> None:
        self._down(f"lost the connection to Redis: {exc}")

    async def _watch(self) -> None:
        """While down: ping every second, and when Redis answers push, pull and resubscribe."""
        while True:
            await asyncio.sleep(WATCHDOG)
            if self.up:
                if self._listener is None or self._listener.done():
                    self._down("the subscription to Redis ended")
                elif self._dirty or self._pending_takes or self._pending_spend:
                    try:  # what could not be written when it happened (a contended key)
                        await self._push()
                    except (*_ERRORS, _Conflict) as exc:
                        self._down(f"could not write to Redis: {exc}")
                continue
            try:
                await self._sync()
            except _ERRORS as exc:
                self._down_reason = str(exc) or type(exc).__name__

    async def _sync(self) -> None:
        """Connect, subscribe, push what changed here meanwhile, read the shared entries."""
        await self.client.ping()
        await self._stop_listening()  # the old subscription may still be waiting on a frozen server
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self._channel)
        await self._push()
        await self._pull()
        self._listener = asyncio.get_running_loop().create_task(self._listen(self._pubsub), name="redis-listener")
        if self._down_since is not None:
            log.warning("redis: back after %.1f s; shared state is in sync again", time.time() - self._down_since)
        self._down_since = None
        self.up = True

    async def _push(self) -> None:
        state = self._state
        assert state is not None
        now = time.time()
        for provider, name in sorted(self._dirty):
            owner = state.pools.get(provider)
            if owner is None or owner.pool is None or owner.pool.get(name) is None:
                continue
            local = rules.entry_of(owner.pool.state(name), now)
            raw = await self.client.hget(self._key("cred", provider), name)
            remote: CredentialEntry = orjson.loads(raw) if raw else {}
            merged = rules.merge_entries(local, remote, now)
            await self.client.hset(self._key("cred", provider), name, orjson.dumps(merged))
            await self.client.publish(self._channel, rules.encode("cred", self.id, provider, n=name, e=merged))
        self._dirty.clear()
        takes, self._pending_takes = self._pending_takes, Counter()
        for key, count in takes.items():
            rate, burst = _bucket_params(key, state)
            if rate:
                step = counts.bucket_step(rate, burst, now, spent=count)
                await self._update(self._bucket_key(key), step, counts.bucket_ttl_ms(rate, burst))
        spend, self._pending_spend = self._pending_spend, {}
        for name, (client_key, tokens, cost) in spend.items():

            def charge(
                c: limits.Counters, _: dict[str, float], ck: ClientKey = client_key, n: int = tokens, usd: float = cost
            ) -> None:
                c.in_flight += 1  # finish() takes one off; nothing of this key's was in flight here
                limits.finish(ck, c, n, usd, now)

            await self._update(self._key("key", name), counts.counters_step(charge, now), KEY_TTL * 1000)

    async def _pull(self) -> None:
        state = self._state
        assert state is not None
        now = time.time()
        for provider, owner in list(state.pools.items()):
            if owner.pool is None:
                continue
            for raw_name, raw in (await self.client.hgetall(self._key("cred", provider))).items():
                name = _text(raw_name)
                if owner.pool.get(name) is not None:
                    owner.learn(name, orjson.loads(raw), now)
            await self._pull_sticky(provider, owner.sticky, now)

    async def _pull_sticky(self, provider: str, table: StickyTable, now: float) -> None:
        """The live conversations other instances bound (this period's and the last one's)."""
        for back in (1, 0):  # the newer period last: its bindings win
            for raw_session, raw in (await self.client.hgetall(self._sticky_key(provider, now, back))).items():
                session = _text(raw_session)
                credential, told = orjson.loads(raw)
                if now - told <= table.ttl:
                    table.put(session, credential, told)  # alive for what is left of its TTL

    async def _listen(self, pubsub: PubSub) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=WATCHDOG)
                if message is None or message.get("type") != "message":
                    continue
                event = rules.decode(message["data"])
                if event is not None and event.get("from") != self.id:
                    try:
                        self._apply(event)
                    except Exception:  # a malformed event from a foreign writer must not stop the listener
                        log.exception("redis: could not apply an event of kind %r", event.get("k"))
        except _ERRORS as exc:
            if not self._closing:
                self._lost(exc)

    def _apply(self, event: dict[str, Any]) -> None:
        state = self._state
        assert state is not None
        provider = event["p"]
        owner = state.pools.get(provider)
        kind = event["k"]
        if kind == "cred" and owner is not None:
            owner.learn(str(event["n"]), event["e"], time.time())
        elif kind == "stick" and owner is not None:
            owner.sticky.put(str(event["s"]), str(event["c"]), time.time())
        elif kind == "breaker":
            state.breaker_elsewhere(provider, event.get("open_for"))
        elif kind == "tokens" and owner is not None:
            self._spawn(owner.adopt_tokens(str(event["n"]), event["t"]))

    # --- telling -----------------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, *commands: tuple[str, ...]) -> None:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                await pipe.execute()
        except _ERRORS as exc:
            self._lost(exc)

    def credential_changed(self, provider: str, name: str, entry: CredentialEntry) -> None:
        if not self.up:
            self._dirty.add((provider, name))
            return
        raw = orjson.dumps(entry)
        event = rules.encode("cred", self.id, provider, n=name, e=entry)
        self._spawn(self._send(("HSET", self._key("cred", provider), name, raw), ("PUBLISH", self._channel, event)))  # type: ignore[arg-type]

    def sticky_bound(self, provider: str, session: str, credential: str) -> None:
        if self.up:
            event = rules.encode("stick", self.id, provider, s=session, c=credential)
            now = time.time()
            binding = orjson.dumps([credential, now])  # kept for instances that start later
            key, ttl = self._sticky_key(provider, now), self._sticky_ttl(provider)
            self._spawn(
                self._send(
                    ("HSET", key, session, binding),  # type: ignore[arg-type]
                    ("EXPIRE", key, str(int(2 * ttl) + 60)),
                    ("PUBLISH", self._channel, event),  # type: ignore[arg-type]
                )
            )

    def _sticky_ttl(self, provider: str) -> float:
        owner = self._state.pools.get(provider) if self._state is not None else None
        return max(1.0, owner.sticky.ttl) if owner is not None else 3600.0

    def _sticky_key(self, provider: str, now: float, back: int = 0) -> str:
        """Bindings go in one hash per TTL-long period, which Redis expires by itself: a binding
        told at `now` lives no longer than the next period, so two periods hold every live one."""
        period = int(now // self._sticky_ttl(provider)) - back
        return self._key("sticky", provider, str(period))

    def breaker_changed(self, provider: str, open_for: float | None) -> None:
        if self.up:
            event = rules.encode("breaker", self.id, provider, open_for=open_for)
            self._spawn(self._send(("PUBLISH", self._channel, event)))  # type: ignore[arg-type]

    # --- counting ----------------------------------------------------------------------------------

    async def _update(self, key: str, step: Callable[[bytes | None], tuple[bytes, T]], ttl_ms: int) -> T:
        """Compute `key`'s new value with the pure `step` and write it if nobody wrote meanwhile.

        Group commit: the updates of one key that arrive while a write of it is under way wait,
        and go together in the next write (each step applied in arrival order, one round trip for
        all), so this instance's own requests never race each other and a busy key costs one
        write per batch, not per request. The value this instance last wrote stands in for a
        read; a write by another instance fails the compare, which returns the value to redo the
        batch on."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = []
            self._spawn(self._flush(key, batch, ttl_ms))
        batch.append((step, future))
        result: T = await future
        return result

    async def _flush(self, key: str, batch: list[tuple[Step, asyncio.Future[Any]]], ttl_ms: int) -> None:
        try:
            while batch:
                items = batch[:]
                del batch[:]
                try:
                    results = await self._write(key, [step for step, _ in items], ttl_ms)
                except (*_ERRORS, _Conflict) as exc:
                    for _, future in items:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except asyncio.CancelledError:
                    for _, future in items:
                        future.cancel()
                    raise
                for (_, future), result in zip(items, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            for _, future in batch:  # only when cancelled (closing): nothing may wait forever
                future.cancel()
            if self._batches.get(key) is batch:
                del self._batches[key]

    async def _write(self, key: str, steps: list[Step], ttl_ms: int) -> list[Any]:
        current = self._written.get(key)
        if current is None:
            current = _raw(await self.client.get(key)) or b""
        for _ in range(CAS_ATTEMPTS):
            value: bytes | None = current or None
            results = []
            for step in steps:
                value, result = step(value)
                results.append(result)
            assert value is not None
            answer = await self._run(self._cas, key, current, value, ttl_ms)
            if answer[0] == 1:
                self._remember(key, value)
                return results
            current = _raw(answer[1]) or b""
        self._written.pop(key, None)
        raise _Conflict(key)

    async def _run(self, script: AsyncScript, key: str, *args: bytes | str | int) -> Any:
        """EVALSHA on one key, loading the script again if Redis lost it (a restart, SCRIPT FLUSH).

        Sent as a plain command: redis-py's Script wrapper costs a third more CPU per call."""
        try:
            return await self.client.execute_command("EVALSHA", script.sha, 1, key, *args)  # type: ignore[no-untyped-call]
        except NoScriptError:
            await self.client.script_load(script.script)
            return await self.client.execute_command("EVALSHA", script.sha, 1, key, *args)  # type: ignore[no-untyped-call]

    def _remember(self, key: str, value: bytes) -> None:
        self._written[key] = value
        self._written.move_to_end(key)
        if len(self._written) > LAST_WRITTEN_MAX:
            self._written.popitem(last=False)

    async def take(self, key: str, buckets: BucketSet) -> float:
        if not buckets.enabled:
            return 0.0
        if self.up:
            try:
                return await self._update(
                    self._bucket_key(key),
                    counts.bucket_step(buckets.rate_per_minute, buckets.burst, time.time()),
                    counts.bucket_ttl_ms(buckets.rate_per_minute, buckets.burst),
                )
            except _ERRORS as exc:
                self._lost(exc)
            except _Conflict:
                log.warning("redis: bucket %s stayed contended; deciding locally this time", key)
        wait = buckets.take(key, time.monotonic())
        if wait == 0.0:  # taken here alone: charged to the shared bucket when it can be
            self._pending_takes[key] += 1
        return wait

    async def key_admit(
        self, key: ClientKey, local: limits.Counters, request_id: str, now: float
    ) -> limits.Refusal | None:
        if self.up:

            def admit(c: limits.Counters, flights: dict[str, float]) -> limits.Refusal | None:
                if c.day == 0.0:  # first sight of this key in Redis: start from what the ledger says
                    limits.seed(c, local.spent_day, local.spent_month, now)
                refusal = limits.admit(key, c, now)
                if refusal is None:
                    flights[request_id] = now
                return refusal

            try:
                return await self._update(self._key("key", key.name), counts.counters_step(admit, now), KEY_TTL * 1000)
            except _ERRORS as exc:
                self._lost(exc)
            except _Conflict:
                log.warning("redis: client key %s stayed contended; deciding locally this time", key.name)
        return await super().key_admit(key, local, request_id, now)

    async def key_finish(
        self, key: ClientKey, local: limits.Counters, request_id: str, tokens: int, cost: float, now: float
    ) -> None:
        if self.up:

            def finish(c: limits.Counters, flights: dict[str, float]) -> None:
                if flights.pop(request_id, None) is not None:
                    c.in_flight += 1  # counted from `flights`, which no longer holds it
                limits.finish(key, c, tokens, cost, now)

            try:
                await self._update(self._key("key", key.name), counts.counters_step(finish, now), KEY_TTL * 1000)
                return
            except _ERRORS as exc:
                self._lost(exc)
            except _Conflict:
                log.warning("redis: client key %s stayed contended; its spend is charged in a moment", key.name)
        limits.finish(key, local, tokens, cost, now)
        _, was_tokens, was_cost = self._pending_spend.get(key.name, (key, 0, 0.0))
        self._pending_spend[key.name] = (key, was_tokens + tokens, was_cost + cost)

    async def key_counters(self, key: ClientKey, local: limits.Counters | None, now: float) -> limits.Counters | None:
        if self.up:
            try:
                raw = _raw(await self.client.get(self._key("key", key.name)))
                return counts.load_counters(raw, now)[0] if raw else local
            except _ERRORS as exc:
                self._lost(exc)
        return local

    # --- one refresh per account, cluster-wide -----------------------------------------------------

    async def refresh(self, provider: str, cred: Credential, fetch: Fetch) -> Credential:
        if not self.up:
            return await fetch()
        tokens_key = self._key("tokens", provider, cred.name)
        lock_key = self._key("refresh", provider, cred.name)
        me = secrets.token_hex(8)
        try:
            while True:
                newer = _newer(cred, _raw(await self.client.get(tokens_key)))
                if newer is not None:
                    return newer  # another instance refreshed it: its tokens, no call of ours
                if await self.client.set(lock_key, me, nx=True, px=REFRESH_LOCK_MS):
                    break
                await asyncio.sleep(0.05)  # the holder is refreshing: its tokens will be in tokens_key
        except _ERRORS as exc:
            self._lost(exc)
            return await fetch()
        try:
            newer = _newer(cred, _raw(await self.client.get(tokens_key)))  # it may have finished as we locked
            if newer is not None:
                return newer
            new = await fetch()
            doc = orjson.dumps({"access": new.secret, "refresh": new.refresh_token, "expires_at": new.expires_at})
            event = rules.encode("tokens", self.id, provider, n=cred.name, t=orjson.loads(doc))
            await self._send(("SET", tokens_key, doc, "EX", str(TOKENS_TTL)), ("PUBLISH", self._channel, event))  # type: ignore[arg-type]
            return new
        finally:
            with contextlib.suppress(*_ERRORS):
                await self._run(self._unlock, lock_key, me)


def _newer(cred: Credential, raw: bytes | None) -> Credential | None:
    """The account with the shared tokens, if they are newer than `cred`'s."""
    if not raw:
        return None
    return rules.shared_tokens(cred, orjson.loads(raw))


def _bucket_params(key: str, state: State) -> tuple[float, int]:
    """The limit a bucket key stands for: `provider:NAME` or `client:ID`."""
    kind, _, name = key.partition(":")
    if kind == "provider":
        provider = state.config.provider(name)
        return (float(provider.requests_per_minute), provider.burst) if provider is not None else (0.0, 0)
    return float(state.config.limits.requests_per_minute), state.config.limits.burst


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _raw(value: bytes | str | None) -> bytes | None:
    """A value as read (the client is not asked to decode responses)."""
    return value.encode() if isinstance(value, str) else value


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    _, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{'***@' if at else ''}{host}"
