"""The Redis backend of shared state (`state.backend: redis`): many instances, one pool.

This module is the backend's shell: its connection to Redis (up, down, back), what it tells the
other instances and learns from them (pub/sub, and the shared entries read at start and after an
outage), and when a counted limit is decided in Redis or here. Around it: the key names and the
way to reach Redis (`redis_store.py`), the compare-and-set group commit of counted limits
(`redis_cas.py`), the one-refresh-per-account lock (`redis_refresh.py`).

Only requests that have a limit to count touch Redis on their way; everything else is told by
pub/sub after the fact.

Redis down, at start or later: every request is served from this instance's own state (said
once in the log; /health says degraded and why). A watchdog pings every second; when Redis is
back it pushes what changed meanwhile (credential entries merged by the later cooldown, the
tokens this instance took from buckets, the spend of client keys), reads the shared entries
again and resubscribes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import orjson
from redis.asyncio.client import PubSub

from ccproxy_core.core import limits
from ccproxy_core.core import shared as rules
from ccproxy_core.core import shared_counts as counts
from ccproxy_core.core.credential import Credential
from ccproxy_core.core.ratelimit import BucketSet
from ccproxy_core.core.shared import CredentialEntry
from ccproxy_core.core.sticky import StickyTable
from ccproxy_core.server.redis_cas import Conflict, GroupCommit
from ccproxy_core.server.redis_refresh import RefreshLock
from ccproxy_core.server.redis_store import ERRORS, Keys, as_bytes, as_text, connect, safe_url
from ccproxy_core.server.shared import Fetch, SharedState

if TYPE_CHECKING:
    from ccproxy_core.config.model import StateConfig
    from ccproxy_core.keys.model import ClientKey
    from ccproxy_core.server.state import State

log = logging.getLogger("ccproxy.shared")

WATCHDOG = 1.0  # seconds between pings while down (back in sync within a few of these)
KEY_TTL = 40 * 86400  # a client key's counters outlive its monthly budget window


def _instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class RedisState(SharedState):
    backend = "redis"

    def __init__(self, settings: StateConfig) -> None:
        self.url = settings.redis_url
        self.keys = Keys(settings.key_prefix)
        self.id = _instance_id()
        self.client = connect(settings.redis_url)
        self._counted = GroupCommit(self.client, self._spawn)
        self._refresh_lock = RefreshLock(self.client, self.keys, self.id, self._send, self._lost)
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

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self, state: State) -> None:
        self._state = state
        try:
            await self._sync()
        except ERRORS as exc:
            self._down(f"cannot reach Redis at start: {exc}")
        self._watchdog = asyncio.get_running_loop().create_task(self._watch(), name="redis-watchdog")

    async def close(self) -> None:
        self._closing = True
        for task in (self._watchdog, *self._tasks):
            if task is not None:
                task.cancel()
        for task in (self._watchdog, *self._tasks):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, *ERRORS):
                    await task
        await self._stop_listening()
        with contextlib.suppress(*ERRORS):
            await self.client.aclose()

    async def _stop_listening(self) -> None:
        """End the listener first, then close its subscription: closing it under a listener
        that is still reading would fail that read and leave its connection behind."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, *ERRORS):
                await listener
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    def problems(self) -> list[str]:
        if self.up:
            return []
        where = safe_url(self.url)
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
                    except (*ERRORS, Conflict) as exc:
                        self._down(f"could not write to Redis: {exc}")
                continue
            try:
                await self._sync()
            except ERRORS as exc:
                self._down_reason = str(exc) or type(exc).__name__

    async def _sync(self) -> None:
        """Connect, subscribe, push what changed here meanwhile, read the shared entries."""
        await self.client.ping()
        await self._stop_listening()  # the old subscription may still be waiting on a frozen server
        self._pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.keys.events)
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
            raw = await self.client.hget(self.keys.cred(provider), name)
            remote: CredentialEntry = orjson.loads(raw) if raw else {}
            merged = rules.merge_entries(local, remote, now)
            await self.client.hset(self.keys.cred(provider), name, orjson.dumps(merged))
            await self.client.publish(self.keys.events, rules.encode("cred", self.id, provider, n=name, e=merged))
        self._dirty.clear()
        takes, self._pending_takes = self._pending_takes, Counter()
        for key, count in takes.items():
            rate, burst = _bucket_params(key, state)
            if rate:
                step = counts.bucket_step(rate, burst, now, spent=count)
                await self._counted.update(self.keys.bucket(key), step, counts.bucket_ttl_ms(rate, burst))
        spend, self._pending_spend = self._pending_spend, {}
        for name, (client_key, tokens, cost) in spend.items():

            def charge(
                c: limits.Counters, _: dict[str, float], ck: ClientKey = client_key, n: int = tokens, usd: float = cost
            ) -> None:
                c.in_flight += 1  # finish() takes one off; nothing of this key's was in flight here
                limits.finish(ck, c, n, usd, now)

            await self._counted.update(self.keys.client_key(name), counts.counters_step(charge, now), KEY_TTL * 1000)

    async def _pull(self) -> None:
        state = self._state
        assert state is not None
        now = time.time()
        for provider, owner in list(state.pools.items()):
            if owner.pool is None:
                continue
            for raw_name, raw in (await self.client.hgetall(self.keys.cred(provider))).items():
                name = as_text(raw_name)
                if owner.pool.get(name) is not None:
                    owner.learn(name, orjson.loads(raw), now)
            await self._pull_sticky(provider, owner.sticky, now)

    async def _pull_sticky(self, provider: str, table: StickyTable, now: float) -> None:
        """The live conversations other instances bound (this period's and the last one's)."""
        for back in (1, 0):  # the newer period last: its bindings win
            for raw_session, raw in (await self.client.hgetall(self._sticky_key(provider, now, back))).items():
                session = as_text(raw_session)
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
        except ERRORS as exc:
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
        except ERRORS as exc:
            self._lost(exc)

    def credential_changed(self, provider: str, name: str, entry: CredentialEntry) -> None:
        if not self.up:
            self._dirty.add((provider, name))
            return
        raw = orjson.dumps(entry)
        event = rules.encode("cred", self.id, provider, n=name, e=entry)
        self._spawn(self._send(("HSET", self.keys.cred(provider), name, raw), ("PUBLISH", self.keys.events, event)))  # type: ignore[arg-type]

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
                    ("PUBLISH", self.keys.events, event),  # type: ignore[arg-type]
                )
            )

    def _sticky_ttl(self, provider: str) -> float:
        owner = self._state.pools.get(provider) if self._state is not None else None
        return max(1.0, owner.sticky.ttl) if owner is not None else 3600.0

    def _sticky_key(self, provider: str, now: float, back: int = 0) -> str:
        """Bindings go in one hash per TTL-long period, which Redis expires by itself: a binding
        told at `now` lives no longer than the next period, so two periods hold every live one."""
        period = int(now // self._sticky_ttl(provider)) - back
        return self.keys.sticky(provider, period)

    def breaker_changed(self, provider: str, open_for: float | None) -> None:
        if self.up:
            event = rules.encode("breaker", self.id, provider, open_for=open_for)
            self._spawn(self._send(("PUBLISH", self.keys.events, event)))  # type: ignore[arg-type]

    # --- counting ----------------------------------------------------------------------------------

    async def take(self, key: str, buckets: BucketSet) -> float:
        if not buckets.enabled:
            return 0.0
        if self.up:
            try:
                return await self._counted.update(
                    self.keys.bucket(key),
                    counts.bucket_step(buckets.rate_per_minute, buckets.burst, time.time()),
                    counts.bucket_ttl_ms(buckets.rate_per_minute, buckets.burst),
                )
            except ERRORS as exc:
                self._lost(exc)
            except Conflict:
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
                return await self._counted.update(
                    self.keys.client_key(key.name), counts.counters_step(admit, now), KEY_TTL * 1000
                )
            except ERRORS as exc:
                self._lost(exc)
            except Conflict:
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
                await self._counted.update(
                    self.keys.client_key(key.name), counts.counters_step(finish, now), KEY_TTL * 1000
                )
                return
            except ERRORS as exc:
                self._lost(exc)
            except Conflict:
                log.warning("redis: client key %s stayed contended; its spend is charged in a moment", key.name)
        limits.finish(key, local, tokens, cost, now)
        _, was_tokens, was_cost = self._pending_spend.get(key.name, (key, 0, 0.0))
        self._pending_spend[key.name] = (key, was_tokens + tokens, was_cost + cost)

    async def key_counters(self, key: ClientKey, local: limits.Counters | None, now: float) -> limits.Counters | None:
        if self.up:
            try:
                value = as_bytes(await self.client.get(self.keys.client_key(key.name)))
                return counts.load_counters(value, now)[0] if value else local
            except ERRORS as exc:
                self._lost(exc)
        return local

    # --- one refresh per account, cluster-wide -----------------------------------------------------

    async def refresh(self, provider: str, cred: Credential, fetch: Fetch) -> Credential:
        if not self.up:
            return await fetch()
        return await self._refresh_lock.refresh(provider, cred, fetch)


def _bucket_params(key: str, state: State) -> tuple[float, int]:
    """The limit a bucket key stands for: `provider:NAME` or `client:ID`."""
    kind, _, name = key.partition(":")
    if kind == "provider":
        provider = state.config.provider(name)
        return (float(provider.requests_per_minute), provider.burst) if provider is not None else (0.0, 0)
    return float(state.config.limits.requests_per_minute), state.config.limits.burst
