"""How long `ccproxy serve` takes to answer its first request, and what it holds in memory.

    python bench/startup.py [--runs N] [--pyz PATH]
    python bench/startup.py --base REV [--runs N]     (A/B: the tree at REV against the working tree)

Start-up is what a user waits for after `ccproxy start` (and what `ccproxy code` waits for
before Claude Code can talk), so it is measured as the user meets it: from spawning the
installed `ccproxy` entry point (the pip install's console script) to the first `200` from
`GET /health`, with bytecode cached as an install has it, polled over a raw socket every
millisecond so the poller costs next to nothing.
With `--pyz`, the same for the one-file zipapp (run once first, so its extraction is not counted:
that happens once per version). Each run gets its own config file and port; the figure reported
is the range and median of the runs, since a 2-core VM shared with other work is noisy.

The floor is measured in the same run, in turns with ccproxy so a drift of the machine hits
both: bench/bare_forwarder.py (aiohttp + uvloop and nothing else) started the same way, polled
until it answers anything at all (it answers a GET with 405). What ccproxy spends above it is
its own start-up; the ratios (median ccproxy / median floor) for time, CPU and idle RSS say how
much that is on any machine, where the absolute figures say how fast this one is.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ANY_STATUS = b"HTTP/1.1 "  # the floor answers GET /health with 405: any answer means it is up


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int, status: bytes = b"HTTP/1.1 200") -> bool:
    """`GET /health` is answered with a status line starting with `status`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(status)
    except OSError:
        return False


def health_ok(port: int) -> bool:
    return answers(port)


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


FLOOR = [sys.executable, str(ROOT / "bench" / "bare_forwarder.py")]


def floor_command(port: int) -> list[str]:
    """The bare forwarder on `port`; its upstream is never called (only GETs are sent)."""
    return [*FLOOR, str(port), "http://127.0.0.1:9"]


def one_start(
    entry: list[str] | None, env: dict[str, str], limit: float = 20.0, status: bytes = b"HTTP/1.1 200"
) -> tuple[float, float, float]:
    """Seconds from spawn to the first 200, the idle RSS (MB) half a second later, and the CPU
    seconds the process used up to that 200: unlike the wall time, barely moved by other work
    on the machine. `entry` None: the floor, ready at its first status line of any kind."""
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
        command = floor_command(port) if entry is None else serve_command(entry, port, str(config))
        proc = subprocess.Popen(command, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            while not answers(port, status):
                if proc.poll() is not None:
                    raise RuntimeError(f"{command[:2]} exited: {proc.stderr.read().decode() if proc.stderr else ''}")
                if time.perf_counter() - t0 > limit:
                    raise RuntimeError(f"{command[:2]} did not answer within {limit} s")
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


def summarize(times: list[float], rss: list[float], cpu: list[float]) -> dict[str, Any]:
    return {
        "min_s": min(times),
        "median_s": statistics.median(times),
        "max_s": max(times),
        "idle_rss_mb": statistics.median(rss),
        "cpu_median_s": statistics.median(cpu),
        "cpu_runs": cpu,
    }


def alternate(starts: dict[str, Callable[[], tuple[float, float, float]]], runs: int) -> dict[str, dict[str, Any]]:
    """Each start once to warm the page cache (and a zipapp's extraction), then `runs` rounds of
    all of them in turns, so a drift of the machine hits each alike; the figures of each."""
    for start in starts.values():
        start()
    got: dict[str, tuple[list[float], list[float], list[float]]] = {name: ([], [], []) for name in starts}
    for _ in range(runs):
        for name, start in starts.items():
            for values, value in zip(got[name], start(), strict=True):
                values.append(value)
    return {name: summarize(*values) for name, values in got.items()}


def ratios(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """a's medians over b's: start time, CPU to the first 200 and idle RSS; and the median of each
    round's CPU ratio (`cpu_rounds`: two starts next to each other in time, so the least moved by
    the machine's other work)."""
    return {
        "time": a["median_s"] / b["median_s"],
        "cpu": a["cpu_median_s"] / b["cpu_median_s"],
        "rss": a["idle_rss_mb"] / b["idle_rss_mb"],
        "cpu_rounds": statistics.median(x / y for x, y in zip(a["cpu_runs"], b["cpu_runs"], strict=True) if y),
    }


def measure(entry: list[str], runs: int, env: dict[str, str] | None = None, floor: bool = True) -> dict[str, Any]:
    """ccproxy's start-up figures; with `floor`, the floor's in turns with it, under "floor", and
    the ratios of the medians under "ratio" (time, cpu, rss)."""
    env = {**bytecode_env(), **(env or {})}
    starts = {"ccproxy": lambda: one_start(entry, env)}
    if floor:
        starts["floor"] = lambda: one_start(None, env, status=ANY_STATUS)
    got = alternate(starts, runs)
    result: dict[str, Any] = got["ccproxy"]
    if floor:
        result["floor"] = got["floor"]
        result["ratio"] = ratios(result, got["floor"])
    return result


def compare(base: str, runs: int) -> list[str]:
    """The tree at git revision `base` (A) against the working tree (B), with the floor, in turns:
    on a machine shared with other work, only a comparison made this way says whether one change
    helped. Both run as `python -m ccproxy_core` from their own source directory, each with its
    own user cache directory. CPU is read from /proc in clock ticks (10 ms on Linux), so a
    change smaller than that shows only in the medians of many runs."""
    sys.path.insert(0, str(ROOT))
    from bench.ab import extract

    with tempfile.TemporaryDirectory(prefix="ccproxy-startup-ab-") as tmp, tempfile.TemporaryDirectory() as caches:
        extract(base, tmp)
        # Each side keeps its own codegen cache (cli/codegen_cache.py), as an install of it would:
        # sharing one, two trees whose classes differ would overwrite it in turns and both compile.
        envs = {
            label: {**bytecode_env(), "PYTHONPATH": src, "XDG_CACHE_HOME": os.path.join(caches, label)}
            for label, src in (("A", tmp), ("B", str(ROOT)))
        }
        entry = [sys.executable, "-m", "ccproxy_core"]
        got = alternate(
            {
                "A": lambda: one_start(entry, envs["A"]),
                "B": lambda: one_start(entry, envs["B"]),
                "floor": lambda: one_start(None, envs["B"], status=ANY_STATUS),
            },
            runs,
        )
    r = ratios(got["B"], got["A"])
    return [
        f"{'A ' + base:12} start to first 200: {describe(got['A'])}",
        f"{'B worktree':12} start to first 200: {describe(got['B'])}",
        f"{'floor':12} start to first answer: {describe(got['floor'])}",
        f"{'B/A':12} time {r['time']:.3f}, CPU {r['cpu']:.3f} (by round {r['cpu_rounds']:.3f}), "
        f"idle RSS {r['rss']:.3f}",
    ]


def describe(m: dict[str, Any]) -> str:
    """A measurement's figures on one line."""
    return (
        f"{m['min_s']:.3f}-{m['max_s']:.3f} s (median {m['median_s']:.3f}, "
        f"CPU {m['cpu_median_s']:.3f} s), idle RSS {m['idle_rss_mb']:.1f} MB"
    )


def report_lines(label: str, m: dict[str, Any]) -> list[str]:
    lines = [f"{label:12} start to first 200: {describe(m)}"]
    if "floor" in m:
        r = m["ratio"]
        lines.append(f"{'floor':12} start to first answer: {describe(m['floor'])}")
        lines.append(
            f"{'ratio':12} time {r['time']:.2f}x, CPU {r['cpu']:.2f}x (by round {r['cpu_rounds']:.2f}x), "
            f"idle RSS {r['rss']:.2f}x the floor"
        )
    return lines


def installed_entry() -> list[str]:
    script = Path(sys.executable).parent / "ccproxy"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ccproxy_core"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pyz", help="also measure this zipapp (build it with `python3 shiv.spec`)")
    parser.add_argument("--base", metavar="REV", help="instead: the tree at this git revision against the working tree")
    args = parser.parse_args()
    if args.base:
        print("\n".join(compare(args.base, args.runs)))
        return
    rows: list[tuple[str, list[str], dict[str, str]]] = [("pip install", installed_entry(), {})]
    if args.pyz:
        shiv_root = tempfile.mkdtemp(prefix="ccproxy-shiv-")
        rows.append(("pyz", [sys.executable, args.pyz], {"SHIV_ROOT": shiv_root}))
    for label, entry, env in rows:
        print("\n".join(report_lines(label, measure(entry, args.runs, env))))


if __name__ == "__main__":
    main()
