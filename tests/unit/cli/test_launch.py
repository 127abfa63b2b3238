"""`ccproxy code` and `ccproxy env`: the variables that send Claude Code to the proxy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ccproxy_core.cli import daemon, launch, pidfile, processes

NASTY = [
    "plain",
    "it's",
    "a'b'c",
    "$HOME",
    "`date`",
    "$(date)",
    "back\\slash",
    "new\nline",
    'dq"',
    "",
    "ü € 😀",
    "tab\there",
    "'",
    "\\'",
]


def test_client_env_without_an_apikey_uses_a_placeholder_token() -> None:
    env = launch.client_env("http://127.0.0.1:3456", "", {})
    assert env.set == {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:3456",
        "ANTHROPIC_AUTH_TOKEN": "ccproxy",
        "API_TIMEOUT_MS": "600000",
        "NO_PROXY": "127.0.0.1",
    }
    assert "ANTHROPIC_API_KEY" not in env.unset, "with no apikey the client's own key may be forwarded"
    assert {"CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"} <= set(env.unset)


def test_a_transparent_proxy_leaves_claude_codes_own_login_alone() -> None:
    """No provider credentials and no apikey: the client's own login must reach the provider."""
    env = launch.client_env("http://127.0.0.1:3456", "", {}, proxy_credentials=False)
    assert "ANTHROPIC_AUTH_TOKEN" not in env.set and "ANTHROPIC_AUTH_TOKEN" not in env.unset
    assert env.set["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:3456"
    assert launch.client_env("http://h:1", "k", {}, proxy_credentials=False).set["ANTHROPIC_AUTH_TOKEN"] == "k"


def test_holds_credentials_looks_at_enabled_providers_keys_and_oauth() -> None:
    from ccproxy_core.config.model import Config, structure

    assert not launch.holds_credentials(Config())  # zero config: transparent
    assert launch.holds_credentials(
        structure(
            {"providers": [{"name": "a", "kind": "openai", "api_base_url": "http://127.0.0.1:9/v1", "api_key": "k"}]}
        )
    )
    assert launch.holds_credentials(structure({"providers": [{"name": "c", "kind": "anthropic", "auth": "oauth"}]}))
    assert not launch.holds_credentials(
        structure(
            {
                "providers": [
                    {
                        "name": "a",
                        "kind": "openai",
                        "api_base_url": "http://127.0.0.1:9/v1",
                        "api_key": "k",
                        "enabled": False,
                    }
                ]
            }
        )
    )


def test_client_env_with_an_apikey_sends_it_and_drops_a_conflicting_api_key() -> None:
    env = launch.client_env("http://127.0.0.1:9", "k3y", {"ANTHROPIC_API_KEY": "sk-real"})
    assert env.set["ANTHROPIC_AUTH_TOKEN"] == "k3y"
    assert "ANTHROPIC_API_KEY" in env.unset
    applied = env.applied_to({"ANTHROPIC_API_KEY": "sk-real", "PATH": "/bin", "CLAUDE_CODE_USE_VERTEX": "1"})
    assert applied["PATH"] == "/bin"
    assert "ANTHROPIC_API_KEY" not in applied
    assert "CLAUDE_CODE_USE_VERTEX" not in applied
    assert applied["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ("", "127.0.0.1"),
        ("example.com", "example.com,127.0.0.1"),
        ("localhost,127.0.0.1", "localhost,127.0.0.1"),
        ("a, 127.0.0.1", "a, 127.0.0.1"),
    ],
)
def test_no_proxy_gains_the_proxy_host_once(existing: str, expected: str) -> None:
    assert launch.client_env("http://127.0.0.1:1", "", {"NO_PROXY": existing}).set["NO_PROXY"] == expected


def test_no_proxy_names_the_configured_host() -> None:
    assert launch.client_env("http://[::1]:1", "", {}).set["NO_PROXY"] == "::1"


@pytest.mark.parametrize("value", NASTY)
def test_sh_quoting_is_literal(value: str) -> None:
    """What `eval` reads back in sh is exactly the value: no expansion, no splitting."""
    out = subprocess.run(
        ["sh", "-c", 'eval "$1"; printf \'%s\' "$X"', "sh", launch.render(launch.ClientEnv({"X": value}, ()), "sh")],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert out.stdout == value


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_quoting_is_literal() -> None:
    for value in NASTY:
        script = launch.render(launch.ClientEnv({"X": value}, ()), "fish")
        out = subprocess.run(
            ["fish", "--no-config", "-c", script + "printf '%s' \"$X\""],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        assert out.stdout == value


def test_fish_and_powershell_syntax() -> None:
    env = launch.ClientEnv({"A": "it's", "B": "c:\\x"}, ("GONE",))
    assert launch.render(env, "fish") == "set -e GONE\nset -gx A 'it\\'s'\nset -gx B 'c:\\\\x'\n"
    assert launch.render(env, "powershell") == (
        "Remove-Item Env:GONE -ErrorAction SilentlyContinue\n$env:A = 'it''s'\n$env:B = 'c:\\x'\n"
    )
    assert launch.quote("a\u2019b", "powershell") == "'a\u2019\u2019b'", "typographic quotes close strings"
    assert launch.render(env, "sh").startswith("unset GONE\nexport A='it'\\''s'\n")


def test_env_prints_the_configured_endpoint_when_no_daemon_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CCPROXY_PORT", "4001")
    monkeypatch.setenv("CCPROXY_API_KEY", "proxy-key")
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert launch.env(shell="sh") == 0
    out = capsys.readouterr().out
    assert "export ANTHROPIC_BASE_URL='http://127.0.0.1:4001'\n" in out
    assert "export ANTHROPIC_AUTH_TOKEN='proxy-key'\n" in out
    assert "unset ANTHROPIC_API_KEY\n" in out


def test_env_prefers_the_running_daemon(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    info = pidfile.PidInfo(1, "0.0.0.0", 5005, "http://127.0.0.1:5005", 0.0, "x", "", "log")
    monkeypatch.setattr(daemon, "running", lambda: info)
    assert launch.env(shell="fish") == 0
    assert "set -gx ANTHROPIC_BASE_URL 'http://127.0.0.1:5005'" in capsys.readouterr().out


class Recorder:
    def __init__(self, code: int = 0) -> None:
        self.code = code
        self.calls: list[tuple[list[str], dict[str, str]]] = []

    def __call__(self, argv: list[str], environ: dict[str, str]) -> int:
        self.calls.append((argv, environ))
        return self.code


def test_code_starts_the_daemon_runs_claude_and_returns_its_status(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(launch.shutil, "which", lambda name: f"/opt/{name}")
    asked: list[Any] = []

    def ensure(host: str | None, port: int | None, config: str | None) -> pidfile.Endpoint:
        asked.append((host, port, config))
        return pidfile.Endpoint("127.0.0.1", 4002, "http://127.0.0.1:4002", 42, started=True)

    monkeypatch.setattr(daemon, "ensure_running", ensure)
    run = Recorder(code=5)
    monkeypatch.setattr(launch, "_run", run)
    config = tmp_path / "c.json"
    config.write_text('{"apikey": "from-file"}')
    assert launch.code(["-p", "hi"], host=None, port=4002, config=str(config)) == 5
    assert asked == [(None, 4002, str(config))]
    ((argv, environ),) = run.calls
    assert argv == ["/opt/claude", "-p", "hi"]
    assert environ["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:4002"
    assert environ["ANTHROPIC_AUTH_TOKEN"] == "from-file"
    assert "started the proxy in the background" in capsys.readouterr().err


def test_code_reports_a_daemon_that_cannot_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(launch.shutil, "which", lambda name: f"/opt/{name}")

    def fail(*_: Any) -> pidfile.Endpoint:
        raise processes.DaemonError("ccproxy did not start: boom")

    monkeypatch.setattr(daemon, "ensure_running", fail)
    monkeypatch.setattr(launch, "_run", Recorder())
    assert launch.code([], host=None, port=None, config=None) == 1
    assert "boom" in capsys.readouterr().err


def test_code_without_claude_exits_127_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(launch.shutil, "which", lambda name: None)
    monkeypatch.setattr(daemon, "ensure_running", lambda *_: pytest.fail("nothing is started without claude"))
    assert launch.code([], host=None, port=None, config=None) == 127
    assert "npm install -g @anthropic-ai/claude-code" in capsys.readouterr().err
