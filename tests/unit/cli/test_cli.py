"""The command line: one clear line for bad input, help everywhere, and `code` passing flags to claude."""

from __future__ import annotations

import pytest

from ccproxy_core.cli.main import build_parser, main, split_code_args


@pytest.mark.parametrize(
    ("argv", "own", "rest"),
    [
        (["--model", "sonnet"], [], ["--model", "sonnet"]),
        (["-p", "hi"], [], ["-p", "hi"]),
        (["--port", "4000", "--resume"], ["--port", "4000"], ["--resume"]),
        (["--config=x.json", "--", "--port", "9"], ["--config=x.json"], ["--port", "9"]),
        (["--host", "0.0.0.0", "chat", "--config", "c"], ["--host", "0.0.0.0"], ["chat", "--config", "c"]),
        (["-h"], ["-h"], []),
        ([], [], []),
    ],
)
def test_code_keeps_its_own_flags_and_passes_the_rest_to_claude(
    argv: list[str], own: list[str], rest: list[str]
) -> None:
    assert split_code_args(argv) == (own, rest)


def test_code_flags_reach_the_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_code(args: list[str], **kw: object) -> int:
        seen.update(args=args, **kw)
        return 7

    monkeypatch.setattr("ccproxy_core.cli.launch.code", fake_code)
    assert main(["code", "--port", "4000", "--model", "sonnet", "-p", "hi"]) == 7
    assert seen == {"args": ["--model", "sonnet", "-p", "hi"], "host": None, "port": 4000, "config": None, "key": None}


@pytest.mark.parametrize(
    "command",
    ["serve", "start", "stop", "restart", "status", "logs", "code", "env", "init", "auth", "config", "version"],
)
def test_every_command_has_help_with_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and f"ccproxy {command}" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--port", "eighty"], "expected a port number, got 'eighty'"),
        (["serve", "--port", "70000"], "a port is between 1 and 65535"),
        (["serve", "--bogus"], "unrecognized arguments: --bogus"),
        (["stop", "--timeout", "-1"], "cannot be negative"),
        (["env", "--shell", "tcsh"], "invalid choice: 'tcsh'"),
    ],
)
def test_bad_flags_give_one_clear_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_a_bad_config_is_one_clear_error(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "c.json"
    path.write_text('{"prot": 1}')
    assert main(["config", "show", "--config", str(path)]) == 2
    assert f"{path}: prot: unknown key" in capsys.readouterr().err


def test_config_show_masks_secrets_and_names_sources(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "c.json"
    path.write_text(
        '{"apikey": "proxy-secret-value", "providers": [{"name": "o", "kind": "openai", '
        '"api_base_url": "http://127.0.0.1:9/v1", "api_key": "sk-very-secret-key"}]}'
    )
    assert main(["config", "show", "--config", str(path), "--port", "4001"]) == 0
    out = capsys.readouterr().out
    assert "proxy-secret-value" not in out and "sk-very-secret-key" not in out
    assert "port = 4001    # flag --port" in out
    assert f"# {path}" in out and "limits.request_timeout = 600.0    # default" in out


def test_config_show_hides_a_redis_password_of_any_length(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    """state.redis_url keeps its host readable and shows its password as `…`, even a short one."""
    from pathlib import Path

    path = Path(str(tmp_path)) / "c.json"
    path.write_text('{"state": {"backend": "redis", "redis_url": "redis://app:pw7@redis.internal:6379/0"}}')
    assert main(["config", "show", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "pw7" not in out
    assert 'state.redis_url = "redis://app:…@redis.internal:6379/0"' in out


def test_version_names_python_platform_and_build(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    out = capsys.readouterr().out
    assert "Python 3." in out
    assert out.rstrip().endswith(", pure Python)"), out  # the checkout (an editable install is never compiled)


def test_the_parser_builds() -> None:
    assert build_parser().prog == "ccproxy"


def test_auth_failures_are_one_line_not_a_traceback(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    accounts = Path(str(tmp_path)) / "accounts.json"
    assert main(["auth", "import", "--accounts", str(accounts)]) == 1
    assert capsys.readouterr().err.startswith("ccproxy: no Claude Code login at ")
    login = Path(str(tmp_path)) / "credentials.json"
    login.write_text(
        '{"claudeAiOauth": {"accessToken": "sk-ant-oat01-x", "refreshToken": "sk-ant-ort01-y", '
        '"expiresAt": 1895263913000}}'
    )
    assert main(["auth", "import", "--name", "Bad Name!", "--from", str(login), "--accounts", str(accounts)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ccproxy: invalid account name 'Bad Name!'") and "Traceback" not in err
    accounts.write_text("{ broken")
    assert main(["auth", "status", "--accounts", str(accounts)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ccproxy: ") and str(accounts) in err and err[-1] == "\n" and err.count("\n") == 1
