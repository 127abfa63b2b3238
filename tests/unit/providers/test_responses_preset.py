"""The `responses` provider kind in the preset table: which preset, which URL, which checks."""

from __future__ import annotations

from typing import Any

import pytest

from ccproxy_core.config.model import structure
from ccproxy_core.providers.presets import preset_for_provider, responses_url, upstream_url
from ccproxy_core.providers.rules import fit_responses_request, takes_reasoning_on


@pytest.mark.parametrize(
    ("provider", "url"),
    [
        ({"name": "oai", "kind": "responses"}, "https://api.openai.com/v1/responses"),
        ({"name": "x", "preset": "openai-responses"}, "https://api.openai.com/v1/responses"),
        ({"name": "openai", "kind": "responses"}, "https://api.openai.com/v1/responses"),
        (
            {"name": "r", "kind": "responses", "api_base_url": "http://127.0.0.1:8080/v1"},
            "http://127.0.0.1:8080/v1/responses",
        ),
        (
            {"name": "r", "kind": "responses", "api_base_url": "https://gw.example/v1/responses"},
            "https://gw.example/v1/responses",
        ),
        (
            {"name": "az", "kind": "responses", "api_base_url": "https://api.openai.com/v1"},
            "https://api.openai.com/v1/responses",
        ),
    ],
)
def test_a_responses_provider_posts_to_base_slash_responses(provider: dict[str, str], url: str) -> None:
    """kind alone, the preset, OpenAI's own name or host: `{api_base_url}/responses` with a bearer key."""
    preset = preset_for_provider(provider)
    assert preset.kind == "responses"
    assert preset.auth_header == "authorization-bearer"
    assert responses_url(preset) == url


def test_a_responses_provider_has_no_chat_or_messages_endpoint() -> None:
    """Messages and Chat clients reach it only by translation, never by a Chat or Messages URL."""
    preset = preset_for_provider({"name": "oai", "kind": "responses"})
    for path_kind in ("chat", "messages"):
        with pytest.raises(ValueError, match=r"no \w+ endpoint"):
            upstream_url(preset, "", path_kind)
    assert upstream_url(preset, "", "models") == "https://api.openai.com/v1/models"


def test_the_openai_preset_keeps_chat_completions() -> None:
    """kind "responses" is opt-in: an `openai` provider is still Chat Completions."""
    preset = preset_for_provider({"name": "openai"})
    assert preset.kind == "openai" and preset.responses_path == ""


def test_config_accepts_kind_responses() -> None:
    """`kind: "responses"` is a config value like the others."""
    config = structure({"providers": [{"name": "oai", "kind": "responses", "api_key": "sk-x"}]})
    assert config.providers[0].kind == "responses"


@pytest.mark.parametrize(
    ("model", "reasoning", "kept"),
    [
        ("gpt-5", "auto", True),
        ("o3", "auto", True),
        ("gpt-4.1", "auto", False),
        ("gpt-4.1", True, True),
        ("gpt-5", False, False),
    ],
)
def test_reasoning_goes_only_to_models_that_take_it(model: str, reasoning: Any, kept: bool) -> None:
    """REASONING_MODELS decides, and a provider's `reasoning: true|false` overrides it, as on the Chat path."""
    preset = preset_for_provider({"name": "oai", "kind": "responses", "reasoning": reasoning})
    assert takes_reasoning_on(preset, model) is kept


def test_max_output_tokens_is_clamped_to_the_models_limit() -> None:
    """Claude Code's 64000 becomes what gpt-4o takes; a provider's max_output_tokens beats the table."""
    preset = preset_for_provider({"name": "oai", "kind": "responses"})
    assert fit_responses_request({"max_output_tokens": 64000}, preset, "gpt-4o")["max_output_tokens"] == 16384
    assert fit_responses_request({"max_output_tokens": 64000}, preset, "gpt-5")["max_output_tokens"] == 64000
    capped = preset_for_provider({"name": "oai", "kind": "responses", "max_output_tokens": 1000})
    assert fit_responses_request({"max_output_tokens": 64000}, capped, "gpt-5")["max_output_tokens"] == 1000
