"""`ccproxy service`: each generated file's content, and install / status / uninstall with a stub manager."""

from __future__ import annotations

import os
import plistlib
import shutil
import stat
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ccproxy_core.cli import serve_cmd, service
from ccproxy_core.cli import service_units as units

SPEC = units.ServiceSpec(
    command=units.run_command(
        [sys.executable, "-m", "ccproxy_core"], "/home/me/my conf/config.json", "/home/me/my conf/ccproxy.env"
    ),
    home="/home/me",
    user="me",
    early_log="/home/me/Library/Logs/ccproxy/launchd.log",
)
TASK_NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}


def test_user_unit_runs_the_pinned_config_and_restarts_on_failure() -> None:
    """The user unit starts `service run` with the absolute config and env file, and restarts on failure."""
    text = units.systemd_unit(SPEC, system=False)
    assert (
        f'ExecStart={sys.executable} -m ccproxy_core service run --config "/home/me/my conf/config.json" '
        '--env-file "/home/me/my conf/ccproxy.env"'
    ) in text
    assert "Restart=on-failure" in text and "RestartSec=5" in text
    assert "WorkingDirectory=/home/me" in text
    assert "WantedBy=default.target" in text
    assert "User=" not in text, "a user unit runs as its user already"
    assert "network-online.target" not in text, "the user manager cannot order against system targets"


def test_system_unit_runs_as_the_invoking_user_from_boot() -> None:
    """With --system the unit names the invoking user and starts with the machine."""
    text = units.systemd_unit(SPEC, system=True)
    assert "User=me" in text and "WantedBy=multi-user.target" in text
    assert "After=network-online.target" in text


def test_execstart_words_keep_percent_and_dollar_literal() -> None:
    """systemd would expand `%h` and `$HOME`: both are doubled, and quotes are escaped."""
    assert units.systemd_quote("/opt/a%b$c") == '"/opt/a%%b$$c"'
    assert units.systemd_quote('say "hi"') == '"say \\"hi\\""'


def test_user_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify --user` accepts the user unit without a warning."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    spec = units.ServiceSpec(
        command=units.run_command(
            [sys.executable, "-m", "ccproxy_core"], str(tmp_path / "config.json"), str(tmp_path / "ccproxy.env")
        ),
        home=str(tmp_path),
    )
    unit = tmp_path / units.UNIT
    unit.write_text(units.systemd_unit(spec, system=False))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--user", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert str(unit) not in result.stderr, result.stderr


def test_launchd_plist_is_a_keepalive_agent() -> None:
    """The plist runs the same argv at load and again only after an unsuccessful exit."""
    plist = plistlib.loads(units.launchd_plist(SPEC))
    assert plist["Label"] == units.LABEL
    assert plist["ProgramArguments"] == list(SPEC.command)
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["WorkingDirectory"] == "/home/me"
    assert plist["StandardErrorPath"] == SPEC.early_log


def test_task_xml_starts_at_logon_and_restarts_on_failure() -> None:
    """The Task Scheduler XML runs at logon, without a time limit, restarting after a failure."""
    root = ET.fromstring(units.task_xml(SPEC).encode("utf-16"))
    assert root.find("t:Triggers/t:LogonTrigger/t:UserId", TASK_NS).text == "me"  # type: ignore[union-attr]
    settings = root.find("t:Settings", TASK_NS)
    assert settings is not None
    assert settings.findtext("t:ExecutionTimeLimit", namespaces=TASK_NS) == "PT0S"
    assert settings.findtext("t:RestartOnFailure/t:Interval", namespaces=TASK_NS) == "PT1M"
    assert settings.findtext("t:MultipleInstancesPolicy", namespaces=TASK_NS) == "IgnoreNew"
    exec_ = root.find("t:Actions/t:Exec", TASK_NS)
    assert exec_ is not None
    assert exec_.findtext("t:Command", namespaces=TASK_NS) == sys.executable
    assert exec_.findtext("t:Arguments", namespaces=TASK_NS) == (
        '-m ccproxy_core service run --config "/home/me/my conf/config.json" --env-file "/home/me/my conf/ccproxy.env"'
    )


def test_referenced_vars_in_order_once_each() -> None:
    """`$VAR`, `${VAR}` and `${VAR:-default}` are found once each; `$$` is a literal dollar."""
    text = '{"a": "$ONE", "b": "${TWO}", "c": "${THREE:-x}", "d": "$$NOT", "e": "$ONE"}'
    assert units.referenced_vars(text) == ["ONE", "TWO", "THREE"]


def test_only_values_count_not_comments() -> None:
    """Variables are looked for in the parsed values, so a `$VAR` in a comment is not one."""
    parsed = {"providers": [{"api_key": "$ONE", "headers": {"x": "${TWO}"}}], "apikey": "$ONE", "port": 1}
    assert units.referenced_in(parsed) == ["ONE", "TWO"]


def test_env_file_keeps_old_values_and_marks_unknown_ones() -> None:
    """Values already in the file win; the shell fills the rest; an unknown one is a line to fill in."""
    text = units.env_file(["A", "B", "C"], {"A": "from-shell", "B": "b-value"}, "A=kept\nOTHER=x\n")
    values = units.parse_env_file(text)
    assert values == {"A": "kept", "OTHER": "x", "B": "b-value"}
    assert "# C=" in text


def test_the_container_guard() -> None:
    """CCPROXY_REQUIRE_APIKEY refuses a non-loopback bind without an apikey, and nothing else."""
    on = {"CCPROXY_REQUIRE_APIKEY": "1"}
    assert serve_cmd.open_bind_refusal("0.0.0.0", "", on) is not None
    assert serve_cmd.open_bind_refusal("0.0.0.0", "k", on) is None
    assert serve_cmd.open_bind_refusal("127.0.0.1", "", on) is None
    assert serve_cmd.open_bind_refusal("0.0.0.0", "", {}) is None


def test_a_zipapp_runs_itself_and_a_package_runs_as_a_module() -> None:
    """An upgrade in place of the zipapp is what the service runs after a restart."""
    assert units.launcher("/usr/bin/python3", "/home/me/.local/bin/ccproxy", True) == [
        "/usr/bin/python3",
        "/home/me/.local/bin/ccproxy",
    ]
    assert units.launcher("/v/bin/python", "/v/bin/ccproxy", False) == ["/v/bin/python", "-m", "ccproxy_core"]


# --- the flow, with a stub systemctl on PATH ----------------------------------------------------

STUB = textwrap.dedent("""\
    #!/bin/sh
    # A stand-in systemctl: records its argv and keeps enabled/active state in files.
    echo "$*" >> "$STUB_DIR/calls"
    unit_state() { [ -e "$STUB_DIR/$1" ]; }
    for last; do :; done
    case "$*" in
        *"enable --now"*) touch "$STUB_DIR/enabled" "$STUB_DIR/active" ;;
        *"disable --now"*) rm -f "$STUB_DIR/enabled" "$STUB_DIR/active" ;;
        *is-enabled*) if unit_state enabled; then echo enabled; else echo disabled; exit 1; fi ;;
        *is-active*) if unit_state active; then echo active; else echo inactive; exit 3; fi ;;
    esac
    exit 0
""")


@pytest.fixture
def stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "stub-bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(STUB)
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STUB_DIR", str(tmp_path))
    return tmp_path


def calls(stub_dir: Path) -> list[str]:
    path = stub_dir / "calls"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def user_config(isolated_home: Path) -> Path:
    from ccproxy_core.config.load import user_config_paths

    path = user_config_paths()[0]
    path.parent.mkdir(parents=True)
    path.write_text(
        '// keys may be written as $VAR\n{"providers": [{"name": "deepseek", "api_key": "$DEEPSEEK_KEY"}], "apikey": "${PROXY_KEY}"}'
    )
    return path


@pytest.mark.slow
def test_install_status_uninstall_with_a_running_manager(stub: Path, user_config: Path, isolated_home: Path) -> None:
    """install writes the unit and env file and enables it; status reads the manager; uninstall undoes it."""
    out: list[str] = []
    env = {**os.environ, "DEEPSEEK_KEY": "sk-deep"}
    t = service.target(system=False, platform="linux", env=env)
    assert t.unit == isolated_home / "xdg_config_home" / "systemd" / "user" / "ccproxy.service"
    assert service.install(env=env, runs=True, t=t, say=out.append) == 0
    unit = t.unit.read_text()
    assert f"--config {user_config}" in unit and f"--env-file {user_config.parent / 'ccproxy.env'}" in unit
    env_file = user_config.parent / "ccproxy.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert units.parse_env_file(env_file.read_text()) == {"DEEPSEEK_KEY": "sk-deep"}
    assert any("$PROXY_KEY is used by the config but not set" in line for line in out)
    assert calls(stub) == ["--user daemon-reload", "--user enable --now ccproxy.service"]

    out.clear()
    assert service.status(runs=True, t=t, say=out.append) == 0
    assert "installed: yes" in out[0] and "enabled: yes\n  running: yes" in out[1]

    assert service.uninstall(runs=True, t=t, say=out.append) == 0
    assert not t.unit.exists() and env_file.exists(), "the secrets the user wrote are kept"
    assert calls(stub)[-2:] == ["--user disable --now ccproxy.service", "--user daemon-reload"]
    out.clear()
    assert service.status(runs=True, t=t, say=out.append) == 3
    assert "installed: no" in out[0]


@pytest.mark.slow
def test_without_a_manager_the_files_are_written_and_the_command_printed(stub: Path, user_config: Path) -> None:
    """No systemd running (a container): the unit is written and the start command printed, not run."""
    out: list[str] = []
    t = service.target(system=False, platform="linux", env=os.environ)
    assert service.install(runs=False, t=t, say=out.append) == 0
    assert t.unit.is_file() and calls(stub) == []
    assert "systemctl --user enable --now ccproxy.service" in out[-1]
    out.clear()
    assert service.status(runs=False, t=t, say=out.append) == 3
    assert "enabled: unknown" in out[1]


@pytest.mark.slow
def test_system_unit_goes_to_the_system_dir_and_runs_as_the_user(stub: Path, user_config: Path, tmp_path: Path) -> None:
    """--system writes a system unit (here into a temp dir) and drives systemctl without --user."""
    t = service.target(system=True, platform="linux", env={**os.environ, "SUDO_USER": ""}, system_dir=tmp_path / "etc")
    assert service.install(system=True, runs=True, t=t, say=lambda _: None) == 0
    assert t.unit == tmp_path / "etc" / "ccproxy.service"
    assert f"User={t.user}" in t.unit.read_text()
    assert calls(stub) == ["daemon-reload", "enable --now ccproxy.service"]


def test_no_config_to_pin_is_one_clear_error(isolated_home: Path) -> None:
    """Without a config file the install says to run `ccproxy init` or pass --config."""
    with pytest.raises(service.ServiceError, match="ccproxy init"):
        service.pin_config(None)


def test_system_is_refused_off_linux() -> None:
    """--system is a systemd notion."""
    with pytest.raises(service.ServiceError, match="systemd"):
        service.target(system=True, platform="darwin")


def test_run_reads_the_env_file_into_the_environment(tmp_path: Path) -> None:
    """The env file's values reach the environment the config is expanded with."""
    path = tmp_path / "ccproxy.env"
    path.write_text("# comment\nDEEPSEEK_KEY=sk-1=2\n")
    environ: dict[str, str] = {"DEEPSEEK_KEY": "old"}
    service.load_env_file(path, environ)
    assert environ == {"DEEPSEEK_KEY": "sk-1=2"}


def test_the_cli_drives_the_same_flow(
    user_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ccproxy service install|status|uninstall` through main(), with no service manager running."""
    from ccproxy_core.cli.main import main

    monkeypatch.setattr(service, "manager_running", lambda manager: False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["service", "install", "--config", str(user_config)]) == 0
    assert "the service manager is not running here" in capsys.readouterr().out
    assert main(["service", "status"]) == 3
    assert "installed: yes" in capsys.readouterr().out
    assert main(["service", "uninstall"]) == 0
    assert main(["service", "status"]) == 3
    assert "installed: no" in capsys.readouterr().out


def test_a_service_error_is_one_line(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing --config is one line on stderr and exit 1, no traceback."""
    from ccproxy_core.cli.main import main

    assert main(["service", "install", "--config", str(isolated_home / "nope.json")]) == 1
    assert capsys.readouterr().err == f"ccproxy: --config {isolated_home / 'nope.json'}: no such file\n"
