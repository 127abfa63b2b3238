"""What `ccproxy service install` writes, as pure functions of values: no files, no processes.

    systemd_unit(spec, system=)   ~/.config/systemd/user/ccproxy.service, or with --system
                                  /etc/systemd/system/ccproxy.service running as the invoking user
    launchd_plist(spec)           ~/Library/LaunchAgents/<LABEL>.plist
    task_xml(spec)                a Task Scheduler task (schtasks /Create /XML), started at logon
    env_file(names, env, old)     ccproxy.env beside the config: the `$VAR` secrets the config uses
    referenced_vars(text)         which `$VAR` / `${VAR}` a config file names
    launcher(...)                 how to run this same ccproxy again (zipapp or installed package)

Every unit runs `ccproxy service run --config ABS --env-file ABS`: the config is pinned by
absolute path (a service starts in no particular directory), the secrets come from the env file
(a service does not inherit the shell), and the server writes the rotating log that `ccproxy
logs` reads. Each manager restarts the server when it fails, not when it was stopped on purpose.
"""

from __future__ import annotations

import plistlib
import re
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from attrs import frozen

NAME = "ccproxy"
UNIT = f"{NAME}.service"
LABEL = "io.github.ccproxy"
TASK = NAME
ENV_FILE = f"{NAME}.env"
DESCRIPTION = "ccproxy: the proxy between Claude Code / OpenAI clients and LLM providers"
RESTART_SECONDS = 5


@frozen
class ServiceSpec:
    """One installation's facts, all absolute."""

    command: tuple[str, ...]  # argv of `ccproxy service run ...`
    home: str  # the working directory
    user: str = ""  # the account a system unit runs as
    early_log: str = ""  # launchd: where output goes before the server opens its own log


def launcher(executable: str, argv0: str, argv0_is_zipapp: bool) -> list[str]:
    """The argv that runs this ccproxy again: the zipapp file itself (so an upgrade in place is
    what the service runs after a restart), else the installed package with this interpreter."""
    if argv0_is_zipapp:
        return [executable, argv0]
    return [executable, "-m", "ccproxy_core"]


def run_command(base: Sequence[str], config: str, env_file: str) -> tuple[str, ...]:
    return (*base, "service", "run", "--config", config, "--env-file", env_file)


# --- systemd ------------------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def systemd_quote(arg: str) -> str:
    """One ExecStart word: quoted when it needs it; `%` and `$` doubled so systemd keeps them literal."""
    word = arg if _PLAIN.fullmatch(arg) else '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word.replace("%", "%%").replace("$", "$$")


def systemd_unit(spec: ServiceSpec, *, system: bool) -> str:
    """A systemd unit: a user unit started with the user's manager, or (system) a unit that runs
    as `spec.user` from boot."""
    exec_start = " ".join(systemd_quote(a) for a in spec.command)
    lines = [
        "# Written by `ccproxy service install`; `ccproxy service uninstall` removes it.",
        "[Unit]",
        f"Description={DESCRIPTION}",
        "Documentation=https://github.com/ccproxy/ccproxy#run-it-as-a-service",
    ]
    if system:
        lines += ["After=network-online.target", "Wants=network-online.target"]
    lines += [
        # A crash loop stops after 5 tries in 2 minutes instead of spinning for ever.
        "StartLimitIntervalSec=120",
        "StartLimitBurst=5",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={exec_start}",
        f"WorkingDirectory={systemd_quote(spec.home)}",
        "Restart=on-failure",
        f"RestartSec={RESTART_SECONDS}",
        # `ccproxy stop` semantics: SIGTERM lets streams in flight finish before the exit.
        "KillSignal=SIGTERM",
        "TimeoutStopSec=30",
    ]
    if system:
        lines += [f"User={spec.user}", "NoNewPrivileges=yes"]
    lines += ["", "[Install]", f"WantedBy={'multi-user.target' if system else 'default.target'}", ""]
    return "\n".join(lines)


def systemd_commands(*, system: bool, action: str) -> list[list[str]]:
    """The systemctl calls for install / uninstall / the status queries."""
    ctl = ["systemctl"] if system else ["systemctl", "--user"]
    if action == "install":
        return [[*ctl, "daemon-reload"], [*ctl, "enable", "--now", UNIT]]
    if action == "restart":
        return [[*ctl, "restart", UNIT]]
    if action == "uninstall":
        return [[*ctl, "disable", "--now", UNIT]]
    if action == "reload":
        return [[*ctl, "daemon-reload"]]
    return [[*ctl, "is-enabled", UNIT], [*ctl, "is-active", UNIT]]


# --- launchd ------------------------------------------------------------------------------------


def launchd_plist(spec: ServiceSpec) -> bytes:
    """A launchd agent: started at login and now, kept alive only after a failed exit."""
    plist = {
        "Label": LABEL,
        "ProgramArguments": list(spec.command),
        "WorkingDirectory": spec.home,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": RESTART_SECONDS,
        "ProcessType": "Background",
        # The server opens its own rotating log; these catch what fails before it can.
        "StandardOutPath": spec.early_log,
        "StandardErrorPath": spec.early_log,
    }
    return plistlib.dumps(plist, sort_keys=False)


def launchd_commands(uid: int, plist_path: str, *, action: str) -> list[list[str]]:
    domain = f"gui/{uid}"
    if action == "install":
        return [["launchctl", "bootstrap", domain, plist_path]]
    if action == "restart":
        return [["launchctl", "kickstart", "-k", f"{domain}/{LABEL}"]]
    if action == "uninstall":
        return [["launchctl", "bootout", f"{domain}/{LABEL}"]]
    return [["launchctl", "print", f"{domain}/{LABEL}"]]


# --- Windows Task Scheduler ---------------------------------------------------------------------


def task_xml(spec: ServiceSpec) -> str:
    """A Task Scheduler task (schema 1.2): at the user's logon, no time limit, restarted every
    minute after a failure (the scheduler's shortest interval), never two at once."""
    command, *args = spec.command
    user = escape(spec.user)
    return f"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>{escape(DESCRIPTION)}</Description>
    <URI>\\{TASK}</URI>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger>
      <Enabled>true</Enabled>
      <UserId>{user}</UserId>
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>{user}</UserId>
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>999</Count>
    </RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{escape(command)}</Command>
      <Arguments>{escape(subprocess.list2cmdline(args))}</Arguments>
      <WorkingDirectory>{escape(spec.home)}</WorkingDirectory>
    </Exec>
  </Actions>
</Task>
"""


def schtasks_commands(xml_path: str, *, action: str) -> list[list[str]]:
    if action == "install":
        return [["schtasks", "/Create", "/TN", TASK, "/XML", xml_path, "/F"], ["schtasks", "/Run", "/TN", TASK]]
    if action == "restart":
        return [["schtasks", "/End", "/TN", TASK], ["schtasks", "/Run", "/TN", TASK]]
    if action == "uninstall":
        return [["schtasks", "/End", "/TN", TASK], ["schtasks", "/Delete", "/TN", TASK, "/F"]]
    return [["schtasks", "/Query", "/TN", TASK, "/FO", "LIST", "/V"]]


# --- the env file -------------------------------------------------------------------------------

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def referenced_vars(text: str) -> list[str]:
    """The environment variables a config file names as `$VAR` or `${VAR}`, in order, once each."""
    seen: dict[str, None] = {}
    for match in _VAR.finditer(text):
        name = match.group(1) or match.group(2)
        if name:
            seen.setdefault(name)
    return list(seen)


def referenced_in(value: Any) -> list[str]:
    """`referenced_vars` over every string value of a parsed config (comments never count)."""
    if isinstance(value, str):
        return referenced_vars(value)
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else ()
    return list(dict.fromkeys(name for item in items for name in referenced_in(item)))


def parse_env_file(text: str) -> dict[str, str]:
    """`NAME=value` lines (no quoting: the value is everything after the first `=`); `#` comments."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        name = name.removeprefix("export ").strip()
        if name:
            out[name] = value
    return out


def env_file(names: Sequence[str], env: Mapping[str, str], old_text: str = "") -> str:
    """The env file's text: values it already has are kept, the config's other variables are
    taken from `env` (the installing shell), and any still unknown is left as a line to fill in."""
    old = parse_env_file(old_text)
    lines = [
        "# Secrets for the ccproxy service: NAME=value, one a line, no quotes. The config names",
        "# them as $NAME; a service does not see your shell's variables, so they live here.",
        "# Written by `ccproxy service install` (mode 0600); edit, then restart the service.",
    ]
    for name in dict.fromkeys([*old, *names]):
        value = old.get(name, env.get(name))
        lines.append(f"{name}={value}" if value is not None else f"# {name}=   (not set when installed: fill it in)")
    return "\n".join(lines) + "\n"
