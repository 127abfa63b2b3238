"""The CLI's command line and environment: the safety defaults of SDK mode."""

from __future__ import annotations

import pytest

from ccproxy_core.sdk.command import CliOptions, Launch, cli_args, cli_env, points_at, tool_names


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_by_default_no_tool_no_user_settings_no_mcp() -> None:
    """With nothing configured the CLI gets no tools, no user settings or hooks, only strict (empty) MCP."""
    args = cli_args("claude", CliOptions(), Launch())
    assert flag(args, "--tools") == ""
    assert "--allowedTools" not in args
    assert flag(args, "--setting-sources") == ""
    assert "--strict-mcp-config" in args and "--disable-slash-commands" in args
    assert flag(args, "--permission-prompts") == "none"


def test_allowed_tools_are_offered_and_run_without_a_prompt() -> None:
    """sdk.allowed_tools names the tools offered (`--tools`) and allowed (`--allowedTools`), patterns kept."""
    args = cli_args("claude", CliOptions(allowed_tools=("Bash(git *)", "Read", "mcp__files__read")), Launch())
    assert flag(args, "--tools") == "Bash,Read"
    assert flag(args, "--allowedTools") == "Bash(git *),Read,mcp__files__read"


def test_user_settings_true_loads_the_users_own_setup() -> None:
    """sdk.user_settings: true leaves the CLI's own settings, hooks and MCP servers on."""
    args = cli_args("claude", CliOptions(user_settings=True), Launch())
    assert "--setting-sources" not in args and "--strict-mcp-config" not in args


def test_configured_mcp_servers_are_passed_as_json() -> None:
    """sdk.mcp_servers become the one --mcp-config the CLI reads."""
    args = cli_args("claude", CliOptions(mcp_servers={"files": {"command": "srv"}}), Launch())
    assert flag(args, "--mcp-config") == '{"mcpServers":{"files":{"command":"srv"}}}'


@pytest.mark.parametrize(
    ("launch", "expected"),
    [
        (Launch(), ["--no-session-persistence"]),
        (Launch(session_uuid="u-1"), ["--session-id", "u-1"]),
        (Launch(session_uuid="u-1", resume=True), ["--resume", "u-1"]),
    ],
)
def test_sessions_start_resume_or_leave_nothing_on_disk(launch: Launch, expected: list[str]) -> None:
    """A stateless run keeps nothing; a session starts with its UUID and later resumes it."""
    args = cli_args("claude", CliOptions(), launch)
    assert args[-len(expected) :] == expected


def test_model_and_system_are_passed() -> None:
    """The client's model is the CLI's model; its system text is appended to Claude Code's own."""
    args = cli_args("claude", CliOptions(), Launch(model="haiku", system="Be brief."))
    assert flag(args, "--model") == "haiku" and flag(args, "--append-system-prompt") == "Be brief."


@pytest.mark.parametrize(
    ("url", "host", "port", "expected"),
    [
        ("http://127.0.0.1:3456", "127.0.0.1", 3456, True),
        ("http://localhost:3456/claude", "127.0.0.1", 3456, True),
        ("http://[::1]:3456", "0.0.0.0", 3456, True),
        ("http://127.0.0.1:3457", "127.0.0.1", 3456, False),
        ("https://api.anthropic.com", "127.0.0.1", 3456, False),
        ("http://proxy.lan:3456", "proxy.lan", 3456, True),
    ],
)
def test_points_at(url: str, host: str, port: int, expected: bool) -> None:
    """A base URL points at ccproxy when host (loopback names being one) and port match."""
    assert points_at(url, host, port) is expected


def test_a_base_url_back_at_the_proxy_is_dropped() -> None:
    """The CLI cannot loop into ccproxy: its own address as ANTHROPIC_BASE_URL is removed."""
    env = cli_env(
        {"ANTHROPIC_BASE_URL": "http://127.0.0.1:3456", "PATH": "/bin"},
        {"EXTRA": "1"},
        proxy_host="127.0.0.1",
        proxy_port=3456,
    )
    assert env == {"PATH": "/bin", "EXTRA": "1"}


def test_sdk_env_wins_and_a_foreign_base_url_stays() -> None:
    """sdk.env is laid over the proxy's environment; a base URL elsewhere is kept."""
    env = cli_env(
        {"ANTHROPIC_BASE_URL": "http://127.0.0.1:3456"},
        {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"},
        proxy_host="127.0.0.1",
        proxy_port=3456,
    )
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9"


def test_tool_names_dedupe_and_skip_mcp() -> None:
    """Patterns name their tool once; MCP tools are not built-in tools."""
    assert tool_names(("Bash(ls)", "Bash(git *)", "mcp__x__y", "Edit")) == ["Bash", "Edit"]
