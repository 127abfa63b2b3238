"""Configuration: layered precedence, file formats, and errors that say where and what."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccproxy_core.config.load import load
from ccproxy_core.config.model import Config, ConfigError, structure


def write(path: Path, data: object, text: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text is not None else json.dumps(data))
    return path


@pytest.fixture
def layers(tmp_path: Path) -> dict[str, Path]:
    return {
        "managed": tmp_path / "etc" / "config.json",
        "user": tmp_path / "user" / "config.json",
        "project": tmp_path / "cwd" / ".ccproxy" / "config.json",
        "explicit": tmp_path / "explicit.json",
    }


def load_layers(
    layers: dict[str, Path],
    *,
    env: dict[str, str] | None = None,
    flags: dict[str, object] | None = None,
    explicit: bool = True,
):  # type: ignore[no-untyped-def]
    return load(
        flags=flags,
        config_file=str(layers["explicit"]) if explicit else None,
        env=env or {},
        cwd=layers["project"].parent.parent,
        managed=layers["managed"],
        user_paths=[layers["user"]],
    )


def test_defaults_are_a_transparent_anthropic_proxy_on_loopback() -> None:
    config = Config()
    assert (config.host, config.port, config.apikey) == ("127.0.0.1", 3456, "")
    assert [(p.name, p.kind, p.api_base_url, p.keys) for p in config.providers] == [
        ("anthropic", "anthropic", "https://api.anthropic.com", ())
    ]
    assert config.limits.stream_idle_timeout == 300
    assert config.limits.max_request_body_size == 32 * 1024 * 1024


def test_each_layer_beats_the_ones_below_it(layers: dict[str, Path]) -> None:
    """flags > env > --config > project > user > managed > defaults, key by key."""
    write(layers["managed"], {"port": 1001, "host": "10.0.0.1", "apikey": "managed", "log": {"level": "error"}})
    write(layers["user"], {"port": 1002, "host": "10.0.0.2", "apikey": "user"})
    write(layers["project"], {"port": 1003, "host": "10.0.0.3"})
    write(layers["explicit"], {"port": 1004})
    loaded = load_layers(layers, env={"CCPROXY_PORT": "1005"}, flags={"port": 1006})
    c = loaded.config
    assert c.port == 1006
    assert c.host == "10.0.0.3"
    assert c.apikey == "user"
    assert c.log.level == "error"
    assert loaded.sources["port"] == "flag --port"
    assert loaded.sources["host"] == str(layers["project"])
    assert load_layers(layers, env={"CCPROXY_PORT": "1005"}).config.port == 1005
    assert load_layers(layers).config.port == 1004
    assert load_layers(layers, explicit=False).config.port == 1003


def test_dicts_merge_by_key_and_lists_replace(layers: dict[str, Path]) -> None:
    write(
        layers["user"],
        {
            "limits": {"request_timeout": "5m"},
            "providers": [
                {"name": "a", "kind": "anthropic"},
                {"name": "b", "kind": "openai", "api_base_url": "http://127.0.0.1:9/v1"},
            ],
        },
    )
    write(
        layers["explicit"],
        {
            "limits": {"connect_timeout": 3},
            "providers": [{"name": "c", "kind": "openai", "api_base_url": "http://127.0.0.1:9/v1"}],
        },
    )
    c = load_layers(layers).config
    assert (c.limits.request_timeout, c.limits.connect_timeout) == (300.0, 3.0)
    assert [p.name for p in c.providers] == ["c"]


def test_toml_is_accepted_with_the_same_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        None,
        text='port = 4000\n[log]\nlevel = "debug"\n[[providers]]\nname = "openai"\nkind = "openai"\napi_key = "sk-x"\n',
    )
    c = load(config_file=str(path), env={}, cwd=tmp_path, user_paths=[]).config
    assert (c.port, c.log.level, c.providers[0].keys) == (4000, "debug", ("sk-x",))


def test_json_comments_are_tolerated(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", None, text='{\n  // the port\n  "port": 4001 /* inline */\n}\n')
    assert load(config_file=str(path), env={}, cwd=tmp_path, user_paths=[]).config.port == 4001


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"prot": 1}, "c.json: prot: unknown key"),
        ({"log": {"levle": "info"}}, "c.json: log.levle: unknown key"),
        ({"port": "eighty"}, "c.json: port: expected a whole number, got 'eighty'"),
        ({"limits": {"request_timeout": "soon"}}, "c.json: limits.request_timeout: expected a duration"),
        ({"providers": [{"name": "a", "kind": "anthropic"}, {"kind": "openai"}]}, "c.json: providers.1"),
        (
            {"providers": [{"name": "a", "kind": "anthropic", "api_kye": "x"}]},
            "c.json: providers.0.api_kye: unknown key",
        ),
        (
            {"routes": {"default": {"provider": "nope", "model": "m"}}},
            "routes.default.provider: unknown provider 'nope'",
        ),
        ({"rotation": {"hot_reload": "maybe"}}, "c.json: rotation.hot_reload: expected true or false"),
        ({"router": {"fallback": {"default": ["nope,m"]}}}, "router.fallback.default.0: unknown provider 'nope'"),
        ({"state": {"backend": "redis"}}, "c.json: state.redis_url: state.backend is redis but no URL is set"),
        ({"state": {"redis_url": "http://x"}}, "c.json: state.redis_url: expected a URL such as redis://"),
    ],
)
def test_bad_config_is_refused_naming_file_key_and_problem(tmp_path: Path, data: object, problem: str) -> None:
    path = write(tmp_path / "c.json", data)
    with pytest.raises(ConfigError) as info:
        load(config_file=str(path), env={}, cwd=tmp_path, user_paths=[])
    assert any(p.startswith(problem) or problem in p for p in info.value.problems), info.value.problems


def test_a_fallback_entry_may_name_the_model_too(tmp_path: Path) -> None:
    """`provider,model` in router.fallback (claude-code-router's form) is accepted, as routing reads it."""
    data = {
        "providers": [{"name": "oai", "kind": "openai", "api_base_url": "https://x/v1"}],
        "router": {"fallback": {"default": ["OAI,gpt-5"]}},
    }
    path = write(tmp_path / "c.json", data)
    assert load(config_file=str(path), env={}, cwd=tmp_path, user_paths=[]).config.router.fallback == {
        "default": ("OAI,gpt-5",)
    }


def test_redis_url_alone_selects_the_redis_backend(tmp_path: Path) -> None:
    """CCPROXY_REDIS_URL sets state.backend redis and the URL; its password is a secret."""
    env = {"CCPROXY_REDIS_URL": "redis://:hunter2@127.0.0.1:6379/0"}
    config = load(config_file=None, env=env, cwd=tmp_path, user_paths=[]).config
    assert (config.state.backend, config.state.redis_url) == ("redis", env["CCPROXY_REDIS_URL"])
    assert "hunter2" in config.secrets()


def test_broken_json_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.json", None, text='{"port": 1,,}')
    with pytest.raises(ConfigError, match=r"c\.json: not valid JSON"):
        load(config_file=str(path), env={}, cwd=tmp_path, user_paths=[])


def test_a_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load(config_file=str(tmp_path / "absent.json"), env={}, cwd=tmp_path, user_paths=[])


def test_environment_sets_keys_and_provider_api_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.json",
        {
            "providers": [
                {"name": "openai", "kind": "openai"},
                {"name": "deepseek", "kind": "openai", "api_key": "file"},
            ]
        },
    )
    env = {
        "CCPROXY_API_KEY": "proxy-key",
        "CCPROXY_LOG": "debug",
        "CCPROXY_HOT_RELOAD": "false",
        "OPENAI_API_KEY": "sk-openai",
        "CCPROXY_PROVIDERS_1_API_KEY": "sk-ds",
        "CCPROXY_CONFIG": str(path),
    }
    c = load(env=env, cwd=tmp_path, user_paths=[]).config
    assert (c.apikey, c.log.level, c.rotation.hot_reload) == ("proxy-key", "debug", False)
    assert [p.api_key for p in c.providers] == ["sk-openai", "sk-ds"]


def test_dollar_variables_expand_from_the_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.json",
        {
            "providers": [
                {"name": "o", "kind": "openai", "api_base_url": "http://127.0.0.1:9/v1", "api_key": "${MY_KEY}"}
            ]
        },
    )
    c = load(config_file=str(path), env={"MY_KEY": "sk-from-env"}, cwd=tmp_path, user_paths=[]).config
    assert c.providers[0].api_key == "sk-from-env"


def test_durations_take_units() -> None:
    c = structure({"limits": {"request_timeout": "250ms", "connect_timeout": 2, "stream_idle_timeout": "1h"}})
    assert (c.limits.request_timeout, c.limits.connect_timeout, c.limits.stream_idle_timeout) == (0.25, 2.0, 3600.0)


def test_provider_keys_combine_api_key_and_api_keys() -> None:
    c = structure(
        {
            "providers": [
                {
                    "name": "a",
                    "kind": "openai",
                    "api_base_url": "http://127.0.0.1:9/v1",
                    "api_key": "k1",
                    "api_keys": ["k2", "k3"],
                }
            ]
        }
    )
    assert c.providers[0].keys == ("k1", "k2", "k3")


def test_every_time_setting_takes_a_duration() -> None:
    """Breaker and OAuth times take units like the limits do."""
    c = structure({"breaker": {"open_seconds": "1m", "window_seconds": 30}, "oauth": {"timeout_seconds": "10s"}})
    assert (c.breaker.open_seconds, c.breaker.window_seconds, c.oauth.timeout_seconds) == (60.0, 30.0, 10.0)
    with pytest.raises(ConfigError, match=r"breaker\.open_seconds: expected a duration"):
        structure({"breaker": {"open_seconds": "soon"}})
    with pytest.raises(ConfigError, match=r"breaker\.opne_seconds: unknown key"):
        structure({"breaker": {"opne_seconds": 1}})
