"""claude-code-router's config.json: JSON5 text, its shape turned native, and what is reported as ignored."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ccproxy_core.config import ccr
from ccproxy_core.config.load import load

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ccr"
README_EXAMPLE = FIXTURES / "readme-example.json"


def parsed(name: str) -> dict[str, object]:
    data: dict[str, object] = orjson.loads(ccr.json5_text((FIXTURES / name).read_text(encoding="utf-8")))
    return data


def test_trailing_commas_are_blanked_outside_strings_only() -> None:
    """A comma before `]` or `}` goes; one inside a string stays, and columns do not move."""
    text = '{"a": [1, 2,], "b": "x,}", "c": {"d": 1,},}'
    out = ccr.strip_trailing_commas(text)
    assert orjson.loads(out) == {"a": [1, 2], "b": "x,}", "c": {"d": 1}}
    assert len(out) == len(text)


def test_json5_with_comments_and_trailing_commas_parses() -> None:
    """The JSON5 fixture (comments, trailing commas) reads as the JSON it means."""
    data = parsed("json5-env.json")
    assert data["Router"] == {
        "default": "deepseek,deepseek-chat",
        "think": "claude,claude-sonnet-4-20250514",
        "longContextThreshold": 1000,
    }


def test_detected_by_its_capitalised_keys() -> None:
    """`Providers` or `Router` marks the format; native lower-case keys do not."""
    assert ccr.is_ccr({"Providers": []}) and ccr.is_ccr({"Router": {}})
    assert not ccr.is_ccr({"providers": [], "routes": {}})


def test_readme_example_providers_become_native() -> None:
    """Endpoints lose the path ccproxy appends itself; transformers pick presets, kinds and caps."""
    out, _ = ccr.normalize(parsed("readme-example.json"), "ccr.json")
    providers = {p["name"]: p for p in out["providers"]}
    assert providers["openrouter"] == {
        "name": "openrouter",
        "kind": "openai",
        "enabled": True,
        "preset": "openrouter",
        "api_base_url": "https://openrouter.ai/api/v1",
        "api_key": "sk-xxx",
        "models": [
            "google/gemini-2.5-pro-preview",
            "anthropic/claude-sonnet-4",
            "anthropic/claude-3.5-sonnet",
            "anthropic/claude-3.7-sonnet:thinking",
        ],
    }
    assert providers["deepseek"]["api_base_url"] == "https://api.deepseek.com"
    assert providers["ollama"]["api_base_url"] == "http://localhost:11434/v1"
    assert providers["gemini"]["api_base_url"] == "https://generativelanguage.googleapis.com/v1beta/openai"
    assert providers["volcengine"]["preset"] == "deepseek"
    assert providers["modelscope"]["max_output_tokens"] == 65536
    assert "api_key" not in providers["dashscope"], "an empty key is no key"


def test_readme_example_router_and_server_keys() -> None:
    """`Router` values split at the first comma; APIKEY, the threshold and the timeout carry over."""
    out, _ = ccr.normalize(parsed("readme-example.json"), "ccr.json")
    assert out["routes"] == {
        "default": {"provider": "deepseek", "model": "deepseek-chat"},
        "background": {"provider": "ollama", "model": "qwen2.5-coder:latest"},
        "think": {"provider": "deepseek", "model": "deepseek-reasoner"},
        "longContext": {"provider": "openrouter", "model": "google/gemini-2.5-pro-preview"},
        "webSearch": {"provider": "gemini", "model": "gemini-2.5-flash"},
    }
    assert out["router"] == {"long_context_threshold": 60000}
    assert out["apikey"] == "your-secret-key"
    assert out["limits"] == {"request_timeout": 600}


def test_everything_ignored_is_named_in_one_warning() -> None:
    """One warning lists each key with no meaning here, with advice where there is some."""
    _, warnings = ccr.normalize(parsed("readme-example.json"), "ccr.json")
    assert len(warnings) == 1
    (warning,) = warnings
    assert warning.startswith("ccr.json: claude-code-router settings with no meaning in ccproxy, ignored: ")
    for part in (
        "PROXY_URL (set HTTPS_PROXY",
        "LOG (",
        "NON_INTERACTIVE_MODE",
        "Providers.deepseek.transformer.deepseek-chat (per-model transformers)",
        "Providers.modelscope.transformer.use: enhancetool",
    ):
        assert part in warning


def test_a_public_host_without_apikey_stays_on_loopback() -> None:
    """HOST 0.0.0.0 without APIKEY binds 127.0.0.1, as claude-code-router itself does, and says so."""
    out, warnings = ccr.normalize({"HOST": "0.0.0.0", "PORT": 8080, "Router": {}}, "c")
    assert out["host"] == "127.0.0.1" and out["port"] == 8080
    assert "HOST '0.0.0.0' without APIKEY" in warnings[0]
    out, warnings = ccr.normalize({"HOST": "0.0.0.0", "APIKEY": "k", "Router": {}}, "c")
    assert out["host"] == "0.0.0.0" and not warnings


def test_log_levels_map_to_ours() -> None:
    """pino's levels map onto ccproxy's four."""
    assert ccr.normalize({"LOG_LEVEL": "warn", "Router": {}}, "c")[0]["log"] == {"level": "warning"}
    assert ccr.normalize({"LOG_LEVEL": "trace", "Router": {}}, "c")[0]["log"] == {"level": "debug"}


@pytest.mark.parametrize("how", ["found in ~/.claude-code-router", "given with --config"])
def test_the_readme_example_loads_unchanged(isolated_home: Path, how: str) -> None:
    """The README's example config loads as it is, found automatically or named with --config."""
    if how.startswith("found"):
        target = ccr.user_config_path(isolated_home)
        target.parent.mkdir()
        target.write_bytes(README_EXAMPLE.read_bytes())
        config_file = None
    else:
        config_file = str(README_EXAMPLE)
    loaded = load(config_file=config_file, env={}, cwd=isolated_home, user_paths=[])
    config = loaded.config
    assert [p.name for p in config.providers] == [
        "openrouter",
        "deepseek",
        "ollama",
        "gemini",
        "volcengine",
        "modelscope",
        "dashscope",
        "aihubmix",
    ]
    assert config.routes["default"].provider == "deepseek" and config.routes["default"].model == "deepseek-chat"
    assert config.router.long_context_threshold == 60000
    assert config.apikey == "your-secret-key"
    assert sum("claude-code-router settings" in w for w in loaded.warnings) == 1


def test_ccproxy_user_config_wins_over_ccr(isolated_home: Path) -> None:
    """ccproxy's own user config sits above claude-code-router's in precedence."""
    target = ccr.user_config_path(isolated_home)
    target.parent.mkdir()
    target.write_bytes(README_EXAMPLE.read_bytes())
    own = isolated_home / "own.json"
    own.write_text('{"port": 4000, "apikey": "mine"}')
    config = load(env={}, cwd=isolated_home, user_paths=[own]).config
    assert (config.port, config.apikey) == (4000, "mine")
    assert config.routes["default"].provider == "deepseek", "the rest still comes from the ccr file"
