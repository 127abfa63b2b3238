"""Foreign config files read as they are, env expansion, and API keys from the environment."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccproxy_core.config.compat import (
    detect_and_normalize,
    env_api_keys,
    expand_env,
    go_duration,
    strip_json_comments,
)

GO_CONFIG = """\
// ~/.ccproxy/config.json for the Go ccproxy
{
  "host": "127.0.0.1",
  "port": 3456,
  "log": true,
  "log_file": "~/.ccproxy/ccproxy.log",
  "apikey": "${CCPROXY_API_KEY}",
  /* providers: the Go binary appends its own paths to these bases */
  "providers": [
    {
      "name": "anthropic",
      "api_key": "${ANTHROPIC_API_KEY}",
      "api_base_url": "https://api.anthropic.com",
      "models": ["claude-opus-4-20250720", "claude-sonnet-4-20250720"],
      "enabled": true,
      "created_at": "2025-07-20T10:00:00Z"
    },
    {
      "name": "gemini",
      "api_key": "AI...",   // "//" inside a string is not a comment: https://x
      "api_base_url": "https://generativelanguage.googleapis.com",
      "models": ["gemini-2.5-pro", "gemini-2.5-flash"],
      "enabled": true,
      "transformers": [{"name": "gemini"}]
    },
    {
      "name": "deepseek",
      "api_key": "sk-...",
      "api_base_url": "https://api.deepseek.com",
      "models": ["deepseek-chat", "deepseek-reasoner"],
      "enabled": false
    },
    {
      "name": "openrouter",
      "api_key": "sk-or-v1-...",
      "api_base_url": "https://openrouter.ai/api/v1",
      "models": ["anthropic/claude-3.5-sonnet"]
    },
    {"name": "lmstudio", "api_base_url": "http://localhost:1234", "models": ["qwen"], "enabled": true}
  ],
  "routes": {
    // condition-based routes
    "default": {"provider": "anthropic", "model": "claude-sonnet-4-20250720"},
    "longContext": {"provider": "gemini", "model": "gemini-2.5-pro"},
    "think": {"provider": "deepseek", "model": "deepseek-reasoner", "parameters": {"temperature": 0.6}},
    "claude-opus-4": {"provider": "openrouter", "model": "anthropic/claude-3.5-sonnet"}
  },
  "performance": {
    "request_timeout": "30s",
    "max_request_body_size": 10485760,
    "metrics_enabled": true,
    "rate_limit_enabled": true,
    "rate_limit_requests_per_min": 500,
    "circuit_breaker_enabled": true,
    "circuit_breaker_threshold": 5,
    "circuit_breaker_timeout": "1m"
  },
  "security": {"audit_enabled": false, "ip_whitelist": ["127.0.0.1"]},
  "proxy_url": "http://proxy:8080"
}
"""

NPM_SETTINGS = """\
{
  "server": {"port": 8082, "host": "0.0.0.0"},
  "providers": {
    "openai": {"apiKey": "sk-...", "baseURL": "https://api.openai.com/v1", "responseStyle": "openai"},
    "anthropic": {"apiKey": "sk-ant-...", "baseURL": "https://api.anthropic.com",
                  "responseStyle": "anthropic"},
    "gemini": {"apiKey": "...", "baseURL": "https://generativelanguage.googleapis.com",
               "responseStyle": "openai"},
    "openrouter": {"apiKey": "sk-or-v1-...", "baseURL": "https://openrouter.ai/api/v1",
                   "responseStyle": "openai", "timeout": 30},
    "custom-llm": {"baseURL": "https://your-llm-api.com", "apiKey": "k", "responseStyle": "anthropic"}
  },
  "models": {"bigModel": "gpt-4@openai", "smallModel": "gpt-4-mini@openai", "preferredProvider": "openai"},
  "logging": {"level": "info", "format": "json"}
}
"""


def test_go_config_is_normalized_to_the_native_shape() -> None:
    """A Go ccproxy config.json with comments becomes native config; dropped keys are reported."""
    raw = json.loads(strip_json_comments(GO_CONFIG))
    config, warnings = detect_and_normalize(raw, "config.json")
    assert config == {
        "host": "127.0.0.1",
        "port": 3456,
        "apikey": "${CCPROXY_API_KEY}",
        "log": {"file": "~/.ccproxy/ccproxy.log"},
        "providers": [
            {
                "name": "anthropic",
                "kind": "anthropic",
                "api_key": "${ANTHROPIC_API_KEY}",
                "api_base_url": "https://api.anthropic.com",
                "models": ["claude-opus-4-20250720", "claude-sonnet-4-20250720"],
                "enabled": True,
            },
            # the Go binary added /v1beta/... itself; we need the OpenAI-compatible root
            {
                "name": "gemini",
                "kind": "openai",
                "api_key": "AI...",
                "api_base_url": "https://generativelanguage.googleapis.com/v1beta/openai",
                "models": ["gemini-2.5-pro", "gemini-2.5-flash"],
                "enabled": True,
            },
            {
                "name": "deepseek",
                "kind": "openai",
                "api_key": "sk-...",
                "api_base_url": "https://api.deepseek.com",
                "models": ["deepseek-chat", "deepseek-reasoner"],
                "enabled": False,
            },
            {
                "name": "openrouter",
                "kind": "openai",
                "api_key": "sk-or-v1-...",
                "api_base_url": "https://openrouter.ai/api/v1",
                "models": ["anthropic/claude-3.5-sonnet"],
                "enabled": True,
            },
            # Go sent unknown providers to <base>/v1/chat/completions
            {
                "name": "lmstudio",
                "kind": "openai",
                "api_base_url": "http://localhost:1234/v1",
                "models": ["qwen"],
                "enabled": True,
            },
        ],
        "routes": {
            "default": {"provider": "anthropic", "model": "claude-sonnet-4-20250720"},
            "longContext": {"provider": "gemini", "model": "gemini-2.5-pro"},
            "think": {"provider": "deepseek", "model": "deepseek-reasoner"},
            "claude-opus-4": {"provider": "openrouter", "model": "anthropic/claude-3.5-sonnet"},
        },
        "limits": {"request_timeout": 30, "max_request_body_size": 10485760, "requests_per_minute": 500, "burst": 100},
        "breaker": {"enabled": True, "consecutive_failures": 5, "open_seconds": 60},
    }
    dropped = {w.split(": ")[1] for w in warnings}
    assert dropped == {
        "providers[1].transformers",
        "routes.think.parameters",
        "performance.metrics_enabled",
        "security",
        "proxy_url",
    }
    assert all(w.startswith("config.json: ") for w in warnings)
    assert any("HTTPS_PROXY" in w for w in warnings)


def test_npm_settings_are_normalized_to_the_native_shape() -> None:
    """An npm claude-code-proxy settings.json (providers as a map) becomes native config."""
    config, warnings = detect_and_normalize(json.loads(NPM_SETTINGS), "settings.json")
    assert config == {
        "host": "0.0.0.0",
        "port": 8082,
        "providers": [
            {
                "name": "openai",
                "kind": "openai",
                "response_style": "openai",
                "api_key": "sk-...",
                "api_base_url": "https://api.openai.com/v1",
                "enabled": True,
            },
            {
                "name": "anthropic",
                "kind": "anthropic",
                "response_style": "anthropic",
                "api_key": "sk-ant-...",
                "api_base_url": "https://api.anthropic.com",
                "enabled": True,
            },
            {
                "name": "gemini",
                "kind": "openai",
                "response_style": "openai",
                "api_key": "...",
                "api_base_url": "https://generativelanguage.googleapis.com/v1beta/openai",
                "enabled": True,
            },
            {
                "name": "openrouter",
                "kind": "openai",
                "response_style": "openai",
                "api_key": "sk-or-v1-...",
                "api_base_url": "https://openrouter.ai/api/v1",
                "enabled": True,
            },
            {
                "name": "custom-llm",
                "kind": "anthropic",
                "response_style": "anthropic",
                "api_key": "k",
                "api_base_url": "https://your-llm-api.com",
                "enabled": True,
            },
        ],
        "router": {"big_model": "gpt-4@openai", "small_model": "gpt-4-mini@openai", "preferred_provider": "openai"},
        "log": {"level": "info", "format": "json"},
    }
    assert warnings == ["settings.json: providers.openrouter.timeout: dropped (not supported by ccproxy)"]


def test_npm_provider_without_response_style_takes_its_presets_kind() -> None:
    """A provider with no responseStyle speaks what its preset speaks."""
    raw = {"providers": {"anthropic": {"apiKey": "k"}, "deepseek": {"apiKey": "d"}}}
    config, _ = detect_and_normalize(raw, "s")
    assert [(p["kind"], p["api_base_url"]) for p in config["providers"]] == [
        ("anthropic", "https://api.anthropic.com"),
        ("openai", "https://api.deepseek.com"),
    ]


def test_native_config_passes_through_untouched() -> None:
    """A native file is returned as it is (a copy), so config.py reports its own unknown keys."""
    native: dict[str, Any] = {
        "port": 4000,
        "providers": [{"name": "openai", "api_key": "k", "typo": 1}],
        "routes": {"default": {"provider": "openai", "model": "gpt-4.1"}},
        "router": {"fallback": {"default": ["openai"]}},
        "limits": {"request_timeout": "600s"},
    }
    config, warnings = detect_and_normalize(native, "c")
    assert (config, warnings) == (native, [])
    assert config is not native
    config["providers"][0]["name"] = "changed"
    assert native["providers"][0]["name"] == "openai"


@pytest.mark.parametrize(
    "raw",
    [
        {"server": [], "providers": [{"name": "x"}], "models": "big", "logging": 3},
        {"providers": {"a": "not a provider"}, "models": {}},
        {"performance": ["x"], "providers": {"a": 1}, "routes": ["default"]},
        {"log": False, "performance": {"request_timeout": "soon", "max_request_body_size": "big"}},
    ],
)
def test_malformed_foreign_files_warn_instead_of_crashing(raw: dict[str, Any]) -> None:
    """Blocks of the wrong JSON type are dropped with a warning; bad values go on to validation."""
    config, warnings = detect_and_normalize(raw, "f")
    assert isinstance(config, dict)
    assert all(w.startswith("f: ") for w in warnings)


def test_bad_go_values_are_left_for_config_validation() -> None:
    """A value that is not a Go duration is carried over as it is, for config.py to refuse by path."""
    config, _ = detect_and_normalize({"performance": {"request_timeout": "soon"}}, "f")
    assert config["limits"] == {"request_timeout": "soon"}


# --- comments --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1} // end', '{"a": 1} '),
        ('{"a": /* inline */ 1}', '{"a":  1}'),
        ('{"url": "http://x//y", "b": "/* not */"}', '{"url": "http://x//y", "b": "/* not */"}'),
        ('{"q": "a\\"//b"} // c', '{"q": "a\\"//b"} '),
        ('{"a": 1, /* two\nlines */ "b": 2}', '{"a": 1, \n "b": 2}'),
        ("// only\n{}", "\n{}"),
        ('"ends with backslash\\\\" // c', '"ends with backslash\\\\" '),
    ],
)
def test_strip_json_comments(text: str, expected: str) -> None:
    """Comments outside strings go; strings, and the line count, stay."""
    assert strip_json_comments(text) == expected


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.sampled_from('ab/*"\\\n \t')),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10,
)


@given(JSON_VALUES)
def test_json_without_comments_is_unchanged(value: Any) -> None:
    """Any JSON document, however many slashes and stars its strings hold, comes back as it was."""
    text = json.dumps(value)
    assert strip_json_comments(text) == text


def test_unterminated_block_comment_is_an_error() -> None:
    """A `/*` without `*/` is reported, not silently eaten."""
    with pytest.raises(ValueError, match="unterminated"):
        strip_json_comments('{"a": 1 /* oops')


# --- environment -----------------------------------------------------------------------------------

ENV = {"KEY": "sk-1", "HOST": "example.com", "EMPTY": ""}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$KEY", "sk-1"),
        ("${KEY}", "sk-1"),
        ("https://${HOST}/v1", "https://example.com/v1"),
        ("$HOST:$KEY", "example.com:sk-1"),
        ("${EMPTY}", ""),
        ("${MISSING:-fallback}", "fallback"),
        ("costs $5 or $$KEY", "costs $5 or $KEY"),
        ({"a": ["$KEY", 3, True, None, {"b": "${HOST}"}]}, {"a": ["sk-1", 3, True, None, {"b": "example.com"}]}),
    ],
)
def test_expand_env(value: Any, expected: Any) -> None:
    """`$VAR` and `${VAR}` are replaced in every string value at any depth."""
    assert expand_env(value, ENV) == expected


def test_unset_variable_names_itself_and_its_path() -> None:
    """An unset variable is an error that says which variable and where it was used."""
    config = {"providers": [{"name": "a"}, {"name": "b", "api_key": "${B_API_KEY}"}]}
    message = r"^providers\[1\]\.api_key: environment variable B_API_KEY is not set"
    with pytest.raises(ValueError, match=message):
        expand_env(config, ENV)


PROVIDERS: list[dict[str, Any]] = [
    {"name": "openai", "api_key": "from-file"},
    {"name": "deepseek"},
    {"name": "gemini", "api_key": ""},
    {"name": "google-ai", "preset": "gemini"},
    {"name": "claude-max", "kind": "anthropic", "auth": "oauth"},
    {"name": "mine", "api_base_url": "http://localhost:8000/v1"},
    {"name": "openrouter", "api_keys": ["k1", "k2"]},
]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # <NAME>_API_KEY fills providers without a key, never one with a key
        (
            {"OPENAI_API_KEY": "env-openai", "DEEPSEEK_API_KEY": "env-ds", "OPENROUTER_API_KEY": "env-or"},
            ["from-file", "env-ds", "", None, None, None, None],
        ),
        # Gemini takes GEMINI_API_KEY, else GOOGLE_API_KEY; an explicit preset finds it too
        ({"GOOGLE_API_KEY": "g"}, ["from-file", None, "g", "g", None, None, None]),
        ({"GOOGLE_API_KEY": "g", "GEMINI_API_KEY": "gem"}, ["from-file", None, "gem", "gem", None, None, None]),
        # CCPROXY_PROVIDERS_<i>_API_KEY (0-based) beats the file
        (
            {"CCPROXY_PROVIDERS_0_API_KEY": "idx0", "OPENAI_API_KEY": "env-openai", "CCPROXY_PROVIDERS_5_API_KEY": "m"},
            ["idx0", None, "", None, None, "m", None],
        ),
        # OAuth providers take no key from the environment
        ({"ANTHROPIC_API_KEY": "sk-ant"}, ["from-file", None, "", None, None, None, None]),
    ],
)
def test_env_api_keys(env: dict[str, str], expected: list[str | None]) -> None:
    """Keys from the environment: the indexed variable beats the file; the vendor one fills gaps."""
    out = env_api_keys(PROVIDERS, env)
    assert [p.get("api_key") for p in out] == expected
    assert PROVIDERS[1] == {"name": "deepseek"}  # the input is not modified


def test_indexed_key_replaces_a_key_list() -> None:
    """CCPROXY_PROVIDERS_<i>_API_KEY replaces every key the file gave, including api_keys."""
    out = env_api_keys(PROVIDERS, {"CCPROXY_PROVIDERS_6_API_KEY": "only"})
    assert (out[6]["api_key"], out[6]["api_keys"]) == ("only", [])


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30),
        ("1m30s", 90),
        ("500ms", 0.5),
        ("2h", 7200),
        ("1.5s", 1.5),
        (45, 45),
        ("45", 45),
        (30_000_000_000, 30),  # encoding/json's nanoseconds
    ],
)
def test_go_duration(value: Any, seconds: float) -> None:
    """Go duration strings and numbers become seconds."""
    assert go_duration(value, "performance.request_timeout") == seconds


@pytest.mark.parametrize("value", ["soon", True, "30 parsecs", None])
def test_bad_go_duration(value: Any) -> None:
    """Anything else is an error naming the key."""
    with pytest.raises(ValueError, match=r"performance\.request_timeout"):
        go_duration(value, "performance.request_timeout")
