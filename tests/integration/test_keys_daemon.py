"""`ccproxy keys` against a running background server: the change goes through its admin API."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.integration.test_daemon import Sandbox, sandbox  # noqa: F401  (the fixture)

ADMIN = "admin-secret-key-0123456789"


def status_with(url: str, key: str) -> int:
    request = urllib.request.Request(f"{url}/admin/keys", headers={"x-api-key": key})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
def test_keys_commands_go_through_the_running_server(sandbox: Sandbox) -> None:  # noqa: F811
    """create, list, revoke with a daemon running: each holds at the server's next request, no restart."""
    provider = {"name": "anthropic", "kind": "anthropic", "api_base_url": "http://127.0.0.1:9", "api_key": "sk-u-1"}
    config = sandbox.config({"apikey": ADMIN, "providers": [provider]})
    started = sandbox.run("start", "--port", str(sandbox.port), "--config", str(config))
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{sandbox.port}"
    try:
        created = sandbox.run("keys", "create", "alice", "--rpm", "30", "--models", "claude-*")
        assert created.returncode == 0, created.stderr
        assert "writing the keys file" not in created.stderr  # it went through the admin API
        key = next(line for line in created.stdout.splitlines() if line.startswith("ccp-"))
        assert status_with(url, key) == 403  # the server knows the key at once (a client key, not admin)
        assert status_with(url, "ccp-unknown") == 401
        listed = sandbox.run("keys", "list")
        assert "alice" in listed.stdout and "rpm 30" in listed.stdout and key not in listed.stdout
        revoked = sandbox.run("keys", "revoke", "alice")
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        assert status_with(url, key) == 401
    finally:
        assert sandbox.run("stop").returncode == 0
