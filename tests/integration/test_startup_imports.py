"""`ccproxy serve` loads what only some clients use on their first request, not at start (issue 18).

A real `ccproxy serve` (the CLI's own main, its config file, run_app on a real socket) runs in a
subprocess whose helper thread, once `/health` answers, reads the process's `sys.modules`,
makes one request of each lazily loaded kind, and reads them again. The guard holds without a
clock: a module that creeps back into the start path fails the test by name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.redis_server import free_port

ROOT = Path(__file__).parents[2]

# Loaded by the first request of their kind (server/lazy.py, server/sdk_mode.py), or by other commands.
LATER = {
    "responses": [
        "ccproxy_core.server.handlers.responses",
        "ccproxy_core.server.handlers.responses_upstream",
        "ccproxy_core.translate.responses_request",
        "ccproxy_core.translate.responses_stream",
    ],
    "sdk": ["ccproxy_core.server.handlers.sdk", "ccproxy_core.sdk.protocol"],
    "status": ["ccproxy_core.server.handlers.status"],
    "providers": ["ccproxy_core.server.handlers.providers_api", "ccproxy_core.config.persist"],
    "usage": ["ccproxy_core.server.handlers.usage", "ccproxy_core.usage.query"],
    "dashboard": ["ccproxy_core.server.handlers.dashboard"],
}
NEVER_AT_START = [
    "ccproxy_core.server.handlers.responses_translated",  # a `responses` provider's first request
    "ccproxy_core.server.handlers.keys",
    "ccproxy_core.sdk.runner",  # the first SDK-mode turn
    "ccproxy_core.accounts.oauth",  # an OAuth provider's pool
    "tomllib",  # a .toml config
    "ccproxy_core.server.rawlog",  # log.raw_http_dir, a debugging aid
    "ccproxy_core.cli.keys",
    "ccproxy_core.cli.keys_args",  # the parser of `serve` stops at serve
    "ccproxy_core.cli.commands",  # the other commands' functions (cli/parser.py imports them past serve)
    "ccproxy_core.cli.ops_commands",  # service, completion, import (the container guard is serve_cmd's)
    "ccproxy_core.cli.completion",
    "ccproxy_core.cli.service_units",
    "ccproxy_core.cli.ports",  # a port in use
    "ccproxy_core.cli.daemon",
    "ccproxy_core.cli.auth",
    "ccproxy_core.cli.service",
    "ccproxy_core.cli.workers",
    "ccproxy_core.config.starter",
    "sqlite3",  # the ledger's writer opens its file with the first row or /usage read; keys only when a keys file exists
    "watchdog",  # the config files are looked at from the event loop (config/file_watch.py)
    "ctypes",  # only files.py's rename-exchange, where a write needs it
]
REQUESTS = {
    "responses": ("POST", "/v1/responses"),
    "sdk": ("GET", "/claude/v1/models"),
    "status": ("GET", "/status"),
    "providers": ("GET", "/providers"),
    "usage": ("GET", "/usage"),
    "dashboard": ("GET", "/dashboard"),
}

PROBE = """
import http.client, json, os, signal, sys, threading, time
from ccproxy_core.cli.main import main

PORT, OUT, REQUESTS = int(sys.argv[1]), sys.argv[3], json.loads(sys.argv[4])

def call(method, path):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    try:
        conn.request(method, path, body=b"{}" if method == "POST" else None,
                     headers={"content-type": "application/json"})
        return conn.getresponse().status
    finally:
        conn.close()

def probe():
    for _ in range(3000):  # bounded: 30 s at most
        try:
            if call("GET", "/health") == 200:
                break
        except OSError:
            time.sleep(0.01)
    report = {"at_start": sorted(sys.modules), "after": {}}
    for kind, (method, path) in REQUESTS.items():
        report["after"][kind] = [call(method, path), sorted(m for m in sys.modules if m.startswith("ccproxy_core"))]
    with open(OUT, "w") as f:
        json.dump(report, f)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=probe, daemon=True).start()
sys.exit(main(["serve", "--port", sys.argv[1], "--config", sys.argv[2]]))
"""


@pytest.mark.slow
def test_serve_loads_each_rarely_used_surface_on_its_first_request(tmp_path: Path) -> None:
    """At start `serve` holds none of the Responses, SDK-mode, admin, status, usage or dashboard
    modules, nor other commands' modules; each loads when its first request comes, and answers it."""
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "providers": [{"name": "claude", "kind": "anthropic", "api_key": "sk-test"}],
                "usage": {"path": str(tmp_path / "usage.sqlite3")},
            }
        )
    )
    out = tmp_path / "modules.json"
    argv = [str(free_port()), str(config), str(out), json.dumps(REQUESTS)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCPROXY_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, timeout=120
    )
    assert done.returncode == 0
    report = json.loads(out.read_text())
    at_start = set(report["at_start"])
    assert "ccproxy_core.server.app" in at_start
    assert at_start.isdisjoint(NEVER_AT_START), sorted(at_start & set(NEVER_AT_START))
    for kind, modules in LATER.items():
        assert at_start.isdisjoint(modules), (kind, sorted(at_start & set(modules)))
        status, loaded = report["after"][kind]
        assert status < 500, (kind, status)
        assert set(modules) <= set(loaded), (kind, sorted(set(modules) - set(loaded)))
