"""What a client key check costs per request, with 1,000 keys defined (issue 13's target: under 20 µs).

In process, on the server's own code: a request object as aiohttp builds it (mocked, no socket)
carrying one of the keys, then what the server does for it before and after the upstream call:
`client_auth`'s `keyguard.active` and `identify` (keyed hash, lookup, revoked/expired), the `enforce`
admission (`limits.admit`: budgets, concurrency, tpm, rpm), the model-list check, and the
charge when the request ends (`limits.finish`). CPU time per request is measured with
`time.process_time` over many requests, cycling through the keys.

    .venv/bin/python -m bench.keys [--keys 1000] [--requests 50000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from ccproxy_core.config.model import structure
from ccproxy_core.core import limits
from ccproxy_core.keys.model import Limits
from ccproxy_core.keys.store import KeyStore
from ccproxy_core.server.app import create_app
from ccproxy_core.server.keyguard import CLIENT_KEY, CURRENT_KEY, KEYS, KeyGuard, active, check_model, identify


def run(n_keys: int, n_requests: int) -> float:
    """CPU microseconds per request for the whole key check, with `n_keys` keys in the file."""
    with tempfile.TemporaryDirectory() as tmp:
        store = KeyStore(Path(tmp) / "keys.sqlite3")
        now = time.time()
        clears = []
        for i in range(n_keys):
            rich = Limits(
                budget_day_usd=100.0,
                budget_month_usd=1000.0,
                rpm=10**9,
                tpm=10**12,
                concurrency=1000,
                models=("claude-*", "gpt-4.1"),
                expires_at=now + 86400,
            )
            clears.append(store.create(f"user-{i}", rich, now)[1])
        config = structure({"apikey": "admin", "providers": [{"name": "a", "kind": "anthropic", "api_key": "k"}]})
        app = create_app(config)
        guard = app[KEYS]
        guard.store = store
        guard.reload()
        requests = [
            make_mocked_request("POST", "/v1/messages", headers={"x-api-key": clears[i % n_keys]}, app=app)
            for i in range(min(n_requests, 2000))
        ]
        return measure(guard, requests, n_requests)


def measure(guard: KeyGuard, requests: list[web.Request], n_requests: int) -> float:
    """CPU microseconds per request over `n_requests` key checks (identify, admit, model, charge)."""
    started = time.process_time()
    for i in range(n_requests):
        request = requests[i % len(requests)]
        assert active(request)
        assert identify(request) is None
        key = request[CLIENT_KEY]
        counters = guard.counters_of(key.name)
        t = time.time()
        assert limits.admit(key, counters, t) is None
        limits.start(counters)
        token = CURRENT_KEY.set(key)
        check_model("claude-sonnet-4-6")
        CURRENT_KEY.reset(token)
        limits.finish(key, counters, 1000, 0.0001, t)
    return (time.process_time() - started) / n_requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=50_000)
    args = parser.parse_args()
    for n in sorted({10, args.keys}):
        print(f"key check with {n:>5} keys: {run(n, args.requests):6.2f} µs CPU per request (target < 20)")


if __name__ == "__main__":
    main()
