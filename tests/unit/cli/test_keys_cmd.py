"""`ccproxy keys`: the file without a server, the admin API with one; the key printed once, alone on its line."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from ccproxy_core.cli import keys as keys_cmd
from ccproxy_core.cli.main import main
from ccproxy_core.config.model import structure
from ccproxy_core.keys.store import KeyStore
from ccproxy_core.server.app import create_app
from ccproxy_core.server.keyguard import KEYS

ADMIN = "admin-secret-key-0123456789"


def test_create_prints_the_key_once_on_its_own_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a server, `keys create` writes the file and prints the key alone on a line; `list` never shows it."""
    argv = ["keys", "create", "alice", "--budget-usd", "day=5", "--rpm", "60", "--models", "claude-*,gpt-4.1"]
    assert main([*argv, "--expires", "30d"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("ccp-")]
    assert len(lines) == 1 and " " not in lines[0]
    clear = lines[0]
    assert KeyStore().index().lookup(clear) is not None
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "alice" in listing and "budget day $5" in listing and clear not in listing and clear[:12] + "…" in listing
    assert main(["keys", "update", "alice", "--rpm", "none", "--providers", "anthropic"]) == 0
    assert "providers anthropic" in capsys.readouterr().out
    assert main(["keys", "revoke", "alice"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["keys", "show", "alice", "--json"]) == 0
    assert '"state": "revoked"' in capsys.readouterr().out


def test_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown key, a duplicate name and a bad flag value each give one line and a failing status."""
    assert main(["keys", "show", "nobody"]) == 1
    assert "no client key named 'nobody'" in capsys.readouterr().err
    assert main(["keys", "create", "bob"]) == 0
    assert main(["keys", "create", "bob"]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["keys", "create", "carol", "--budget-usd", "week=3"]) == 2
    assert "budget-usd" in capsys.readouterr().err


async def test_through_the_admin_api(aiohttp_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """With a server, the command goes through /admin/keys: the server knows the key at once."""
    app = create_app(structure({"apikey": ADMIN, "providers": [{"name": "a", "kind": "anthropic", "api_key": "k"}]}))
    server: TestServer = await aiohttp_server(app)
    api = keys_cmd.Server(str(server.make_url("")), ADMIN)

    def run(action: str, name: str | None, changes: dict[str, Any]) -> int:
        return keys_cmd.run(action, name, changes, as_json=False, server=api, store=KeyStore())

    assert await asyncio.to_thread(run, "create", "alice", {"rpm": "5"}) == 0
    clear = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("ccp-"))
    assert app[KEYS].index.lookup(clear) is not None
    assert await asyncio.to_thread(run, "list", None, {}) == 0
    assert "rpm 5" in capsys.readouterr().out
    bad = keys_cmd.Server(str(server.make_url("")), "wrong")
    code = await asyncio.to_thread(keys_cmd.run, "list", None, {}, as_json=False, server=bad, store=KeyStore())
    assert code == 1 and "refused" in capsys.readouterr().err


def test_env_and_code_take_a_client_key(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`ccproxy env --key KEY` prints it as the client's token; `ccproxy code --key KEY` hands it to the launcher."""
    assert main(["env", "--key", "ccp-test-key-123"]) == 0
    assert "ANTHROPIC_AUTH_TOKEN='ccp-test-key-123'" in capsys.readouterr().out.replace('"', "'")
    seen: dict[str, object] = {}

    def fake_code(args: list[str], **kw: object) -> int:
        seen.update(args=args, **kw)
        return 0

    monkeypatch.setattr("ccproxy_core.cli.launch.code", fake_code)
    assert main(["code", "--key", "ccp-k", "--model", "sonnet"]) == 0
    assert seen["key"] == "ccp-k" and seen["args"] == ["--model", "sonnet"]
