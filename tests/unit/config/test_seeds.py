"""Every seed's files and variables load as their users wrote them (issues #19 and #11 items 4, 5, 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccproxy_core.config.load import LoadedConfig, load
from ccproxy_core.config.model import ConfigError, structure


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


def load_in(cwd: Path, env: dict[str, str] | None = None, **kw: object) -> LoadedConfig:
    return load(
        env=env or {}, cwd=cwd, managed=cwd / "no-managed.json", managed_settings=cwd / "no-managed-settings.json", **kw
    )  # type: ignore[arg-type]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- Go ccproxy --------------------------------------------------------------------------------------


def test_ccproxy_log_true_turns_file_logging_on_as_the_go_proxy_meant(cwd: Path, isolated_home: Path) -> None:
    """CCPROXY_LOG=true (and LOG=true) log to ~/.ccproxy/ccproxy.log or CCPROXY_LOG_FILE; a level still works."""
    default = str(isolated_home / ".ccproxy" / "ccproxy.log")
    assert load_in(cwd, {"CCPROXY_LOG": "true"}).config.log.file == default
    assert load_in(cwd, {"LOG": "true"}).config.log.file == default
    assert load_in(cwd, {"CCPROXY_LOG": "1", "CCPROXY_LOG_FILE": "~/x.log"}).config.log.file == str(
        isolated_home / "x.log"
    )
    leveled = load_in(cwd, {"CCPROXY_LOG": "debug"})
    assert (leveled.config.log.level, leveled.config.log.file) == ("debug", "")
    assert leveled.sources["log.level"] == "env CCPROXY_LOG"
    assert load_in(cwd, {"LOG": "false"}).config.log.file == ""


def test_a_go_config_log_file_under_home_is_expanded(cwd: Path, isolated_home: Path) -> None:
    """`"log_file": "~/.ccproxy/ccproxy.log"` from the Go README is the home directory, not ./~."""
    path = write(cwd / "go.json", '{"log": true, "log_file": "~/.ccproxy/ccproxy.log", "providers": []}')
    assert load_in(cwd, config_file=str(path)).config.log.file == str(isolated_home / ".ccproxy" / "ccproxy.log")
    accounts = structure({"providers": [{"name": "c", "kind": "anthropic", "auth": "oauth", "accounts_path": "~/a"}]})
    assert accounts.providers[0].accounts_path == str(isolated_home / "a")


# --- npm claude-code-proxy ------------------------------------------------------------------------------


def test_npm_settings_files_are_config_sources_at_their_precedence(cwd: Path, isolated_home: Path) -> None:
    """~/.ccproxy/settings.json < ./.ccproxy/settings.json < the native files < managed-settings.json."""
    npm = {"server": {"port": 4100}, "providers": {"local": {"baseURL": "http://127.0.0.1:9/v1", "apiKey": "k"}}}
    write(isolated_home / ".ccproxy" / "settings.json", json.dumps(npm))
    user = load_in(cwd)
    assert user.config.port == 4100 and [p.name for p in user.config.providers] == ["local"]
    write(cwd / ".ccproxy" / "settings.json", '{"server": {"port": 4200}}')
    assert load_in(cwd).config.port == 4200
    write(cwd / ".ccproxy" / "config.json", '{"host": "127.0.0.2"}')
    assert (load_in(cwd).config.port, load_in(cwd).config.host) == (4200, "127.0.0.2")
    managed = write(cwd / "etc" / "managed-settings.json", '{"server": {"port": 4300}}')
    explicit = write(cwd / "explicit.json", '{"port": 4400}')
    both = load(env={}, cwd=cwd, managed=cwd / "none.json", managed_settings=managed, config_file=str(explicit))
    assert both.config.port == 4300, "the administrator's file beats every other file"
    assert load(env={"CCPROXY_PORT": "4500"}, cwd=cwd, managed_settings=managed).config.port == 4500


# --- ccproxy-api ---------------------------------------------------------------------------------------


def test_project_toml_sections_are_mapped_and_the_rest_named(cwd: Path) -> None:
    """.ccproxy.toml: [server] and [security] mean ccproxy keys; [claude], [cors] are named as ignored."""
    write(
        cwd / ".ccproxy.toml",
        '[server]\nhost = "127.0.0.1"\nport = 8000\nlog_level = "DEBUG"\nworkers = 4\n'
        '[security]\nauth_token = "tok-123"\n[claude]\ncli_path = "auto"\n[cors]\nallow_origins = ["*"]\n',
    )
    loaded = load_in(cwd)
    c = loaded.config
    assert (c.port, c.log.level, c.apikey) == (8000, "debug", "tok-123")
    assert loaded.sources["apikey"] == str(cwd / ".ccproxy.toml")
    ignored = " | ".join(loaded.warnings)
    assert "server.workers" in ignored and "claude" in ignored and "cors" in ignored
    assert "auth_token" not in ignored and "port" not in ignored


def test_ccproxy_toml_is_read_when_there_is_no_dot_file(cwd: Path) -> None:
    write(cwd / "ccproxy.toml", "[server]\nport = 8001\n")
    assert load_in(cwd).config.port == 8001


def test_double_underscore_variables_set_the_same_keys_below_ccproxy_ones(cwd: Path) -> None:
    """SERVER__PORT, SERVER__LOG_LEVEL, SECURITY__AUTH_TOKEN, LOG__FORMAT; CCPROXY_PORT still wins."""
    env = {
        "SERVER__PORT": "8080",
        "SERVER__LOG_LEVEL": "DEBUG",
        "SECURITY__AUTH_TOKEN": "tok",
        "LOG__FORMAT": "json",
        "CLAUDE__CLI_PATH": "/x",
        "UNRELATED__THING": "1",
    }
    loaded = load_in(cwd, env)
    c = loaded.config
    assert (c.port, c.log.level, c.apikey, c.log.format) == (8080, "debug", "tok", "json")
    assert loaded.sources["port"] == "env SERVER__PORT"
    assert any("CLAUDE__CLI_PATH" in w for w in loaded.warnings)
    assert not any("UNRELATED" in w for w in loaded.warnings)
    assert load_in(cwd, {**env, "CCPROXY_PORT": "9090"}).config.port == 9090
    with pytest.raises(ConfigError, match="environment SERVER__PORT: port: expected a whole number"):
        load_in(cwd, {"SERVER__PORT": "eighty"})


def test_config_file_is_an_alias_of_ccproxy_config(cwd: Path) -> None:
    path = write(cwd / "elsewhere.json", '{"port": 4321}')
    assert load_in(cwd, {"CONFIG_FILE": str(path)}).config.port == 4321


# --- ccproxy-multi --------------------------------------------------------------------------------------


MULTI = """\
[server]
host = "127.0.0.1"
port = 8082

[rotation]
enabled = true
accounts_path = "~/.claude/accounts.json"
hot_reload = true
refresh_buffer_seconds = 600

[security]
auth_token = "multi-secret"
"""


def test_ccproxy_multi_config_loads_unchanged(cwd: Path, isolated_home: Path) -> None:
    """~/.config/ccproxy/config.toml as its README has it: the OAuth pool, its file, the token as apikey."""
    write(isolated_home / "xdg_config_home" / "ccproxy" / "config.toml", MULTI)
    loaded = load_in(cwd)
    c = loaded.config
    assert (c.port, c.apikey, c.rotation.refresh_buffer_seconds) == (8082, "multi-secret", 600)
    [claude] = c.providers
    assert (claude.name, claude.auth) == ("claude", "oauth")
    assert claude.accounts_path == str(isolated_home / ".claude" / "accounts.json")
    assert loaded.warnings == ()


def test_rotation_accounts_path_fills_the_configured_oauth_provider(cwd: Path, isolated_home: Path) -> None:
    path = write(
        cwd / "c.json",
        json.dumps(
            {
                "rotation": {"accounts_path": "~/pool.json"},
                "providers": [
                    {"name": "max", "kind": "anthropic", "auth": "oauth"},
                    {"name": "api", "kind": "anthropic", "api_key": "k"},
                ],
            }
        ),
    )
    providers = load_in(cwd, config_file=str(path)).config.providers
    assert [(p.name, p.accounts_path) for p in providers] == [("max", str(isolated_home / "pool.json")), ("api", "")]


# --- refusing what would break later --------------------------------------------------------------------


def test_a_typo_in_a_scenario_route_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"routes\.defualt: not a scenario name; did you mean 'default'"):
        structure({"routes": {"defualt": {"provider": "anthropic", "model": "m"}}})
    with pytest.raises(ConfigError, match="did you mean 'longContext'"):
        structure({"routes": {"long_context": {"provider": "anthropic", "model": "m"}}})
    structure({"routes": {"gpt-4.1": {"provider": "anthropic", "model": "m"}, "claude-*": {"provider": "anthropic"}}})


def test_an_openai_provider_without_an_address_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match=r"providers\.0\.api_base_url: provider 'mine' \(kind 'openai'\) needs"):
        structure({"providers": [{"name": "mine", "kind": "openai", "api_key": "k"}]})
    assert structure({"providers": [{"name": "openai", "kind": "openai"}]}).providers[0].name == "openai"
    assert structure({"providers": [{"name": "x", "preset": "deepseek"}]}).providers[0].preset == "deepseek"
    with pytest.raises(ConfigError, match=r"providers\.0\.preset: unknown preset 'bogus'"):
        structure({"providers": [{"name": "x", "preset": "bogus"}]})


def test_a_string_where_a_list_of_keys_goes_is_one_key() -> None:
    """`"api_keys": "sk-abc"` is one key, never six one-character keys."""
    c = structure({"providers": [{"name": "openai", "kind": "openai", "api_keys": "sk-abc", "models": "gpt-4.1"}]})
    assert (c.providers[0].keys, c.providers[0].models) == (("sk-abc",), ("gpt-4.1",))
    with pytest.raises(ConfigError, match="api_keys: expected a list of strings"):
        structure({"providers": [{"name": "openai", "api_keys": 5}]})


def test_config_show_sources_name_the_variable_a_provider_key_came_from(cwd: Path) -> None:
    path = write(cwd / "c.json", '{"providers": [{"name": "openai"}, {"name": "deepseek", "api_key": "file"}]}')
    loaded = load_in(cwd, {"OPENAI_API_KEY": "sk-o", "CCPROXY_PROVIDERS_1_API_KEY": "sk-d"}, config_file=str(path))
    assert loaded.sources["providers.0.api_key"] == "env OPENAI_API_KEY"
    assert loaded.sources["providers.1.api_key"] == "env CCPROXY_PROVIDERS_1_API_KEY"
