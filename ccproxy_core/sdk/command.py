"""The command line and environment of one Claude Code process: where SDK mode's safety lives.

Safe by default, because a remote client must not get a shell on the proxy's machine by
accident:

- no built-in tool at all (`--tools ""`) unless `sdk.allowed_tools` lists some; the listed
  ones are offered and run without a prompt (`--allowedTools`), and anything else that would
  ask for permission is refused (`--permission-prompts none`);
- the user's own settings, hooks, slash commands and MCP servers stay off
  (`--setting-sources ""`, `--strict-mcp-config`, `--disable-slash-commands`) unless
  `sdk.user_settings` is true; `sdk.mcp_servers` are the only MCP servers otherwise;
- an `ANTHROPIC_BASE_URL` that points back at ccproxy itself is dropped, so the CLI cannot
  loop into the proxy that runs it.

Pure: takes values, returns lists and dicts; the runner does the spawning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
from attrs import frozen

BASE_URL_VAR = "ANTHROPIC_BASE_URL"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""})
_TOOL_NAME = re.compile(r"^\s*([A-Za-z0-9_\-]+)")


@frozen
class CliOptions:
    """The settings a process is started with (`SdkConfig` narrowed to what the CLI needs)."""

    allowed_tools: tuple[str, ...] = ()
    user_settings: bool = False
    mcp_servers: Mapping[str, Any] = {}


@frozen
class Launch:
    """What one process runs as: its model, system prompt addition and CLI session."""

    model: str | None = None  # None: the CLI's own default
    system: str = ""
    session_uuid: str | None = None  # None: a stateless run, nothing kept on disk
    resume: bool = False  # continue the session's transcript (else start it)


def tool_names(allowed: tuple[str, ...]) -> list[str]:
    """`Bash(git *)` allows some Bash commands; the tool to offer is still `Bash`."""
    names: list[str] = []
    for entry in allowed:
        m = _TOOL_NAME.match(entry)
        if m and not m.group(1).startswith("mcp__") and m.group(1) not in names:
            names.append(m.group(1))
    return names


def cli_args(cli: str, options: CliOptions, launch: Launch) -> list[str]:
    """The argv of a stream-json Claude Code process."""
    args = [
        cli,
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--include-partial-messages",
        "--permission-prompts",
        "none",
        "--tools",
        ",".join(tool_names(options.allowed_tools)),
    ]
    if options.allowed_tools:
        args += ["--allowedTools", ",".join(options.allowed_tools)]
    if not options.user_settings:
        args += ["--setting-sources", "", "--strict-mcp-config", "--disable-slash-commands"]
    if options.mcp_servers:
        args += ["--mcp-config", orjson.dumps({"mcpServers": dict(options.mcp_servers)}).decode()]
    if launch.model:
        args += ["--model", launch.model]
    if launch.system:
        args += ["--append-system-prompt", launch.system]
    if launch.session_uuid is None:
        args.append("--no-session-persistence")
    elif launch.resume:
        args += ["--resume", launch.session_uuid]
    else:
        args += ["--session-id", launch.session_uuid]
    return args


def points_at(url: str, host: str, port: int) -> bool:
    """Whether `url` reaches the server listening on host:port (loopback names are one host)."""
    try:
        parts = urlsplit(url.strip())
        url_port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    url_host = (parts.hostname or "").lower()
    same_host = url_host == host.lower() or (url_host in LOOPBACK_NAMES and host.lower() in LOOPBACK_NAMES)
    return same_host and url_port == port


def cli_env(base: Mapping[str, str], extra: Mapping[str, str], *, proxy_host: str, proxy_port: int) -> dict[str, str]:
    """The proxy's environment plus `sdk.env`, without a base URL that leads back to the proxy."""
    env = {**base, **extra}
    if BASE_URL_VAR in env and points_at(env[BASE_URL_VAR], proxy_host, proxy_port):
        del env[BASE_URL_VAR]
    return env
