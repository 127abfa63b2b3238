"""One change at a time: two ccproxy builds side by side, under the same load, in the same run.

    python bench/ab.py [--base REV] [--files PATH,...] [--rounds 7] [--requests 1000] [--concurrency 16]
                       [--only TEXT]

A is the code at git revision `--base` (default HEAD, extracted with `git archive` into a
temporary directory, so the working tree and its index are left alone); B is the working tree,
or, with `--files`, the same revision with only those files taken from the working tree (the
change under test alone, when others are editing the same tree).
Both are started as `python -m ccproxy_core serve` with the same config against one fake
provider (`bench/fake_upstream.py`), both pinned to the same core, and driven in alternation,
A then B, round after round; the figure per build is its median CPU time per request over the
rounds (read from /proc/PID/stat). On a noisy shared machine two measurements minutes apart
differ by more than most single changes, so only a comparison made this way says whether a
change helped: run it A/A (no change in the working tree) to see the noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.overhead import SCENARIOS, bench_config, cpu_per_request, free_port, pin, stop, wait_ready  # noqa: E402


def extract(rev: str, into: str) -> None:
    """The package as it is at `rev`, unpacked under `into` (the working tree is not touched)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "ccproxy_core"], check=True, capture_output=True
    ).stdout
    tar_path = os.path.join(into, "a.tar")
    Path(tar_path).write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    os.unlink(tar_path)


def start_proxy(src: str, port: int, config_path: str, cwd: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": src}
    return subprocess.Popen(
        [sys.executable, "-m", "ccproxy_core", "serve", "--port", str(port), "--config", config_path],
        env=env,
        cwd=cwd,
    )


def overlay(base: str, files: list[str]) -> str:
    """A copy of the tree at `base` with `files` taken from the working tree."""
    shutil.copytree(os.path.join(base, "ccproxy_core"), os.path.join(base, "b", "ccproxy_core"))
    for name in files:
        shutil.copy2(ROOT / name, os.path.join(base, "b", name))
    return os.path.join(base, "b")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="ccproxy-ab-")
    extract(args.base, tmp)
    b_src = overlay(tmp, args.files) if args.files else str(ROOT)
    fake_port = free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    ports = {"A": free_port(), "B": free_port()}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    configs = []
    for label in ports:
        # The ledgers not beside the configs, whose directory the config watcher watches (see overhead.py).
        config = bench_config(fake_url, os.path.join(tmp, "state", f"ledger-{label}.sqlite3"))
        path = os.path.join(tmp, f"config-{label}.json")
        Path(path).write_text(json.dumps(config))
        configs.append(path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    fake = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fake_upstream.py"), str(fake_port)], env=env)
    procs["A"] = start_proxy(tmp, ports["A"], configs[0], tmp)
    procs["B"] = start_proxy(b_src, ports["B"], configs[1], tmp)
    results: dict[str, Any] = {}
    try:
        pin(fake.pid, 0)
        pin(os.getpid(), 0)
        for proc in procs.values():
            pin(proc.pid, 1)
        await wait_ready(f"{fake_url}/v1/messages")
        for port in ports.values():
            await wait_ready(f"http://127.0.0.1:{port}/health")
        for name, path, body, _provider in SCENARIOS:
            if args.only and args.only not in name:
                continue
            samples: dict[str, list[float]] = {"A": [], "B": []}
            for _ in range(args.rounds):
                for label in ("A", "B"):
                    url = f"http://127.0.0.1:{ports[label]}{path}"
                    pid = procs[label].pid
                    cpu_ms, _timing = await cpu_per_request(url, body, pid, args.requests, args.concurrency)
                    samples[label].append(cpu_ms)
            a, b = statistics.median(samples["A"]), statistics.median(samples["B"])
            results[name] = {"A": samples["A"], "B": samples["B"], "median_A": a, "median_B": b, "ratio": b / a}
            spread = ", ".join(f"{k} {min(v):.3f}-{max(v):.3f}" for k, v in samples.items())
            print(
                f"{name:38} c={args.concurrency:<3} A {a:.3f} ms  B {b:.3f} ms  B/A {b / a:.3f}  ({spread})",
                flush=True,
            )
    finally:
        stop(*procs.values(), fake)
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD", help="git revision of build A (default HEAD)")
    parser.add_argument(
        "--files",
        type=lambda text: [name for name in text.split(",") if name],
        default=[],
        help="comma-separated paths: B is --base with only these taken from the working tree",
    )
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per scenario (default 7)")
    parser.add_argument("--requests", type=int, default=1000, help="requests per round (default 1000)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent requests (default 16)")
    parser.add_argument("--only", default="JSON passthrough", help="scenarios whose name contains this text")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
