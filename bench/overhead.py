"""What the proxy costs: the same load against the fake provider directly and through ccproxy.

    python bench/overhead.py [--requests N] [--concurrency 1,64]

Starts `bench/fake_upstream.py` and `ccproxy serve` as separate processes (the proxy pinned to
one core, the fake and this load client to the other where the machine has two), then drives
a fixed number of requests per scenario with an aiohttp client and prints, per scenario:
requests/s, p50/p99 latency, and the proxy process's CPU time per request, read from
/proc/PID/stat before and after the run. CPU per request is the figure that holds on a noisy
2-core machine; latency is shown for scale. Ratios compare each proxied row with the same load
sent to the fake directly. Passthrough rows also show the floor: `bench/bare_forwarder.py`, an
aiohttp + uvloop forwarder that does nothing else, under the same load. Finally it measures
per-event translation cost in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

ANTHROPIC_BODY = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Say hello " * 20}],
}
OPENAI_BODY = {"model": "gpt-4.1", "max_tokens": 256, "messages": [{"role": "user", "content": "Say hello " * 20}]}

# name, client path, body, stream, provider (None = the fake directly)
SCENARIOS: list[tuple[str, str, dict[str, Any], str]] = [
    ("anthropic JSON passthrough", "/v1/messages", ANTHROPIC_BODY, "claude"),
    ("anthropic SSE-50 passthrough", "/v1/messages", {**ANTHROPIC_BODY, "stream": True}, "claude"),
    ("anthropic client -> openai JSON", "/v1/messages", {**ANTHROPIC_BODY, "model": "openai,gpt-4.1"}, "openai"),
    (
        "anthropic client -> openai SSE-50",
        "/v1/messages",
        {**ANTHROPIC_BODY, "model": "openai,gpt-4.1", "stream": True},
        "openai",
    ),
    (
        "openai client -> anthropic JSON",
        "/v1/chat/completions",
        {**OPENAI_BODY, "model": "claude,claude-sonnet-4-5"},
        "claude",
    ),
    (
        "openai client -> anthropic SSE-50",
        "/v1/chat/completions",
        {**OPENAI_BODY, "model": "claude,claude-sonnet-4-5", "stream": True, "stream_options": {"include_usage": True}},
        "claude",
    ),
]
DIRECT_PATH = {"claude": "/v1/messages", "openai": "/v1/chat/completions"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_ready(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def drive(url: str, body: dict[str, Any], requests: int, concurrency: int) -> tuple[float, list[float]]:
    payload = orjson.dumps(body)
    headers = {"content-type": "application/json", "x-api-key": "bench", "anthropic-version": "2023-06-01"}
    latencies: list[float] = []
    remaining = requests
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                async with session.post(url, data=payload, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{url}: HTTP {r.status}: {(await r.read())[:300]!r}")
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def pin(pid: int, cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, {cpu})


def translation_cost() -> list[tuple[str, float]]:
    """Per-event cost of the two stream translators, in microseconds, in this process."""
    from bench.fake_upstream import ANTHROPIC_SSE, OPENAI_SSE
    from ccproxy_core.core.sse import SSEDecoder, anthropic_event, data_event
    from ccproxy_core.translate.chat_stream import ChatStreamTranslator
    from ccproxy_core.translate.messages_stream import MessagesStreamTranslator
    from ccproxy_core.translate.tool_names import ToolNames

    rounds = 400
    results = []
    t0 = time.perf_counter()
    for _ in range(rounds):
        tr = ChatStreamTranslator(model="claude-sonnet-4-5", names=ToolNames.of(()))
        out = [anthropic_event(n, p) for n, p in tr.start()]
        dec = SSEDecoder()
        for raw in OPENAI_SSE:
            for ev in dec.feed(raw):
                if ev.data == "[DONE]":
                    out += [anthropic_event(n, p) for n, p in tr.finish()]
                else:
                    out += [anthropic_event(n, p) for n, p in tr.feed(orjson.loads(ev.data))]
    results.append(
        (
            "openai chunk -> anthropic events (decode+translate+encode)",
            (time.perf_counter() - t0) / (rounds * len(OPENAI_SSE)) * 1e6,
        )
    )
    t0 = time.perf_counter()
    for _ in range(rounds):
        mt = MessagesStreamTranslator(model="gpt-4.1", include_usage=True, created=1)
        dec = SSEDecoder()
        for raw in ANTHROPIC_SSE:
            for ev in dec.feed(raw):
                [data_event(c) for c in mt.feed(ev.event, orjson.loads(ev.data))]
        mt.finish()
    results.append(
        (
            "anthropic event -> openai chunks (decode+translate+encode)",
            (time.perf_counter() - t0) / (rounds * len(ANTHROPIC_SSE)) * 1e6,
        )
    )
    return results


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    fake_port, proxy_port, bare_port = free_port(), free_port(), free_port()
    fake_url, proxy_url = f"http://127.0.0.1:{fake_port}", f"http://127.0.0.1:{proxy_port}"
    bare_url = f"http://127.0.0.1:{bare_port}"
    ledger_path = os.path.join(tempfile.gettempdir(), f"ccproxy-bench-{proxy_port}.sqlite3")
    config = {
        "providers": [
            {"name": "claude", "kind": "anthropic", "api_base_url": fake_url, "api_key": "sk-bench"},
            {"name": "openai", "kind": "openai", "api_base_url": f"{fake_url}/v1", "api_key": "sk-bench"},
        ],
        "routes": {"default": {"provider": "claude", "model": "claude-sonnet-4-5"}},
        "log": {"level": args.log_level},
        "breaker": {"enabled": False},
        # the ledger is on, as shipped, but never in the user's own state directory
        "usage": {"path": ledger_path},
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
        config_path = f.name
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    fake = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fake_upstream.py"), str(fake_port)], env=env)
    proxy = subprocess.Popen(
        [sys.executable, "-m", "ccproxy_core", "serve", "--port", str(proxy_port), "--config", config_path],
        env=env,
        cwd=tempfile.gettempdir(),
    )
    bare = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bare_forwarder.py"), str(bare_port), fake_url], env=env
    )
    report: dict[str, Any] = {"rows": []}
    try:
        pin(proxy.pid, 1)
        pin(bare.pid, 1)
        pin(fake.pid, 0)
        pin(os.getpid(), 0)
        await wait_ready(f"{fake_url}/v1/messages")
        await wait_ready(f"{proxy_url}/health")
        await wait_ready(f"{bare_url}/health")
        await asyncio.sleep(0.5)
        report["idle_rss_mb"] = rss_mb(proxy.pid)
        print(
            f"proxy idle RSS: {report['idle_rss_mb']:.1f} MB  (python {sys.version.split()[0]}, "
            f"{os.cpu_count()} cores, {args.requests} requests per row)\n"
        )
        header = (
            f"{'scenario':38} {'conc':>4} {'target':>7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'CPU ms/req':>10} {'p50 +ms':>8}"
        )
        print(header)
        print("-" * len(header))
        for name, path, body, provider in SCENARIOS:
            if args.only and args.only not in name:
                continue
            for conc in args.concurrency:
                direct_body = {**body, "model": str(body["model"]).split(",")[-1]}
                direct_body.pop("stream_options", None) if provider == "claude" else None
                await drive(fake_url + DIRECT_PATH[provider], direct_body, min(50, args.requests), conc)  # warm
                d_time, d_lat = await drive(fake_url + DIRECT_PATH[provider], direct_body, args.requests, conc)
                await drive(proxy_url + path, body, min(100, args.requests), conc)  # warm up the proxy
                c0 = cpu_seconds(proxy.pid)
                p_time, p_lat = await drive(proxy_url + path, body, args.requests, conc)
                cpu_ms = (cpu_seconds(proxy.pid) - c0) / args.requests * 1000
                row = {
                    "scenario": name,
                    "concurrency": conc,
                    "direct_rps": args.requests / d_time,
                    "proxy_rps": args.requests / p_time,
                    "direct_p50": pct(d_lat, 0.5),
                    "proxy_p50": pct(p_lat, 0.5),
                    "direct_p99": pct(d_lat, 0.99),
                    "proxy_p99": pct(p_lat, 0.99),
                    "proxy_cpu_ms": cpu_ms,
                }
                report["rows"].append(row)
                print(
                    f"{name:38} {conc:>4} {'direct':>7} {row['direct_rps']:>8.0f} {row['direct_p50']:>7.2f} "
                    f"{row['direct_p99']:>7.2f} {'':>10} {'':>8}"
                )
                print(
                    f"{'':38} {'':>4} {'proxy':>7} {row['proxy_rps']:>8.0f} {row['proxy_p50']:>7.2f} "
                    f"{row['proxy_p99']:>7.2f} {cpu_ms:>10.3f} {row['proxy_p50'] - row['direct_p50']:>8.2f}"
                )
                print(
                    f"{'':38} {'':>4} {'ratio':>7} {row['proxy_rps'] / row['direct_rps']:>8.2f} "
                    f"{row['proxy_p50'] / row['direct_p50']:>7.2f} {row['proxy_p99'] / row['direct_p99']:>7.2f}"
                )
                if path == DIRECT_PATH[provider] and body == direct_body:  # passthrough: the floor applies
                    await drive(bare_url + path, body, min(100, args.requests), conc)
                    b0 = cpu_seconds(bare.pid)
                    f_time, f_lat = await drive(bare_url + path, body, args.requests, conc)
                    floor_cpu = (cpu_seconds(bare.pid) - b0) / args.requests * 1000
                    row.update(floor_rps=args.requests / f_time, floor_p50=pct(f_lat, 0.5), floor_cpu_ms=floor_cpu)
                    print(
                        f"{'':38} {'':>4} {'floor':>7} {row['floor_rps']:>8.0f} {row['floor_p50']:>7.2f} "
                        f"{pct(f_lat, 0.99):>7.2f} {floor_cpu:>10.3f} {row['floor_p50'] - row['direct_p50']:>8.2f}"
                    )
        if not args.only or args.only in "observability":
            from bench import observability

            report["observability"] = await observability.overhead_rows(
                fake_url, args.requests, args.concurrency, args.log_level
            )
    finally:
        for p in (proxy, bare, fake):
            p.terminate()
        for p in (proxy, bare, fake):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        os.unlink(config_path)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(ledger_path + suffix)
    print("\nper-event translation cost (in-process, decode + translate + encode):")
    for label, micros in translation_cost():
        print(f"  {label:62} {micros:6.1f} µs/event")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per scenario row (default 2000)")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 64],
        help="comma-separated concurrency levels (default 1,64)",
    )
    parser.add_argument("--only", default="", help="run only scenarios whose name contains this text")
    parser.add_argument("--log-level", default="warning", help="the proxy's log level (default warning)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
