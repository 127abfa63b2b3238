"""Counted limits across instances: a key's new value is computed by a pure step and written by
compare-and-set, the updates of one key grouped into one write.

Counted limits are read, decided by the same pure code as a single instance (core/ratelimit.py,
core/limits.py, through the steps of core/shared_counts.py) and written back only if nobody
wrote in between (a Lua compare-and-set), so the rules live in one place and still hold across
instances. Apart from the backend (`redis_state.py`), which decides *when* to count and what to
do when Redis is down or a key stays contended; this module only knows how to write one key.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import redis.asyncio as aioredis

from ccproxy_core.core.shared_counts import Step
from ccproxy_core.server.redis_store import ERRORS, as_bytes, evalsha

T = TypeVar("T")

CAS_ATTEMPTS = 64
LAST_WRITTEN_MAX = 10_000  # values this instance last wrote, kept to skip the read before a write

# Compare-and-set: write ARGV[2] (with a TTL of ARGV[3] ms) only if the key still holds ARGV[1];
# otherwise answer what it holds, so the next attempt needs no read of its own.
_CAS = """
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then return {0, cur} end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1}
"""


class Conflict(Exception):
    """A compare-and-set lost CAS_ATTEMPTS times in a row."""


class GroupCommit:
    """Writes keys by compare-and-set, one write under way per key.

    `spawn` runs a write in a task its owner tracks (and cancels when it closes)."""

    def __init__(self, client: aioredis.Redis, spawn: Callable[[Coroutine[Any, Any, None]], None]) -> None:
        self.client = client
        self._spawn = spawn
        self._cas = client.register_script(_CAS)
        # per key: the updates waiting for the write under way
        self._batches: dict[str, list[tuple[Step, asyncio.Future[Any]]]] = {}
        self._written: OrderedDict[str, bytes] = OrderedDict()  # per key: the value this instance last wrote

    async def update(self, key: str, step: Callable[[bytes | None], tuple[bytes, T]], ttl_ms: int) -> T:
        """Compute `key`'s new value with the pure `step` and write it if nobody wrote meanwhile.

        Group commit: the updates of one key that arrive while a write of it is under way wait,
        and go together in the next write (each step applied in arrival order, one round trip for
        all), so this instance's own requests never race each other and a busy key costs one
        write per batch, not per request. The value this instance last wrote stands in for a
        read; a write by another instance fails the compare, which returns the value to redo the
        batch on. Raises ERRORS when Redis fails, Conflict when the key stays contended."""
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
                except (*ERRORS, Conflict) as exc:
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
            current = as_bytes(await self.client.get(key)) or b""
        for _ in range(CAS_ATTEMPTS):
            value: bytes | None = current or None
            results = []
            for step in steps:
                value, result = step(value)
                results.append(result)
            assert value is not None
            answer = await evalsha(self.client, self._cas, key, current, value, ttl_ms)
            if answer[0] == 1:
                self._remember(key, value)
                return results
            current = as_bytes(answer[1]) or b""
        self._written.pop(key, None)
        raise Conflict(key)

    def _remember(self, key: str, value: bytes) -> None:
        self._written[key] = value
        self._written.move_to_end(key)
        if len(self._written) > LAST_WRITTEN_MAX:
            self._written.popitem(last=False)
