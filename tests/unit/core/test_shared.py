"""The pure rules instances use to fold in what another instance learned (core/shared.py and friends)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ccproxy_core.core import limits, shared
from ccproxy_core.core import shared_counts as counts
from ccproxy_core.core.breaker import BreakerSettings, CircuitBreaker
from ccproxy_core.core.credential import Credential, CredentialState
from ccproxy_core.core.ratelimit import TokenBucket
from ccproxy_core.core.sticky import StickyTable
from tests.redis_server import free_port

NOW = 1_800_000_000.0
ROOT = Path(__file__).parents[3]


def test_a_cooldown_merges_by_its_later_end() -> None:
    """Another instance's shorter cooldown does not shorten ours; a longer one extends it."""
    st = CredentialState(rate_limited_until=NOW + 60, cooldown_reason="ours")
    assert not shared.merge_entry(st, {"until": NOW + 30, "reason": "theirs"}, NOW)
    assert st.rate_limited_until == NOW + 60
    assert shared.merge_entry(st, {"until": NOW + 90, "reason": "theirs"}, NOW)
    assert (st.rate_limited_until, st.cooldown_reason) == (NOW + 90, "theirs")


def test_a_lapsed_cooldown_from_elsewhere_changes_nothing() -> None:
    """An entry whose cooldown already ended is not applied."""
    st = CredentialState()
    assert not shared.merge_entry(st, {"until": NOW - 1}, NOW)
    assert st.rate_limited_until is None


def test_flags_and_verdicts_are_the_newest_word() -> None:
    """disabled and a rejected key follow the entry; an entry without `auth` brings a rejected key back."""
    st = CredentialState()
    shared.merge_entry(st, {"disabled": True, "auth": True, "failures": 2, "reprobe": NOW + 60, "error": "401"}, NOW)
    assert (st.disabled, st.auth_error, st.auth_failures, st.reprobe_at, st.last_error) == (
        True,
        True,
        2,
        NOW + 60,
        "401",
    )
    shared.merge_entry(st, {}, NOW)
    assert (st.disabled, st.auth_error, st.auth_failures, st.reprobe_at) == (False, False, 0, None)


def test_entry_of_round_trips_through_merge() -> None:
    """What one instance tells is exactly what another ends up holding."""
    told = CredentialState(disabled=True, rate_limited_until=NOW + 5, cooldown_reason="429", auth_error=True)
    told.auth_failures, told.reprobe_at = 1, NOW + 30
    entry = shared.entry_of(told, NOW)
    heard = CredentialState()
    shared.merge_entry(heard, entry, NOW)
    assert shared.entry_of(heard, NOW) == entry


def test_after_an_outage_local_changes_win_but_the_later_cooldown_stays() -> None:
    """merge_entries: this instance's entry over the shared one, keeping the later cooldown end."""
    merged = shared.merge_entries({"disabled": True, "until": NOW + 10}, {"until": NOW + 50, "reason": "r"}, NOW)
    assert merged == {"disabled": True, "until": NOW + 50, "reason": "r"}
    assert shared.merge_entries({"until": NOW + 50}, {"until": NOW + 10}, NOW) == {"until": NOW + 50}


def test_shared_tokens_are_taken_only_when_newer() -> None:
    """Tokens another instance got replace ours only if they differ and expire later."""
    cred = Credential("a", "oauth", "old", refresh_token="r1", expires_at=NOW)
    newer = shared.shared_tokens(cred, {"access": "new", "refresh": "r2", "expires_at": NOW + 3600})
    assert newer is not None and (newer.secret, newer.refresh_token, newer.expires_at) == ("new", "r2", NOW + 3600)
    assert shared.shared_tokens(cred, {"access": "x", "refresh": "r1", "expires_at": NOW + 3600}) is None
    assert shared.shared_tokens(cred, {"access": "x", "refresh": "r0", "expires_at": NOW - 10}) is None
    assert shared.shared_tokens(cred, {"refresh": "r2"}) is None


def test_events_decode_or_are_ignored() -> None:
    """An event round-trips; anything else on the channel is None, never an exception."""
    raw = shared.encode("stick", "me", "anthropic", s="conv", c="key-1")
    assert shared.decode(raw) == {"k": "stick", "from": "me", "p": "anthropic", "s": "conv", "c": "key-1"}
    for junk in (b"", b"not json", b"[1,2]", b'{"k": 1, "p": "x"}', b'{"k": "cred"}'):
        assert shared.decode(junk) is None


def test_a_bucket_state_survives_dump_and_restore() -> None:
    """A token bucket stored and restored decides as if it had never left."""
    bucket = TokenBucket(60, 2)
    assert bucket.dump() is None
    assert bucket.take(0.0) == 0.0
    again = TokenBucket.restore(60, 2, bucket.dump())
    assert again.take(0.0) == 0.0
    assert again.take(0.0) > 0  # the burst of 2 is spent
    assert TokenBucket.restore(60, 2, None).take(0.0) == 0.0


def test_tokens_spent_elsewhere_are_taken_even_below_zero() -> None:
    """take_many charges what an instance took alone; the next request waits until it is paid back."""
    bucket = TokenBucket(60, 2)
    bucket.take_many(5, 0.0)
    assert bucket.take(0.0) == 4.0  # -3 tokens at 1 per second: 4 s to one whole token


def test_a_circuit_opened_elsewhere_opens_here_for_what_remains() -> None:
    """opened_elsewhere opens for the remaining time; closed_elsewhere closes it."""
    breaker = CircuitBreaker(BreakerSettings(open_seconds=30))
    breaker.opened_elsewhere(10.0, 100.0)
    assert breaker.state(100.0) == "open"
    assert breaker.open_for(100.0) == 10.0
    assert breaker.state(110.0) == "half_open"
    breaker.closed_elsewhere(110.0)
    assert breaker.state(110.0) == "closed" and breaker.open_for(110.0) is None


def test_sticky_put_says_when_others_should_hear() -> None:
    """A new or moved binding is news; a repeat is not until half a TTL has passed."""
    table = StickyTable(ttl=100)
    assert table.put("s", "k1", 0.0)
    assert not table.put("s", "k1", 10.0)
    assert table.put("s", "k2", 20.0)
    assert not table.put("s", "k2", 60.0)
    assert table.put("s", "k2", 71.0)
    assert table.get("s", 160.0) == "k2"  # seen at 71: alive for another TTL


def test_a_single_instance_never_imports_the_redis_client() -> None:
    """The memory backend (the default) serves without loading `redis`: idle memory stays as it was."""
    code = (
        "import sys, asyncio\n"
        "from ccproxy_core.config.model import structure\n"
        "from ccproxy_core.server.app import create_app\n"
        "from ccproxy_core.server.state import STATE\n"
        "state = create_app(structure({}))[STATE]\n"
        "async def serve():\n"
        "    await state.start()\n"
        "    await state.close()\n"
        "asyncio.run(serve())\n"
        "print(state.shared.backend, 'redis' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["memory", "False"]


def test_a_stored_bucket_decides_as_the_bucket_in_memory() -> None:
    """bucket_step over stored bytes gives the same waits as one TokenBucket, step for step."""
    memory, stored = TokenBucket(10, 0), None
    for i in range(14):
        now = NOW + i * 0.5
        stored, wait = counts.bucket_step(10, 0, now)(stored)
        assert wait == memory.take(now)
    assert counts.bucket_step(10, 0, NOW + 7, spent=3)(stored)[1] == 0.0  # a charge never waits
    assert counts.bucket_ttl_ms(10, 0) == (10 * 60 / 10 + 60) * 1000


def test_stored_counters_count_flights_and_forget_lost_ones() -> None:
    """counters_step keeps request ids in flight; one older than FLIGHT_MAX_AGE no longer counts."""

    def start(rid: str) -> Callable[[limits.Counters, dict[str, float]], int]:
        def change(c: limits.Counters, flights: dict[str, float]) -> int:
            flights[rid] = NOW
            c.spent_day += 1.5
            return c.in_flight

        return change

    raw, seen = counts.counters_step(start("r1"), NOW)(None)
    raw, seen = counts.counters_step(start("r2"), NOW)(raw)
    assert seen == 1  # r1 was in flight when r2 came
    c, flights = counts.load_counters(raw, NOW + 1)
    assert (c.in_flight, sorted(flights), c.spent_day) == (2, ["r1", "r2"], 3.0)
    c, flights = counts.load_counters(raw, NOW + counts.FLIGHT_MAX_AGE + 1)
    assert (c.in_flight, flights) == (0, {})


def test_the_redis_backend_without_its_client_is_a_configuration_error() -> None:
    """state.backend redis with no `redis` package: exit 2 naming the extra to install, no traceback."""
    code = (
        "import sys\n"
        "sys.modules['redis'] = None\n"
        "from ccproxy_core.cli.main import main\n"
        f"sys.exit(main(['serve', '--port', '{free_port()}']))\n"
    )
    env = {**os.environ, "CCPROXY_REDIS_URL": "redis://127.0.0.1:1/0"}
    env.pop("CCPROXY_CONFIG", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "pip install 'ccproxy[redis]'" in out.stderr and "Traceback" not in out.stderr
