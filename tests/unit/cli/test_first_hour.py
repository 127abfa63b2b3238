"""The CLI's pure parts for the first hour: flags as typed, who holds a port, why a provider is unusable."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import orjson
import pytest

from ccproxy_core.cli import auth, ports, provider_problems, reload
from ccproxy_core.cli.main import _global_debug, main
from ccproxy_core.config.model import structure


@pytest.mark.parametrize(
    ("argv", "kept", "debug"),
    [
        (["--debug", "serve"], ["serve"], True),
        (["server", "--port", "1", "--debug"], ["server", "--port", "1"], True),
        (["--debug", "code", "--debug"], ["code", "--debug"], True),  # after `code`: claude's own flag
        (["code", "--debug"], ["code", "--debug"], False),
        (["status"], ["status"], False),
    ],
)
def test_global_debug_is_taken_before_or_after_the_command(argv: list[str], kept: list[str], debug: bool) -> None:
    assert _global_debug(argv) == (kept, debug)


def test_bare_ccproxy_exits_0_with_the_three_ways_on(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "not running" in out and "ccproxy code" in out and "ccproxy start" in out and "ccproxy serve" in out


def test_help_prints_a_commands_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["help", "env"]) == 0
    assert "--config" in capsys.readouterr().out


def test_the_holder_of_a_listening_port_is_found_in_proc() -> None:
    """This process listens on a port: /proc names it, and the message says what to do."""
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc on this platform; the message then leaves the holder out")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        found = ports.from_proc(port)
    assert found is not None and found.pid == os.getpid()
    message = ports.in_use_message("127.0.0.1", port, found)
    assert f"in use by pid {os.getpid()}" in message and "--port" in message
    assert "by pid" not in ports.in_use_message("127.0.0.1", port, None)


def test_reload_restarts_for_code_and_config_only(tmp_path: Path) -> None:
    code = tmp_path / "ccproxy_core"
    config = frozenset({str(tmp_path / "c.json")})
    assert reload.relevant(str(code / "server" / "app.py"), code, config)
    assert reload.relevant(str(tmp_path / "c.json"), code, config)
    assert not reload.relevant(str(code / "__pycache__" / "app.cpython-311.pyc"), code, config)
    assert not reload.relevant(str(tmp_path / "notes.txt"), code, config)


def test_accounts_file_problems_say_what_to_do(tmp_path: Path) -> None:
    """Missing, readable by others, broken, or without a usable account: each named with its file."""
    path = tmp_path / "accounts.json"
    assert (
        "does not exist; add an account with `ccproxy auth import --provider max`"
        in (provider_problems.accounts_problems(path, "max")[0])
    )
    path.write_bytes(
        orjson.dumps({"version": 1, "accounts": {"a": {"accessToken": "t", "refreshToken": "r", "expiresAt": 1}}})
    )
    path.chmod(0o644)
    assert "readable by others (mode 0644)" in provider_problems.accounts_problems(path, "max")[0]
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert provider_problems.accounts_problems(path, "max") == []
    path.write_text('{"version": 1, "accounts": {}}')
    assert "holds no usable account" in provider_problems.accounts_problems(path, "max")[0]
    health = [{"name": "max", "circuit": "open", "credentials": 2, "available": 0, "rate_limited": 2}]
    reasons = provider_problems.problems(health, None)["max"]
    assert any("circuit open" in r for r in reasons) and any("all 2 credentials are rate limited" in r for r in reasons)


def test_auth_commands_use_the_oauth_providers_accounts_path(tmp_path: Path, isolated_home: Path) -> None:
    config = structure(
        {
            "providers": [
                {"name": "api", "kind": "anthropic", "api_key": "k"},
                {"name": "max", "kind": "anthropic", "auth": "oauth", "accounts_path": "~/pool/a.json"},
                {"name": "team", "kind": "anthropic", "auth": "oauth", "accounts_path": str(tmp_path / "t.json")},
            ]
        }
    )
    path, note = auth.accounts_path(None, None, config)
    assert path == isolated_home / "pool" / "a.json" and "--provider" in note
    assert auth.accounts_path(None, "team", config)[0] == tmp_path / "t.json"
    assert auth.accounts_path(str(tmp_path / "x.json"), None, config) == (tmp_path / "x.json", "")
    assert auth.accounts_path(None, None, structure({}))[0] == isolated_home / ".claude" / "accounts.json"
