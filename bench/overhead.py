"""What the proxy costs: the same load against the fake provider directly and through ccproxy.

    python bench/overhead.py [--requests N] [--concurrency 1,64] [--rounds N]

Starts `bench/fake_upstream.py` and `ccproxy serve` as separate processes (the proxy pinned to
one core, the fake and this load client to the other where the machine has two), then drives
a fixed number of requests per scenario with an aiohttp client and prints, per scenario:
requests/s, p50/p99 latency, and the proxy process's CPU time per request, read from
/proc/PID/task/*/schedstat before and after the run. CPU per request is the figure that holds on a noisy
2-core machine; latency is shown for scale. With `--rounds N` each row's proxy and floor are
measured N times and the median is shown, with each round's ratio in the summary; within a round
the two are driven in `--slices` alternating turns (A B, B A, ...), so that a drift of the
machine's speed hits both.
Ratios compare each proxied row with the same load sent to the fake directly. Every row also
shows the floor: `bench/bare_forwarder.py`, an aiohttp + uvloop forwarder that does nothing
else, carrying the provider's own answer for that row under the same load, and the proxy's CPU
per request as a multiple of it. The proxy runs from an install (the checkout `pip install`ed
into the run's work directory, or `--compiled`'s build). Before the rows it times `ccproxy serve`
to its first 200 next to the floor's own start (bench/startup.py); after them it measures the
per-event translation cost in-process and the proxy's idle and peak RSS, and prints the rows
against the targets of issue #18 and a one-line verdict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
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
    """The CPU time `pid`'s live threads have run, to the nanosecond (the scheduler's own count in
    /proc/PID/task/*/schedstat). /proc/PID/stat's utime + stime counts in clock ticks, 10 ms: on
    the 0.3-0.6 s a bench round costs, that alone moved a row's ratio by up to ±5 %. A thread that
    ended is not in the sum; the bench's processes keep theirs (loop, ledger writer, executor)."""
    try:
        total = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):  # no schedstat (or the process is gone): the ticks
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


def bench_config(fake_url: str, ledger_path: str, log_level: str = "warning") -> dict[str, Any]:
    """The proxy's config for the bench rows: the fake as an Anthropic and an OpenAI provider, the
    breaker off, and the ledger on, as shipped, but never in the user's own state directory."""
    return {
        "providers": [
            {"name": "claude", "kind": "anthropic", "api_base_url": fake_url, "api_key": "sk-bench"},
            {"name": "openai", "kind": "openai", "api_base_url": f"{fake_url}/v1", "api_key": "sk-bench"},
        ],
        "routes": {"default": {"provider": "claude", "model": "claude-sonnet-4-5"}},
        "log": {"level": log_level},
        "breaker": {"enabled": False},
        "usage": {"path": ledger_path},
    }


def stop(*procs: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate the bench's processes, and kill any that does not end within `timeout`."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()


def compiled_build(target: str) -> Path:
    """ccproxy as `CCPROXY_COMPILE=1 pip install .` builds it (the modules pyproject.toml lists
    under [tool.ccproxy] compiled, as C extensions by mypyc), in `target`: built there when empty
    ("" for a new directory), used as it is when it already holds a build."""
    where = Path(target or tempfile.mkdtemp(prefix="ccproxy-compiled-"))
    if not (where / "ccproxy_core").is_dir():
        print(f"building the compiled modules into {where} (CCPROXY_COMPILE=1 pip install; about a minute)...")
        pip_install(where, compile=True)
    sys.path.insert(0, str(where))  # this process's own measures (per-event cost) import it too
    return where


def pip_install(where: Path, *, compile: bool) -> None:
    """`pip install .` of the checkout into `where`, pure Python or compiled (CCPROXY_COMPILE)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(where), str(ROOT)],
        env={**os.environ, "CCPROXY_COMPILE": "1" if compile else "0"},
        check=True,
    )


def build_label(where: Path | None) -> str:
    """What the proxy under test runs, in the words of its own `ccproxy version` (run as the proxy
    is: from outside the checkout, the build first on its path)."""
    if where is None:
        return "pure Python (the checkout)"
    version = subprocess.run(
        [sys.executable, "-m", "ccproxy_core", "version"],
        cwd=where,
        env=proxy_env(dict(os.environ), where),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return f"{version.strip().rsplit(', ', 1)[-1].rstrip(')')} ({where})"


def compiled_option(parser: argparse.ArgumentParser, help: str) -> None:
    """`--compiled [DIR]`: measure the compiled build (`compiled_build`) instead of the checkout."""
    parser.add_argument("--compiled", nargs="?", const="", metavar="DIR", help=help)


def proxy_env(env: dict[str, str], build: Path | None) -> dict[str, str]:
    """The environment the proxy under test runs in: the checkout's, or the build first on its path."""
    return env if build is None else {**env, "PYTHONPATH": str(build)}


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


# The targets (#18): proxy CPU per request over the floor's, per row kind, at c >= 16.
TARGETS = {
    "anthropic JSON passthrough": 1.3,
    "anthropic SSE-50 passthrough": 1.15,
    "anthropic client -> openai JSON": 1.5,
    "openai client -> anthropic JSON": 1.5,
    "anthropic client -> openai SSE-50": 1.5,
    "openai client -> anthropic SSE-50": 1.5,
}
START_TARGET_S = 0.4
IDLE_RSS_TARGET_MB = 45.0


async def cpu_per_request(url: str, body: dict[str, Any], pid: int, requests: int, conc: int) -> tuple[float, Any]:
    """Warm up, then (CPU ms per request of `pid`, (seconds, latencies)) for `requests` requests."""
    await drive(url, body, min(100, requests), conc)
    c0 = cpu_seconds(pid)
    timing = await drive(url, body, requests, conc)
    return (cpu_seconds(pid) - c0) / requests * 1000, timing


async def interleaved(
    sides: list[tuple[str, dict[str, Any], int]], requests: int, conc: int, slices: int
) -> list[tuple[float, tuple[float, list[float]]]]:
    """Each side's (CPU ms per request, (seconds, latencies)) over `requests` requests, driven in
    `slices` turns that alternate the sides (A B, B A, A B...) after one warm-up each. The VM's
    speed drifts over seconds: sides measured in turns of a fifth of a second each see the same
    drift, where two back-to-back runs of a second each did not (a row's ratio moved by ±20 %)."""
    for url, body, _ in sides:
        await drive(url, body, min(100, requests), conc)
    per = max(1, requests // slices)
    cpu = [0.0] * len(sides)
    seconds = [0.0] * len(sides)
    latencies: list[list[float]] = [[] for _ in sides]
    for turn in range(slices):
        count = per if turn < slices - 1 else requests - per * (slices - 1)
        order = range(len(sides)) if turn % 2 == 0 else reversed(range(len(sides)))
        for i in order:
            url, body, pid = sides[i]
            c0 = cpu_seconds(pid)
            took, lat = await drive(url, body, count, conc)
            cpu[i] += cpu_seconds(pid) - c0
            seconds[i] += took
            latencies[i] += lat
    return [(cpu[i] / requests * 1000, (seconds[i], latencies[i])) for i in range(len(sides))]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def verdict(report: dict[str, Any]) -> str:
    """One line: every target met, or which were missed and by how much, and how many this run
    did not measure (rows left out by --only or --concurrency, start-up by --startup-runs 0)."""
    misses = []
    judged = {(row["scenario"], row["concurrency"]) for row in report["rows"] if row["concurrency"] in (16, 64)}
    unmeasured = sum((name, conc) not in judged for name in TARGETS for conc in (16, 64))
    for row in report["rows"]:
        target = TARGETS.get(row["scenario"])
        if target is not None and row["concurrency"] >= 16 and row["floor_ratio"] > target:
            misses.append(f"{row['scenario']} c={row['concurrency']} {row['floor_ratio']:.2f}x > {target}x")
    startup = report.get("startup", {})
    start, ratio = startup.get("median_s"), startup.get("ratio", {}).get("time")
    unmeasured += start is None
    if start is not None and start > START_TARGET_S:
        against = f" ({ratio:.2f}x the floor's {startup['floor']['median_s']:.3f} s)" if ratio else ""
        misses.append(f"start to first 200 {start:.3f} s > {START_TARGET_S} s{against}")
    if report["idle_rss_mb"] > IDLE_RSS_TARGET_MB:
        rss_ratio = startup.get("ratio", {}).get("rss")
        against = f" ({rss_ratio:.2f}x the floor's at start)" if rss_ratio else ""
        misses.append(f"idle RSS {report['idle_rss_mb']:.1f} MB > {IDLE_RSS_TARGET_MB:.0f} MB{against}")
    left = f" ({unmeasured} target(s) not measured in this run)" if unmeasured else ""
    if not misses:
        return f"verdict: every target of issue #18 {'measured ' if unmeasured else ''}met{left}"
    return f"verdict: {len(misses)} target(s) of issue #18 missed{left}: " + "; ".join(misses)


def summary(report: dict[str, Any]) -> None:
    print("\nproxy CPU per request against the floor (bare aiohttp + uvloop forwarder, same load, same run):")
    print(f"  {'scenario':38} {'conc':>4} {'floor ms':>8} {'proxy ms':>8} {'ratio':>6} {'target':>6}  ratio per round")
    for row in report["rows"]:
        target = TARGETS.get(row["scenario"])
        shown = f"{target:.2f}" if target is not None and row["concurrency"] >= 16 else "-"
        runs = " ".join(f"{r:.2f}" for r in row.get("floor_ratio_runs", ()))
        print(
            f"  {row['scenario']:38} {row['concurrency']:>4} {row['floor_cpu_ms']:>8.3f} {row['proxy_cpu_ms']:>8.3f} "
            f"{row['floor_ratio']:>5.2f}x {shown:>6}  {runs}"
        )


def pure_install(where: Path) -> Path:
    """The checkout as a plain `pip install .` installs it (pure Python), in `where`: the proxy
    under test starts from an install, as a user's does, not from the checkout's editable
    install (whose start took 0.365 s against an install's 0.317 s, in turns, 9 starts each)."""
    print(f"installing the checkout (pure Python) into {where}...")
    pip_install(where, compile=False)
    return where


def measure_startup(args: argparse.Namespace, build: Path, kind: str) -> dict[str, Any]:
    """bench/startup.py's figures for the build under test, next to the floor's. Run before the
    load rows: its first start writes the bytecode and the codegen cache an install has, which
    the load rows' proxy then starts from."""
    from bench import startup

    m = startup.measure([sys.executable, "-m", "ccproxy_core"], args.startup_runs, {"PYTHONPATH": str(build)})
    print(f"start-up (bytecode cached, {args.startup_runs} runs each, in turns with the floor):")
    print("\n".join("  " + line for line in startup.report_lines(kind, m)) + "\n")
    return m


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    fake_port, proxy_port, bare_port = free_port(), free_port(), free_port()
    fake_url, proxy_url = f"http://127.0.0.1:{fake_port}", f"http://127.0.0.1:{proxy_port}"
    bare_url = f"http://127.0.0.1:{bare_port}"
    # The config and the ledger in directories of their own, as an install has them (the config
    # directory and the state directory).
    work = Path(tempfile.mkdtemp(prefix="ccproxy-bench-"))
    (work / "config").mkdir()
    ledger_path = str(work / "state" / "usage.sqlite3")
    config = bench_config(fake_url, ledger_path, args.log_level)
    config_path = str(work / "config" / "config.json")
    Path(config_path).write_text(json.dumps(config))
    from bench.startup import bytecode_env

    # As an install runs: bytecode cached (a session with PYTHONDONTWRITEBYTECODE would compile
    # every module and attrs' generated code at each start, and hold that garbage at idle).
    env = {**bytecode_env(), "PYTHONPATH": str(ROOT)}
    build = compiled_build(args.compiled) if args.compiled is not None else pure_install(work / "install")
    label = build_label(build)
    kind = "pip install" if args.compiled is None else "compiled"
    startup = measure_startup(args, build, kind) if args.startup_runs else None
    fake = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fake_upstream.py"), str(fake_port)], env=env)
    proxy = subprocess.Popen(
        [sys.executable, "-m", "ccproxy_core", "serve", "--port", str(proxy_port), "--config", config_path],
        env=proxy_env(env, build),
        cwd=work,
    )
    bare = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bare_forwarder.py"), str(bare_port), fake_url], env=env
    )
    report: dict[str, Any] = {
        "rows": [],
        "requests": args.requests,
        "python": sys.version.split()[0],
        "build": label,
    }
    if startup is not None:
        report["startup"] = startup
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
            f"{os.cpu_count()} cores, {args.requests} requests per row)\nccproxy under test: {report['build']}\n"
        )
        header = (
            f"{'scenario':38} {'conc':>4} {'target':>7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'CPU ms/req':>10} {'x floor':>7}"
        )
        print(header)
        print("-" * len(header))
        for name, path, body, provider in SCENARIOS:
            if args.only and args.only not in name:
                continue
            for conc in args.concurrency:
                direct_body = {**body, "model": str(body["model"]).split(",")[-1]}
                direct_body.pop("stream_options", None) if provider == "claude" else None
                direct = fake_url + DIRECT_PATH[provider]
                await drive(direct, direct_body, min(50, args.requests), conc)  # warm
                d_time, d_lat = await drive(direct, direct_body, args.requests, conc)
                proxy_runs, floor_runs, ratios = [], [], []
                for _ in range(args.rounds):  # proxy and floor in turns: a drift of the machine hits both
                    # The floor: the bare forwarder carrying the provider's own answer for this row.
                    (cpu_ms, (p_time, p_lat)), (floor_ms, (f_time, f_lat)) = await interleaved(
                        [
                            (proxy_url + path, body, proxy.pid),
                            (bare_url + DIRECT_PATH[provider], direct_body, bare.pid),
                        ],
                        args.requests,
                        conc,
                        args.slices,
                    )
                    proxy_runs.append(cpu_ms)
                    floor_runs.append(floor_ms)
                    ratios.append(cpu_ms / floor_ms if floor_ms else float("inf"))
                cpu_ms, floor_ms = statistics.median(proxy_runs), statistics.median(floor_runs)
                row = {
                    "scenario": name,
                    "concurrency": conc,
                    "direct_rps": args.requests / d_time,
                    "proxy_rps": args.requests / p_time,
                    "floor_rps": args.requests / f_time,
                    "direct_p50": pct(d_lat, 0.5),
                    "proxy_p50": pct(p_lat, 0.5),
                    "floor_p50": pct(f_lat, 0.5),
                    "direct_p99": pct(d_lat, 0.99),
                    "proxy_p99": pct(p_lat, 0.99),
                    "floor_p99": pct(f_lat, 0.99),
                    "proxy_cpu_ms": cpu_ms,
                    "floor_cpu_ms": floor_ms,
                    "floor_ratio": statistics.median(ratios),
                    "proxy_cpu_ms_runs": proxy_runs,
                    "floor_cpu_ms_runs": floor_runs,
                    "floor_ratio_runs": ratios,
                }
                report["rows"].append(row)
                for label, rps, p50, p99, cpu, ratio in (
                    ("direct", row["direct_rps"], row["direct_p50"], row["direct_p99"], "", ""),
                    ("floor", row["floor_rps"], row["floor_p50"], row["floor_p99"], f"{floor_ms:.3f}", ""),
                    ("proxy", row["proxy_rps"], row["proxy_p50"], row["proxy_p99"], f"{cpu_ms:.3f}",
                     f"{row['floor_ratio']:.2f}x"),
                ):  # fmt: skip
                    print(
                        f"{name if label == 'direct' else '':38} {conc if label == 'direct' else '':>4} {label:>7} "
                        f"{rps:>8.0f} {p50:>7.2f} {p99:>7.2f} {cpu:>10} {ratio:>7}"
                    )
        report["peak_rss_mb"] = peak_rss_mb(proxy.pid)
        if not args.skip_observability and (not args.only or args.only in "observability"):
            from bench import observability

            report["observability"] = await observability.overhead_rows(
                fake_url, args.requests, args.concurrency, args.log_level
            )
    finally:
        stop(proxy, bare, fake)
        shutil.rmtree(work, ignore_errors=True)
    print("\nper-event translation cost (in-process, decode + translate + encode):")
    report["translation_us"] = {}
    for label, micros in translation_cost():
        report["translation_us"][label] = micros
        print(f"  {label:62} {micros:6.1f} µs/event")
    floor_rss = report.get("startup", {}).get("floor", {}).get("idle_rss_mb")
    print(
        f"proxy RSS: idle {report['idle_rss_mb']:.1f} MB, peak {report.get('peak_rss_mb', float('nan')):.1f} MB"
        + (f" (the floor idle at start: {floor_rss:.1f} MB)" if floor_rss else "")
    )
    summary(report)
    report["verdict"] = verdict(report)
    print("\n" + report["verdict"])
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per scenario row (default 2000)")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 16, 64],
        help="comma-separated concurrency levels (default 1,16,64)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="times each row's proxy and floor are measured, in turns; the median is reported (default 1)",
    )
    parser.add_argument(
        "--slices",
        type=int,
        default=5,
        help="turns a round's proxy and floor requests are split into, alternating the two (default 5)",
    )
    parser.add_argument("--only", default="", help="run only scenarios whose name contains this text")
    compiled_option(
        parser,
        "measure the compiled build (CCPROXY_COMPILE=1 pip install), made in DIR, or in a new directory "
        "without DIR; a DIR that already holds one is reused (default: the checkout, pure Python)",
    )
    parser.add_argument("--log-level", default="warning", help="the proxy's log level (default warning)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--skip-observability", action="store_true", help="leave out the ledger/metrics on-off rows")
    parser.add_argument(
        "--startup-runs", type=int, default=5, help="times `ccproxy serve` is started and timed (0: skip)"
    )
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
