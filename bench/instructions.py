"""Instructions per request, counted by valgrind: the noise-free twin of bench/overhead.py.

    python bench/instructions.py [--only TEXT] [--requests N] [--concurrency N]

CPU time per request on a shared 2-core VM moves by ±20 % from one round to the next, more than
most single changes move it. The number of user-space instructions a request costs does not: it
runs ccproxy and the floor (`bench/bare_forwarder.py`) under callgrind, warms each, zeroes the
counters (`callgrind_control -z`), drives the same rows as `bench/overhead.py`, and reads the
count back (`callgrind_control -d`). Two runs of one tree agree within 1-2 % on most rows and
up to 6 % on some (a full garbage collection landing inside the counted requests or not): a
change is seen when it moves a row by more than that, or when `--requests` is raised. The
kernel's share (the socket calls, about the same for both) is not counted, so a row's ratio
here is larger than its CPU ratio; what this tool is for is telling whether a change made a
row cheaper.

Needs valgrind (Debian: `apt install valgrind`). Under valgrind Python runs ~50x slower: about
a minute a row at the default 300 requests. Hash randomization is off (PYTHONHASHSEED=0) in both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.overhead import (  # noqa: E402
    DIRECT_PATH,
    SCENARIOS,
    bench_config,
    build_label,
    compiled_build,
    compiled_option,
    drive,
    free_port,
    proxy_env,
    stop,
    wait_ready,
)

READY_TIMEOUT = 180.0  # a Python start under valgrind takes 20-60 s


def callgrind(command: list[str], out_dir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`command` under callgrind; valgrind runs it in its own process, so the pid is the program's.
    It runs in `out_dir`: `python -m` puts its working directory first on sys.path, where a checkout
    would be imported ahead of the build that PYTHONPATH names."""
    return subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.%p", *command],
        env={**env, "PYTHONHASHSEED": "0"},
        cwd=out_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def counted(pid: int, out_dir: Path) -> int:
    """Dump the counters since the last zero and return the instructions they hold."""
    before = set(out_dir.glob(f"cg.{pid}.*"))
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    (dump,) = set(out_dir.glob(f"cg.{pid}.*")) - before
    for line in dump.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"{dump} has no summary line")


async def per_request(pid: int, out_dir: Path, url: str, body: dict[str, object], requests: int, conc: int) -> float:
    await drive(url, body, max(50, requests // 4), conc)  # warm: connections, caches, first-use imports
    await asyncio.to_thread(subprocess.run, ["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
    await drive(url, body, requests, conc)
    return (await asyncio.to_thread(counted, pid, out_dir)) / requests


async def main_async(args: argparse.Namespace) -> list[dict[str, object]]:
    work = Path(tempfile.mkdtemp(prefix="ccproxy-instructions-"))
    (work / "config").mkdir()
    fake_port, proxy_port, bare_port = free_port(), free_port(), free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    config = bench_config(fake_url, str(work / "state" / "usage.sqlite3"))
    config_path = work / "config" / "config.json"
    config_path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    build = compiled_build(args.compiled) if args.compiled is not None else None
    label = build_label(build)
    fake = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fake_upstream.py"), str(fake_port)], env=env)
    proxy = callgrind(
        [sys.executable, "-m", "ccproxy_core", "serve", "--port", str(proxy_port), "--config", str(config_path)],
        work,
        proxy_env(env, build),
    )
    bare = callgrind([sys.executable, str(ROOT / "bench" / "bare_forwarder.py"), str(bare_port), fake_url], work, env)
    rows: list[dict[str, object]] = []
    try:
        await wait_ready(f"{fake_url}/v1/messages")
        print("starting ccproxy and the floor under valgrind (20-60 s)...", flush=True)
        await wait_ready(f"http://127.0.0.1:{proxy_port}/health", READY_TIMEOUT)
        await wait_ready(f"http://127.0.0.1:{bare_port}/health", READY_TIMEOUT)
        print(f"ccproxy under test: {label}")
        print(f"\n{'scenario':38} {'floor Ir/req':>13} {'ccproxy Ir/req':>15} {'ratio':>6}")
        for name, path, body, provider in SCENARIOS:
            if args.only and args.only not in name:
                continue
            direct_body = {**body, "model": str(body["model"]).split(",")[-1]}
            if provider == "claude":
                direct_body.pop("stream_options", None)
            proxy_ir = await per_request(
                proxy.pid, work, f"http://127.0.0.1:{proxy_port}{path}", body, args.requests, args.concurrency
            )
            floor_ir = await per_request(
                bare.pid,
                work,
                f"http://127.0.0.1:{bare_port}{DIRECT_PATH[provider]}",
                direct_body,
                args.requests,
                args.concurrency,
            )
            rows.append({"scenario": name, "floor_ir": floor_ir, "proxy_ir": proxy_ir, "ratio": proxy_ir / floor_ir})
            print(f"{name:38} {floor_ir:>13,.0f} {proxy_ir:>15,.0f} {proxy_ir / floor_ir:>5.2f}x", flush=True)
    finally:
        stop(proxy, bare, fake, timeout=30.0)  # a process under valgrind is slow to end
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests counted per row (default 300)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--only", default="", help="run only scenarios whose name contains this text")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    compiled_option(parser, "count the compiled build (as bench/overhead.py --compiled) instead of the checkout")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("bench/instructions.py needs valgrind and callgrind_control (Debian: apt install valgrind)")
    rows = asyncio.run(main_async(args))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
