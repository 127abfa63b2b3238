"""What sharing state costs, and what a second worker gives (issue 14).

    python bench/shared_state.py [--requests 2000] [--rounds 5] [--concurrency 16] [--skip-workers]

Part 1, CPU per request. Two `ccproxy serve` processes against one fake provider
(`bench/fake_upstream.py`), the same config except `state`: one with the memory backend, one
with the Redis backend on a real redis-server the bench starts (tests/redis_server.py). Both
proxies are pinned to one core, the fake, Redis and the load client to the other; they are
driven in alternation (memory, then redis, round after round) with Anthropic JSON passthrough
at c=16, and each row is the median over the rounds of the proxy's CPU time per request (from
/proc/PID/stat), as bench/ab.py does: on a noisy shared machine only a same-run comparison
means anything. Each backend is measured twice: as is, and with a provider `requests_per_minute`
no bench reaches (every request counted, none refused), because only requests with a limit to
count touch Redis on their way. Every row also shows redis-server's own CPU per request and the
Redis commands per request (INFO stats): 0 means the request never reached Redis.

Part 2, requests per second with 1 and 2 workers: `ccproxy serve` and `ccproxy serve --workers
2`, both on the Redis backend, nothing pinned (the workers need every core), the same load; each
row shows req/s, p50/p99 latency, the CPU per request summed over the supervisor and its
workers, and the CPU per request of the fake provider and the load client. On a 2-core machine
those two share the cores with the workers, so the gain is well below 2x by construction: the
last column says how much of the machine they took.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.overhead import (  # noqa: E402
    ANTHROPIC_BODY,
    cpu_per_request,
    cpu_seconds,
    drive,
    free_port,
    pct,
    pin,
    wait_ready,
)
from tests.redis_server import RedisServer  # noqa: E402


def redis_commands(port: int) -> int:
    """total_commands_processed of the Redis on `port` (INFO stats over a plain socket)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"INFO stats\r\n")
        data = b""
        while b"total_commands_processed:" not in data or not data.endswith(b"\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("total_commands_processed:"):
            return int(line.split(":", 1)[1])
    return 0


def unpin(pid: int) -> None:
    if pid and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(pid, range(os.cpu_count() or 1))


def family_cpu(pid: int) -> float:
    """CPU seconds of `pid` and its children (a supervisor and its workers)."""
    total = cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(cpu_seconds(int(c)) for c in children)


def config_file(
    directory: Path, name: str, fake_url: str, state: dict[str, Any], provider: dict[str, Any] | None = None
) -> str:
    claude = {"name": "claude", "kind": "anthropic", "api_base_url": fake_url, "api_key": "sk-bench"}
    claude.update(provider or {})
    config = {
        "providers": [claude],
        "routes": {"default": {"provider": "claude", "model": "claude-sonnet-4-5"}},
        "log": {"level": "warning"},
        "breaker": {"enabled": False},
        "usage": {"path": str(directory / f"{name}.sqlite3")},  # the ledger on, as shipped, never the user's
        "state": state,
    }
    path = directory / f"{name}.json"
    path.write_text(json.dumps(config))
    return str(path)


def serve(config: str, port: int, cwd: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "ccproxy_core", "serve", "--port", str(port), "--config", config]
    if workers > 1:
        argv += ["--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCPROXY_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=40)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# name -> (state backend, provider settings): each backend with and without a counted limit
# (an rpm no bench reaches: every request is counted, none refused), since only requests with a
# limit to count touch Redis on their way (server/redis_state.py).
LIMIT = {"requests_per_minute": 100_000_000}
ROWS = {
    "memory": ("memory", {}),
    "redis": ("redis", {}),
    "memory, provider rpm": ("memory", LIMIT),
    "redis, provider rpm": ("redis", LIMIT),
}


async def backend_rows(args: argparse.Namespace, tmp: Path, fake_url: str, redis: RedisServer) -> dict[str, Any]:
    body = ANTHROPIC_BODY
    ports = {name: free_port() for name in ROWS}
    procs = {}
    for n, (name, (backend, provider)) in enumerate(ROWS.items()):
        state = {"backend": backend, "redis_url": redis.url} if backend == "redis" else {"backend": backend}
        procs[name] = serve(config_file(tmp, f"row{n}", fake_url, state, provider), ports[name], tmp)
    cpu: dict[str, list[float]] = {name: [] for name in ROWS}
    redis_cpu: dict[str, list[float]] = {name: [] for name in ROWS}
    commands: dict[str, list[float]] = {name: [] for name in ROWS}
    try:
        for name, proc in procs.items():
            pin(proc.pid, 1)
            await wait_ready(f"http://127.0.0.1:{ports[name]}/health")
        assert redis.proc is not None
        pin(redis.proc.pid, 0)
        sent = args.requests + min(100, args.requests)  # cpu_per_request's warm-up reaches Redis too
        for _ in range(args.rounds):
            for name in ROWS:
                url = f"http://127.0.0.1:{ports[name]}/v1/messages"
                r0, k0 = cpu_seconds(redis.proc.pid), redis_commands(redis.port)
                ms, _ = await cpu_per_request(url, body, procs[name].pid, args.requests, args.concurrency)
                cpu[name].append(ms)
                redis_cpu[name].append((cpu_seconds(redis.proc.pid) - r0) / sent * 1000)
                commands[name].append((redis_commands(redis.port) - k0 - 1) / sent)  # less our own INFO
    finally:
        stop(list(procs.values()))
    rows: dict[str, dict[str, Any]] = {
        name: {
            "cpu_ms": statistics.median(cpu[name]),
            "redis_server_ms": statistics.median(redis_cpu[name]),
            "redis_commands_per_request": statistics.median(commands[name]),
            "rounds": cpu[name],
        }
        for name in ROWS
    }
    for plain in ("", ", provider rpm"):
        rows[f"redis{plain}"]["delta_ms"] = rows[f"redis{plain}"]["cpu_ms"] - rows[f"memory{plain}"]["cpu_ms"]
    return rows


async def worker_rows(
    args: argparse.Namespace, tmp: Path, fake_url: str, redis: RedisServer, fake_pid: int
) -> list[dict[str, Any]]:
    """req/s with 1 and 2 workers; beside each, the CPU per request of the proxy (supervisor and
    workers) and of the rest of the bench (fake provider and this load client), which share the cores."""
    body = ANTHROPIC_BODY
    config = config_file(tmp, "workers", fake_url, {"backend": "redis", "redis_url": redis.url})
    rows = []
    for count in (1, 2):
        port = free_port()
        proc = serve(config, port, tmp, workers=count)
        try:
            url = f"http://127.0.0.1:{port}"
            await wait_ready(f"{url}/health")
            if count > 1:
                await asyncio.sleep(3.0)  # every worker bound, not only the first to answer
            await drive(f"{url}/v1/messages", body, min(200, args.requests), args.concurrency)  # warm
            c0, r0 = family_cpu(proc.pid), cpu_seconds(fake_pid) + cpu_seconds(os.getpid())
            seconds, latencies = await drive(f"{url}/v1/messages", body, args.requests * 2, args.concurrency)
            used = family_cpu(proc.pid) - c0
            rest = cpu_seconds(fake_pid) + cpu_seconds(os.getpid()) - r0
        finally:
            stop([proc])
        rows.append(
            {
                "workers": count,
                "rps": len(latencies) / seconds,
                "p50_ms": pct(latencies, 0.5),
                "p99_ms": pct(latencies, 0.99),
                "cpu_ms_per_request": used / len(latencies) * 1000,
                "fake_and_client_cpu_ms_per_request": rest / len(latencies) * 1000,
            }
        )
    return rows


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="ccproxy-bench-shared-"))
    fake_port = free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    fake = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fake_upstream.py"), str(fake_port)], env=env)
    redis = RedisServer(tmp / "redis").start()
    report: dict[str, Any] = {"requests": args.requests, "concurrency": args.concurrency, "cores": os.cpu_count()}
    try:
        pin(fake.pid, 0)
        pin(os.getpid(), 0)
        await wait_ready(f"{fake_url}/v1/messages")
        report["backend"] = await backend_rows(args, tmp, fake_url, redis)
        print(f"JSON passthrough, c={args.concurrency}, {args.requests} requests x {args.rounds} rounds (median)")
        print(f"  {'backend':22} {'proxy CPU ms/req':>16} {'vs memory':>10} {'redis CPU ms/req':>16} {'cmds/req':>8}")
        for name, row in report["backend"].items():
            delta = f"{row['delta_ms']:+.3f}" if "delta_ms" in row else ""
            print(
                f"  {name:22} {row['cpu_ms']:>16.3f} {delta:>10} {row['redis_server_ms']:>16.3f} "
                f"{row['redis_commands_per_request']:>8.2f}"
            )
        print("  (target: the Redis backend costs at most +0.1 ms of proxy CPU per request)")
        if not args.skip_workers:
            for pid in (fake.pid, os.getpid(), redis.proc.pid if redis.proc else 0):
                unpin(pid)  # the workers inherit this process's affinity: every core
            report["workers"] = await worker_rows(args, tmp, fake_url, redis, fake.pid)
            print(f"\nworkers (redis backend, unpinned, c={args.concurrency}, {args.requests * 2} requests)")
            print(f"  {'workers':>7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms/req':>10} {'fake+client':>11}")
            for row in report["workers"]:
                print(
                    f"  {row['workers']:>7} {row['rps']:>8.0f} {row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f} "
                    f"{row['cpu_ms_per_request']:>10.3f} {row['fake_and_client_cpu_ms_per_request']:>11.3f}"
                )
            print(f"  ({os.cpu_count()} cores; 'fake+client': the bench's own CPU per request on the same cores)")
    finally:
        stop([fake])
        redis.stop()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per measured row (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds for the backend rows (default 5)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    parser.add_argument("--skip-workers", action="store_true", help="only the memory/redis CPU rows")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
