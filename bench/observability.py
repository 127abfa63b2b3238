"""What observability costs: the same load through a proxy with the usage ledger and metrics on, and off.

Called by `bench/overhead.py` after its own rows (same fake provider, same run). Two proxies
are started on the proxy core, one with `usage` and `metrics` enabled (a ledger in a temporary
directory) and one with both disabled; each scenario is driven through them in turns
(off, on, off, on), and the proxy CPU time per request of each is summed over its turns, so a
drift of the machine during the run falls on both alike. The issue's budget: at most 5% more
CPU per request with them on, and an idle RSS under 50 MB.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.overhead import (
    ANTHROPIC_BODY,
    OPENAI_BODY,
    bench_config,
    cpu_seconds,
    drive,
    free_port,
    pin,
    rss_mb,
    wait_ready,
)

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS: list[tuple[str, str, dict[str, Any]]] = [
    ("anthropic JSON passthrough", "/v1/messages", ANTHROPIC_BODY),
    ("anthropic SSE-50 passthrough", "/v1/messages", {**ANTHROPIC_BODY, "stream": True}),
    (
        "anthropic client -> openai SSE-50",
        "/v1/messages",
        {**ANTHROPIC_BODY, "model": "openai,gpt-4.1", "stream": True},
    ),
    (
        "openai client -> anthropic SSE-50",
        "/v1/chat/completions",
        {**OPENAI_BODY, "model": "claude,claude-sonnet-4-5", "stream": True, "stream_options": {"include_usage": True}},
    ),
]
TURNS = 3


def _start(fake_url: str, workdir: Path, on: bool, log_level: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    # The ledgers not beside the configs, whose directory the config watcher watches (see overhead.py).
    config = bench_config(fake_url, str(workdir / "state" / f"usage-{'on' if on else 'off'}.sqlite3"), log_level)
    config["usage"]["enabled"] = on
    config["metrics"] = {"enabled": on}
    path = workdir / f"config-{'on' if on else 'off'}.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ccproxy_core", "serve", "--port", str(port), "--config", str(path)],
        env=env,
        cwd=str(workdir),
    )
    pin(proc.pid, 1)
    return proc, f"http://127.0.0.1:{port}", path


async def overhead_rows(fake_url: str, requests: int, concurrency: list[int], log_level: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ccproxy-bench-") as tmp:
        workdir = Path(tmp)
        procs = {on: _start(fake_url, workdir, on, log_level) for on in (False, True)}
        report: dict[str, Any] = {"rows": []}
        try:
            for _proc, url, _ in procs.values():
                await wait_ready(f"{url}/health")
            await asyncio.sleep(0.5)
            report["idle_rss_mb"] = {("on" if on else "off"): rss_mb(p.pid) for on, (p, _, _) in procs.items()}
            print(
                f"\nledger + metrics: idle RSS on {report['idle_rss_mb']['on']:.1f} MB, "
                f"off {report['idle_rss_mb']['off']:.1f} MB (budget < 50 MB)"
            )
            header = f"{'scenario':38} {'conc':>4} {'CPU ms/req off':>15} {'on':>8} {'on/off':>7}"
            print(header)
            print("-" * len(header))
            for name, path, body in SCENARIOS:
                for conc in concurrency:
                    cpu = {False: 0.0, True: 0.0}
                    for on in (False, True):  # warm both
                        await drive(procs[on][1] + path, body, min(100, requests), conc)
                    for _ in range(TURNS):
                        for on in (False, True):
                            proc, url, _ = procs[on]
                            c0 = cpu_seconds(proc.pid)
                            await drive(url + path, body, requests, conc)
                            cpu[on] += cpu_seconds(proc.pid) - c0
                    off_ms, on_ms = (cpu[x] / (TURNS * requests) * 1000 for x in (False, True))
                    row = {
                        "scenario": name,
                        "concurrency": conc,
                        "cpu_ms_off": off_ms,
                        "cpu_ms_on": on_ms,
                        "ratio": on_ms / off_ms,
                    }
                    report["rows"].append(row)
                    print(f"{name:38} {conc:>4} {off_ms:>15.3f} {on_ms:>8.3f} {row['ratio']:>7.3f}")
            ledger = workdir / "usage-on.sqlite3"
            report["ledger_bytes"] = ledger.stat().st_size if ledger.exists() else 0
            report["in_process"] = in_process_cost()
            cheapest = min(row["cpu_ms_off"] for row in report["rows"]) if report["rows"] else float("nan")
            share = report["in_process"]["us_per_request"] / 1000 / cheapest * 100
            print(
                f"in process: the ledger and metrics add {report['in_process']['us_per_request']:.1f} µs of CPU per "
                f"request, {share:.1f}% of the cheapest row's {cheapest:.3f} ms"
            )
        finally:
            for proc, _, _ in procs.values():
                proc.terminate()
            for proc, _, _ in procs.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return report


def in_process_cost(rounds: int = 20000) -> dict[str, float]:
    """CPU per request of what `usage` and `metrics` add, in this process (the writer thread included).

    The same work the server does when a request ends (a metrics update and a ledger row, plus
    the upstream attempt's counter), timed with `process_time` over many rounds: a figure that
    holds on a busy machine, where the two-proxy comparison above is only as good as the noise.
    """
    import time

    from ccproxy_core.server.metrics import Metrics
    from ccproxy_core.usage.ledger import Ledger
    from ccproxy_core.usage.record import UsageRecord

    def record(i: int) -> UsageRecord:
        return UsageRecord(
            ts=time.time(),
            request_id=f"req_{i:024x}",
            endpoint="/v1/messages",
            model="claude-x",
            route_reason="default",
            provider="claude",
            upstream_model="claude-sonnet-4-5",
            credential="key-1",
            status=200,
            latency_ms=12.5,
            ttfb_ms=3.2,
            input_tokens=1200,
            output_tokens=340,
            cache_read_tokens=5000,
            cache_creation_tokens=800,
            cost_usd=0.0123,
        )

    with tempfile.TemporaryDirectory(prefix="ccproxy-bench-") as tmp:
        metrics = Metrics(lambda: iter(()), lambda: iter(()))
        ledger = Ledger(Path(tmp) / "usage.sqlite3")
        ledger.start()
        headers = {"anthropic-ratelimit-unified-5h-utilization": "0.4"}
        t0 = time.process_time()
        for i in range(rounds):
            rec = record(i)
            metrics.attempt("claude", "key-1", 200)
            metrics.rate_headers("claude", "key-1", headers, time.time())
            metrics.observe(rec)
            ledger.add(rec)
            if i % 1000 == 999:
                ledger.sync()
        ledger.sync()
        on = time.process_time() - t0
        ledger.close()
        t0 = time.process_time()
        for i in range(rounds):
            record(i)
        off = time.process_time() - t0
    return {"us_per_request": (on - off) / rounds * 1e6}
