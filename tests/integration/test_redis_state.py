"""The Redis backend itself, two instances in one test against a real redis-server.

Each "instance" is a `State` with `state.backend: redis`, as `ccproxy serve` builds it; the
three-process tests (test_shared_state.py) show the same through real servers. Here: what is
hard to stage through HTTP — concurrency and budgets of a client key, a refresh another
instance is running, a breaker, and what an instance did alone while Redis was down.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest

from ccproxy_core.config.model import structure
from ccproxy_core.core import limits
from ccproxy_core.core.credential import Credential
from ccproxy_core.core.errors import RateLimited
from ccproxy_core.core.outcome import Outcome, OutcomeKind
from ccproxy_core.keys.model import ClientKey, Limits
from ccproxy_core.server.redis_state import RedisState
from ccproxy_core.server.state import State
from tests.redis_server import RedisServer

pytestmark = pytest.mark.slow

Instances = Callable[..., Awaitable[list[State]]]
FAIL = Outcome(OutcomeKind.TRANSIENT, 500)


@pytest.fixture
async def instances(redis_server: RedisServer) -> AsyncIterator[Instances]:
    started: list[State] = []

    async def start(count: int = 2, limits: dict[str, object] | None = None, **provider: object) -> list[State]:
        config = structure(
            {
                "providers": [
                    {"name": "p", "kind": "anthropic", "api_base_url": "http://127.0.0.1:9", "api_key": "k", **provider}
                ],
                "breaker": {"consecutive_failures": 2, "open_seconds": 30},
                "limits": limits or {},
                "state": {"backend": "redis", "redis_url": redis_server.url},
            }
        )
        for _ in range(count):
            state = State(config)
            await state.start()
            started.append(state)
        return started[-count:]

    yield start
    for state in started:
        await state.close()


def backend(state: State) -> RedisState:
    assert isinstance(state.shared, RedisState)
    return state.shared


async def eventually(check: Callable[[], bool], what: str) -> None:
    for _ in range(100):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never: {what}")


KEY = ClientKey("team", "ccp_", "digest", 0.0, Limits(concurrency=2, budget_day_usd=1.0))


async def test_a_client_keys_concurrency_counts_requests_on_every_instance(instances: Instances) -> None:
    """Two in flight through A: B refuses a third; one ends on A, and B admits."""
    a, b = await instances()
    now = time.time()
    assert await a.shared.key_admit(KEY, limits.Counters(), "r1", now) is None
    assert await a.shared.key_admit(KEY, limits.Counters(), "r2", now) is None
    refusal = await b.shared.key_admit(KEY, limits.Counters(), "r3", now)
    assert refusal is not None and refusal.limit == "concurrency"
    await a.shared.key_finish(KEY, limits.Counters(), "r1", 10, 0.0, now)
    assert await b.shared.key_admit(KEY, limits.Counters(), "r3", now) is None


async def test_a_client_keys_spend_is_one_budget_across_instances(instances: Instances) -> None:
    """Spend charged on A counts on B: past the daily budget B refuses, and shows the shared spend."""
    a, b = await instances()
    now = time.time()
    assert await a.shared.key_admit(KEY, limits.Counters(), "r1", now) is None
    await a.shared.key_finish(KEY, limits.Counters(), "r1", 1000, 1.25, now)
    counters = await b.shared.key_counters(KEY, None, now)
    assert counters is not None and counters.spent_day == pytest.approx(1.25)
    refusal = await b.shared.key_admit(KEY, limits.Counters(), "r2", now)
    assert refusal is not None and refusal.limit == "budget_day"


async def test_a_refresh_under_way_elsewhere_is_joined_not_repeated(instances: Instances) -> None:
    """B asks while A refreshes an account: B gets A's tokens and never calls the endpoint itself."""
    a, b = await instances()
    cred = Credential("acct", "oauth", "old", refresh_token="r1", expires_at=time.time() + 60)
    calls: list[str] = []
    release = asyncio.Event()

    async def fetch_a() -> Credential:
        calls.append("a")
        await release.wait()
        return Credential("acct", "oauth", "new", refresh_token="r2", expires_at=time.time() + 3600)

    async def fetch_b() -> Credential:
        calls.append("b")
        raise AssertionError("B must not refresh an account A is refreshing")

    first = asyncio.create_task(a.shared.refresh("p", cred, fetch_a))
    await eventually(lambda: calls == ["a"], "A holds the refresh")
    second = asyncio.create_task(b.shared.refresh("p", cred, fetch_b))
    await asyncio.sleep(0.2)
    assert not second.done()  # waiting for A, not calling
    release.set()
    got_a, got_b = await asyncio.gather(first, second)
    assert (got_a.secret, got_b.secret) == ("new", "new") and got_b.refresh_token == "r2"
    assert calls == ["a"]
    # Later asks with the old credential get the shared tokens at once.
    assert (await b.shared.refresh("p", cred, fetch_b)).secret == "new"


async def test_a_circuit_opened_on_one_instance_is_open_on_the_other(instances: Instances) -> None:
    """Two failures open A's circuit for the provider; B skips it too, and both close together."""
    a, b = await instances()
    for _ in range(2):
        a.record_outcome("p", FAIL)
    assert "p" in a.unavailable(time.monotonic())
    await eventually(lambda: "p" in b.unavailable(time.monotonic()), "B's circuit opens")
    breaker = a.breakers.get("p")
    breaker.closed_elsewhere(time.monotonic())  # as if A's probes had gone through
    a.shared.breaker_changed("p", None)
    await eventually(lambda: "p" not in b.unavailable(time.monotonic()), "B's circuit closes")


async def test_what_an_instance_took_alone_is_charged_when_redis_is_back(
    instances: Instances, redis_server: RedisServer
) -> None:
    """rpm 4: A serves 4 while Redis is down; once it is back, B has nothing left to give."""
    a, b = await instances(requests_per_minute=4)
    redis_server.kill()
    for _ in range(4):
        await a.admit_provider("p")  # served locally, and remembered
    assert not backend(a).up and a.shared.problems()
    redis_server.restart()
    await eventually(lambda: backend(a).up and backend(b).up, "both back in sync")
    assert a.shared.problems() == []
    with pytest.raises(RateLimited):
        await b.admit_provider("p")


async def test_an_instance_started_while_redis_is_down_serves_and_joins_when_it_comes(
    instances: Instances, redis_server: RedisServer
) -> None:
    """Redis down at start: the instance starts degraded, serves from its own state, and syncs when Redis is up."""
    redis_server.stop()
    (a,) = await instances(1, requests_per_minute=60)
    assert not backend(a).up
    assert any("unreachable" in p for p in a.shared.problems())
    await a.admit_provider("p")  # served from local state, not refused
    redis_server.restart()
    await eventually(lambda: backend(a).up, "A in sync once Redis is there")
    assert a.shared.problems() == []


async def test_a_burst_on_one_bucket_from_two_instances_takes_exactly_its_tokens(instances: Instances) -> None:
    """50 concurrent requests (25 per instance) against rpm 10: exactly 10 admitted, in batched writes."""
    a, b = await instances(requests_per_minute=10)

    async def admitted(state: State) -> bool:
        try:
            await state.admit_provider("p")
        except RateLimited:
            return False
        return True

    results = await asyncio.gather(*(admitted(s) for s in (a, b) for _ in range(25)))
    assert sum(results) == 10


async def test_an_instance_that_starts_later_knows_the_live_conversations(instances: Instances) -> None:
    """A binding told before an instance started reaches it at start; a lapsed one does not; Redis expires them."""
    (a,) = await instances(1)
    now = time.time()
    a.shared.sticky_bound("p", "live", "key-1")
    await asyncio.sleep(0.1)  # the telling task writes the binding
    ttl = a.pools["p"].sticky.ttl
    key = f"ccproxy:sticky:p:{int(now // ttl)}"
    await backend(a).client.hset(key, "lapsed", orjson.dumps(["key-1", now - 2 * ttl]))
    (late,) = await instances(1)
    assert late.pools["p"].sticky.get("live", time.time()) == "key-1"
    assert late.pools["p"].sticky.get("lapsed", time.time()) is None
    assert 0 < await backend(a).client.ttl(key) <= 2 * ttl + 60  # gone by itself after two periods


async def test_a_clients_bucket_is_shared_without_its_key_in_redis(instances: Instances) -> None:
    """limits.requests_per_minute per client holds across instances; the client's key names no Redis key."""
    a, b = await instances(limits={"requests_per_minute": 2})
    secret = "sk-ant-api03-client-secret-key"
    await a.admit_client(secret)
    await b.admit_client(secret)
    with pytest.raises(RateLimited):
        await a.admit_client(secret)
    await b.admit_client("another-client")  # its own bucket
    names = [k.decode() if isinstance(k, bytes) else k for k in await backend(a).client.keys("*")]
    assert any(n.startswith("ccproxy:bucket:client:") for n in names)
    assert not any("secret" in n or "another" in n for n in names)


async def test_a_stalled_redis_costs_one_timeout_then_requests_go_on_locally(
    instances: Instances, redis_server: RedisServer
) -> None:
    """Redis frozen (SIGSTOP): the request waiting on it is served after the call times out, the
    next ones locally without asking it; thawed, the instance is back in sync, with no connection
    left behind (a leaked one is a ResourceWarning, an error here)."""
    (a,) = await instances(1, requests_per_minute=600)
    assert redis_server.proc is not None
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        await a.admit_provider("p")  # waits for the socket timeout, then decides locally
        assert not backend(a).up and a.shared.problems()
        for _ in range(20):
            await a.admit_provider("p")  # Redis is known to be down: decided here, without asking it
        assert backend(a)._pending_takes["provider:p"] == 21  # each charged to Redis once it is back
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    await eventually(lambda: backend(a).up, "back in sync once Redis thaws")


async def test_garbage_on_the_channel_is_ignored_and_the_listener_keeps_going(instances: Instances) -> None:
    """Foreign or malformed events (not JSON, missing fields, wrong types) change nothing and stop nothing."""
    a, b = await instances()
    for junk in (b"not json", b"[1]", b'{"k": "cred", "p": "p"}', b'{"k": "stick", "p": "p", "s": 1}', b'{"k": 5}'):
        await backend(a).client.publish("ccproxy:events", junk)
    for _ in range(2):
        a.record_outcome("p", FAIL)  # a real event after the junk still arrives
    await eventually(lambda: "p" in b.unavailable(time.monotonic()), "B still hears A")
    assert backend(b).up and not backend(b)._listener.done()  # type: ignore[union-attr]
