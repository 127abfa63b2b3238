"""The `responses` provider kind in the preset table: which preset, which URL, which checks."""

from __future__ import annotations

import pytest

from ccproxy_core.config.model import structure
from ccproxy_core.providers.presets import preset_for_provider, responses_url, upstream_url


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
