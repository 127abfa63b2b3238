"""`ccproxy service install [--system] | uninstall | status | run`: the I/O around `service_units`.

Which manager: systemd on Linux (a user unit, or a system unit with --system), launchd on macOS,
Task Scheduler on Windows. `install` pins the config by absolute path, writes the env file
beside it (mode 0600) with the `$VAR` secrets the config names, writes the unit, then enables
and starts it. Where the manager is not running (a container, WSL without systemd, a build
machine) it writes the files all the same and prints the command that starts the service.
`status` says installed / enabled / running. `run` is what the unit executes: it reads the env
file and serves with output in the rotating log that `ccproxy logs` shows.

Every manager call goes through `_call`, so the tests put a stub `systemctl` on PATH and read
what it was asked.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

from attrs import frozen

from ccproxy_core import dirs
from ccproxy_core.cli import service_units as units
from ccproxy_core.files import atomic_write

SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
Say = Callable[[str], None]


class ServiceError(Exception):
    """Installing or querying the service failed for a reason the user can act on."""


@frozen
class Target:
    """Where this machine's service lives and how its manager is driven."""

    manager: str  # "systemd" | "launchd" | "schtasks"
    system: bool
    unit: Path
    home: Path
    user: str

    @property
    def what(self) -> str:
        if self.manager == "systemd":
            return f"systemd {'system' if self.system else 'user'} unit {self.unit}"
        return {"launchd": f"launchd agent {self.unit}", "schtasks": f"scheduled task {units.TASK!r}"}[self.manager]


def manager_for(platform: str) -> str:
    return "launchd" if platform == "darwin" else "schtasks" if platform == "win32" else "systemd"


def manager_running(manager: str) -> bool:
    """Whether the service manager can be asked now (systemd: booted with it, as sd_booted(3) tests)."""
    if manager == "systemd":
        return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None
    return shutil.which("launchctl" if manager == "launchd" else "schtasks") is not None


def _invoking_user(env: Mapping[str, str]) -> tuple[str, Path]:
    """The user a --system unit runs as: who ran sudo, else who runs this."""
    user = env.get("SUDO_USER") or getpass.getuser()
    try:
        import pwd

        return user, Path(pwd.getpwnam(user).pw_dir)
    except (ImportError, KeyError):
        return user, Path.home()


def target(
    *,
    system: bool,
    platform: str = sys.platform,
    env: Mapping[str, str] | None = None,
    system_dir: Path = SYSTEM_UNIT_DIR,
) -> Target:
    env = os.environ if env is None else env
    manager = manager_for(platform)
    if system and manager != "systemd":
        raise ServiceError("--system is for systemd (Linux); launchd agents and scheduled tasks run as you")
    user, home = _invoking_user(env) if system else (getpass.getuser(), Path.home())
    if manager == "systemd":
        config_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        unit = system_dir / units.UNIT if system else config_home / "systemd" / "user" / units.UNIT
    elif manager == "launchd":
        unit = home / "Library" / "LaunchAgents" / f"{units.LABEL}.plist"
    else:
        unit = dirs.config_dir() / f"{units.TASK}-task.xml"
    return Target(manager=manager, system=system, unit=unit, home=home, user=user)


def pin_config(config: str | None) -> Path:
    """The config file the service reads, by absolute path: --config, else the user config."""
    if config:
        path = Path(config).expanduser().resolve()
        if not path.is_file():
            raise ServiceError(f"--config {config}: no such file")
        return path
    from ccproxy_core.config.load import user_config_paths

    for candidate in user_config_paths():
        for path in (candidate, candidate.with_suffix(".toml")):
            if path.is_file():
                return path.resolve()
    raise ServiceError("no config file to pin: run `ccproxy init` first, or pass --config FILE")


def _is_zipapp(argv0: str) -> bool:
    try:
        return bool(argv0) and Path(argv0).is_file() and zipfile.is_zipfile(argv0)
    except OSError:
        return False


def _commands(t: Target, action: str) -> list[list[str]]:
    if t.manager == "systemd":
        return units.systemd_commands(system=t.system, action=action)
    if t.manager == "launchd":
        return units.launchd_commands(os.getuid(), str(t.unit), action=action)
    return units.schtasks_commands(str(t.unit), action=action)


def _call(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"`{' '.join(argv)}` could not run: {exc}") from exc
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ServiceError(
            f"`{' '.join(argv)}` failed (exit {result.returncode})" + (f": {detail[-1]}" if detail else "")
        )
    return result


def _owned_by(path: Path, t: Target) -> None:
    """A --system install run with sudo: the env file belongs to the user the unit runs as."""
    if t.system and os.name == "posix" and os.geteuid() == 0:
        try:
            import pwd

            entry = pwd.getpwnam(t.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        except (KeyError, OSError):
            pass


def write_env_file(config: Path, env: Mapping[str, str], t: Target) -> tuple[Path, list[str]]:
    """The env file beside the config, and the names the config uses that are still unset."""
    path = config.parent / units.ENV_FILE
    from ccproxy_core.config.load import parse_text, read_text

    names = units.referenced_in(parse_text(config, read_text(config)))
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    text = units.env_file(names, env, old)
    atomic_write(path, text.encode(), mode=0o600)
    _owned_by(path, t)
    have = units.parse_env_file(text)
    return path, [n for n in names if n not in have]


def install(
    *,
    system: bool = False,
    config: str | None = None,
    say: Say = print,
    env: Mapping[str, str] | None = None,
    runs: bool | None = None,
    t: Target | None = None,
) -> int:
    env = os.environ if env is None else env
    t = t or target(system=system, env=env)
    pinned = pin_config(config)
    env_path, unset = write_env_file(pinned, env, t)
    executable = sys.executable
    if t.manager == "schtasks" and Path(executable).with_name("pythonw.exe").is_file():
        executable = str(Path(executable).with_name("pythonw.exe"))  # no console window at every logon
    command = units.run_command(
        units.launcher(executable, os.path.abspath(sys.argv[0]), _is_zipapp(sys.argv[0])), str(pinned), str(env_path)
    )
    from ccproxy_core.cli.daemon_log import log_path

    spec = units.ServiceSpec(
        command=command, home=str(t.home), user=t.user, early_log=str(log_path().parent / "launchd.log")
    )
    if t.manager == "systemd":
        data = units.systemd_unit(spec, system=t.system).encode()
    elif t.manager == "launchd":
        data = units.launchd_plist(spec)
    else:
        data = units.task_xml(spec).encode("utf-16")
    try:
        atomic_write(t.unit, data, mode=0o644)
    except PermissionError as exc:
        hint = " (a system unit needs root: `sudo ccproxy service install --system --config FILE`)" if t.system else ""
        raise ServiceError(f"cannot write {t.unit}: {exc.strerror}{hint}") from exc
    say(f"wrote {t.what}\n  config: {pinned}\n  secrets: {env_path}")
    for name in unset:
        say(f"  ${name} is used by the config but not set: add `{name}=...` to {env_path}")
    steps = _commands(t, "install")
    if not (manager_running(t.manager) if runs is None else runs):
        say(
            "the service manager is not running here; start the service with:\n"
            + "\n".join("  " + " ".join(s) for s in steps)
        )
        return 0
    if t.manager == "launchd":
        _call(_commands(t, "uninstall")[0], check=False)  # a reinstall replaces the loaded agent
    for step in steps:
        _call(step)
    say(f"enabled and started; `ccproxy service status` checks it, `ccproxy logs` shows {log_path()}")
    return 0


def uninstall(*, system: bool = False, say: Say = print, runs: bool | None = None, t: Target | None = None) -> int:
    t = t or target(system=system)
    if not t.unit.exists():
        say(f"not installed ({t.unit} does not exist)")
        return 0
    if manager_running(t.manager) if runs is None else runs:
        for step in _commands(t, "uninstall"):
            _call(step, check=False)  # already stopped or never loaded is fine
    else:
        say(
            "the service manager is not running here; stop the service with:\n"
            + "\n".join("  " + " ".join(s) for s in _commands(t, "uninstall"))
        )
    t.unit.unlink()
    if t.manager == "systemd" and (manager_running(t.manager) if runs is None else runs):
        _call(_commands(t, "reload")[0], check=False)
    say(f"removed {t.what}; the config and its env file are kept")
    return 0


def _query(t: Target) -> tuple[str, str]:
    """(enabled, running) as yes / no from the manager."""
    if t.manager == "systemd":
        enabled, active = (_call(c, check=False) for c in _commands(t, "status"))
        return (
            "yes" if enabled.stdout.strip() == "enabled" else "no",
            "yes" if active.stdout.strip() == "active" else "no",
        )
    (query,) = _commands(t, "status")
    result = _call(query, check=False)
    if result.returncode != 0:
        return "no", "no"
    if t.manager == "launchd":
        return "yes", "yes" if re.search(r"^\s*state = running", result.stdout, re.M) else "no"
    disabled = re.search(r"Scheduled Task State:\s*Disabled", result.stdout)
    return ("no" if disabled else "yes"), "yes" if re.search(r"^Status:\s*Running", result.stdout, re.M) else "no"


def status(*, system: bool = False, say: Say = print, runs: bool | None = None, t: Target | None = None) -> int:
    """installed / enabled / running; exit 0 only when it runs (3 otherwise, as LSB status does)."""
    t = t or target(system=system)
    installed = t.unit.exists()
    say(f"{t.what}\n  installed: {'yes' if installed else 'no'}")
    if not installed:
        say("  install it with `ccproxy service install`")
        return 3
    if not (manager_running(t.manager) if runs is None else runs):
        say("  enabled: unknown (the service manager is not running here)\n  running: unknown")
        return 3
    enabled, running = _query(t)
    from ccproxy_core.cli.daemon_log import log_path

    say(f"  enabled: {enabled}\n  running: {running}\n  log: {log_path()} (`ccproxy logs`)")
    return 0 if running == "yes" else 3


def load_env_file(path: Path, environ: dict[str, str] | os._Environ[str]) -> None:
    """The env file's values into the environment: the service's own secrets win over what the
    manager passed (which is nearly nothing)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ServiceError(f"cannot read {path}: {exc.strerror}") from exc
    environ.update(units.parse_env_file(text))


def run(*, config: str, env_file: str | None) -> int:
    """What the unit runs: the env file into the environment, then `serve` into the rotating log."""
    if env_file:
        load_env_file(Path(env_file), os.environ)
    from ccproxy_core.cli.daemon_log import log_path, serve_detached

    return serve_detached([str(log_path()), "serve", "--config", config])
