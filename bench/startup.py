"""How long `ccproxy serve` takes to answer its first request, and what it holds in memory.

    python bench/startup.py [--runs N] [--pyz PATH]

Start-up is what a user waits for after `ccproxy start` (and what `ccproxy code` waits for
before Claude Code can talk), so it is measured as the user meets it: from spawning the
installed `ccproxy` entry point (the pip install's console script) to the first `200` from
`GET /health`, with bytecode cached as an install has it, polled over a raw socket every
millisecond so the poller costs next to nothing.
With `--pyz`, the same for the one-file zipapp (run once first, so its extraction is not counted:
that happens once per version). Each run gets its own config file and port; the figure reported
is the range and median of the runs, since a 2-core VM shared with other work is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def serve_command(entry: list[str], port: int, config: str) -> list[str]:
    return [*entry, "serve", "--port", str(port), "--config", config]


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_start(entry: list[str], env: dict[str, str], limit: float = 20.0) -> tuple[float, float, float]:
    """Seconds from spawn to the first 200, the idle RSS (MB) half a second later, and the CPU
    seconds the process used up to that 200: unlike the wall time, barely moved by other work
    on the machine."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(
            json.dumps(
                {
                    "providers": [{"name": "claude", "kind": "anthropic", "api_key": "sk-bench"}],
                    "usage": {"path": str(Path(tmp) / "usage.sqlite3")},
                }
            )
        )
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            serve_command(entry, port, str(config)), env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            while not health_ok(port):
                if proc.poll() is not None:
                    raise RuntimeError(f"ccproxy serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
                if time.perf_counter() - t0 > limit:
                    raise RuntimeError(f"ccproxy serve did not answer within {limit} s")
                time.sleep(0.001)
            elapsed = time.perf_counter() - t0
            cpu = cpu_s(proc.pid)
            time.sleep(0.5)
            rss = rss_kb(proc.pid) / 1024
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
    return elapsed, rss, cpu


def bytecode_env() -> dict[str, str]:
    """The environment of an installed ccproxy: its modules' bytecode cached, as pip leaves it.

    A session with PYTHONDONTWRITEBYTECODE set (CI, sandboxes) would otherwise compile every
    module from source on each start, which no installed copy does; the cache goes to a
    directory of its own, so nothing is written into the source tree."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "ccproxy-bench-pycache")
    return env


def measure(entry: list[str], runs: int, env: dict[str, str] | None = None) -> dict[str, float]:
    env = {**bytecode_env(), **(env or {})}
    one_start(entry, env)  # warm the page cache (and a zipapp's extraction)
    times, rss, cpu = [], [], []
    for _ in range(runs):
        t, r, c = one_start(entry, env)
        times.append(t)
        rss.append(r)
        cpu.append(c)
    return {
        "min_s": min(times),
        "median_s": statistics.median(times),
        "max_s": max(times),
        "idle_rss_mb": statistics.median(rss),
        "cpu_median_s": statistics.median(cpu),
    }


def installed_entry() -> list[str]:
    script = Path(sys.executable).parent / "ccproxy"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ccproxy_core"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pyz", help="also measure this zipapp (build it with `python3 shiv.spec`)")
    args = parser.parse_args()
    rows: list[tuple[str, list[str], dict[str, str]]] = [("pip install", installed_entry(), {})]
    if args.pyz:
        shiv_root = tempfile.mkdtemp(prefix="ccproxy-shiv-")
        rows.append(("pyz", [sys.executable, args.pyz], {"SHIV_ROOT": shiv_root}))
    for label, entry, env in rows:
        m = measure(entry, args.runs, env)
        print(
            f"{label:12} start to first 200: {m['min_s']:.3f}-{m['max_s']:.3f} s (median {m['median_s']:.3f}, "
            f"CPU {m['cpu_median_s']:.3f} s), idle RSS {m['idle_rss_mb']:.1f} MB"
        )


if __name__ == "__main__":
    main()
