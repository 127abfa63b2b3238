"""Every fact in which one provider differs from another, in one table.

A provider names a preset (or gets one by its name, its base URL's host, or its kind); all a
handler needs to know about it is a field of the `Preset`: endpoints, auth header, env key
names, `max_tokens` limits per model, rejected fields and schema keywords, and the
`ChatDialect` the translator reads. Handlers never branch on provider names.

This module is the table and the lookup (`preset_for_provider`), the endpoint URLs and the key
header; what a `Preset` decides for one model (its dialect, `apply_preset`, the reasoning
table) is providers/rules.py's.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from ccproxy_core.core.headers import ANTHROPIC_VERSION, ANTHROPIC_VERSION_DEFAULT
from ccproxy_core.providers.rules import AuthHeader, Preset
from ccproxy_core.translate.dialect import ChatDialect

PathKind = Literal["chat", "messages", "count_tokens", "models", "responses"]

# OpenRouter shows apps by these headers; a provider's `headers` in config override them.
ATTRIBUTION_URL = "https://github.com/ccproxy"
ATTRIBUTION_TITLE = "ccproxy"


_REASONING_DIALECT = ChatDialect(max_tokens_field="max_completion_tokens")
_OPENAI_REASONING = ("o1*", "o3*", "o4*", "gpt-5*")
# Claude Code asks for 32000-64000; older models answer 400 above their limit.
_OPENAI_MAX_OUTPUT = {
    "gpt-4o*": 16384,
    "chatgpt-4o*": 16384,
    "gpt-4.1*": 32768,
    "gpt-4-turbo*": 4096,
    "gpt-4": 8192,
    "gpt-4-0*": 8192,
    "gpt-3.5-turbo*": 4096,
    "o1-mini*": 65536,
    "o1*": 100000,
    "o3*": 100000,
    "o4-mini*": 100000,
    "gpt-5*": 128000,
}

PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        p.name: p
        for p in (
            Preset(
                name="anthropic",
                kind="anthropic",
                default_base_url="https://api.anthropic.com",
                chat_path="",
                messages_path="/v1/messages",
                count_tokens_path="/v1/messages/count_tokens",
                models_path="/v1/models",
                auth_header="x-api-key",
                env_keys=("ANTHROPIC_API_KEY",),
                extra_headers={ANTHROPIC_VERSION: ANTHROPIC_VERSION_DEFAULT},
            ),
            Preset(
                name="openai",
                kind="openai",
                default_base_url="https://api.openai.com/v1",
                env_keys=("OPENAI_API_KEY",),
                max_output_tokens=_OPENAI_MAX_OUTPUT,
                # Reasoning models reject `max_tokens` and non-default sampling parameters.
                dialect_overrides=dict.fromkeys(_OPENAI_REASONING, _REASONING_DIALECT),
                rejected_fields_by_model=dict.fromkeys(_OPENAI_REASONING, ("temperature", "top_p")),
            ),
            Preset(
                name="deepseek",
                kind="openai",
                default_base_url="https://api.deepseek.com",
                env_keys=("DEEPSEEK_API_KEY",),
                # "the valid range of max_tokens is [1, 8192]" for deepseek-chat.
                max_output_tokens={"deepseek-chat": 8192, "deepseek-reasoner": 65536},
                # Reasoning is chosen by model name; thinking mode with tools needs the earlier
                # `reasoning_content` sent back.
                dialect=ChatDialect(reasoning="none", echo_reasoning=True),
                # "deepseek-reasoner does not support this tool_choice" breaks WebSearch/WebFetch.
                models_without_forced_tool_choice=("deepseek-reasoner",),
            ),
            Preset(
                name="openrouter",
                kind="openai",
                default_base_url="https://openrouter.ai/api/v1",
                env_keys=("OPENROUTER_API_KEY",),
                extra_headers={"HTTP-Referer": ATTRIBUTION_URL, "X-Title": ATTRIBUTION_TITLE},
                dialect=ChatDialect(reasoning="openrouter"),
                # OpenRouter ignores `reasoning` for models without it, and knows its catalogue.
                reasoning_by_model=False,
            ),
            Preset(
                name="groq",
                kind="openai",
                default_base_url="https://api.groq.com/openai/v1",
                env_keys=("GROQ_API_KEY",),
                schema_dialect="groq",
                refused_schema_keywords=("$schema",),
                # Groq rejects `reasoning` (CCR commit 6f49b87a) and reasoning_effort on most models.
                rejected_fields=("reasoning",),
                dialect=ChatDialect(reasoning="none"),
            ),
            Preset(
                name="gemini",
                kind="openai",
                default_base_url="https://generativelanguage.googleapis.com/v1beta/openai",
                # Gemini's schemas are cleaned by an allowlist (`_GEMINI_KEEP`), not a refusal list.
                env_keys=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
                schema_dialect="gemini",
                max_output_tokens={"*gemini-1.5-*": 8192, "*gemini-2.0-*": 8192, "*gemini-2.5-*": 65536},
                # Each of these has come back as "Invalid JSON payload received. Unknown name".
                rejected_fields=(
                    "frequency_penalty",
                    "presence_penalty",
                    "top_k",
                    "reasoning",
                    "prompt_cache_key",
                    "parallel_tool_calls",
                    "enable_thinking",
                    "user",
                ),
                dialect=ChatDialect(send_user=False),
            ),
            Preset(
                name="ollama",
                kind="openai",
                default_base_url="http://localhost:11434/v1",
                auth_header="none",
                env_keys=("OLLAMA_API_KEY",),
            ),
            Preset(
                name="mistral",
                kind="openai",
                default_base_url="https://api.mistral.ai/v1",
                env_keys=("MISTRAL_API_KEY",),
                dialect=ChatDialect(tool_id_style="mistral9"),
            ),
            Preset(name="xai", kind="openai", default_base_url="https://api.x.ai/v1", env_keys=("XAI_API_KEY",)),
            Preset(
                # The Responses API (`{base}/responses`): Responses clients pass through, Messages
                # and Chat clients are translated (for models served only there).
                name="openai-responses",
                kind="responses",
                default_base_url="https://api.openai.com/v1",
                chat_path="",
                responses_path="/responses",
                env_keys=("OPENAI_API_KEY",),
                max_output_tokens=_OPENAI_MAX_OUTPUT,
            ),
            Preset(
                # ChatGPT subscription accounts (`auth: "oauth"`): the Codex backend serves Responses
                # traffic only, passed through as the client sent it (the scope rule, accounts/codex.py).
                name="codex",
                kind="codex",
                default_base_url="https://chatgpt.com/backend-api/codex",
                chat_path="",
                models_path="",
                responses_path="/responses",
            ),
            Preset(name="custom", kind="openai"),
        )
    }
)

# Provider names people use for a preset under another name.
_ALIASES = {"google": "gemini", "grok": "xai", "claude": "anthropic"}


def preset_for(name: str, preset: str = "") -> Preset:
    """By explicit preset, else by provider name, else `custom`. Unknown presets are refused."""
    if preset:
        key = _ALIASES.get(preset.lower(), preset.lower())
        if key not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known presets: {', '.join(PRESETS)}")
        return PRESETS[key]
    key = _ALIASES.get(name.lower(), name.lower())
    return PRESETS.get(key, PRESETS["custom"])


# The preset whose endpoints and auth a provider of each `kind` takes when its preset is of another kind.
_KIND_TEMPLATES = {"anthropic": "anthropic", "openai": "custom", "responses": "openai-responses", "codex": "codex"}


def preset_for_provider(provider: Mapping[str, Any]) -> Preset:
    """The preset for one provider of the native config, with that provider's overrides.

    Lookup: `preset`, then the name, then the host of `api_base_url` (a provider called
    "work" at api.deepseek.com is still DeepSeek), then `kind`. The config's `kind`,
    `api_base_url`, `max_output_tokens`, `headers` and `reasoning` then win over the table.
    """
    name, explicit = str(provider.get("name") or ""), str(provider.get("preset") or "")
    base = str(provider.get("api_base_url") or "")
    found = preset_for(name, explicit)
    host = urlsplit(base).netloc.lower()  # with the port: localhost:1234 is not Ollama
    if found.name == "custom" and not explicit and host:
        found = next(
            (p for p in PRESETS.values() if p.default_base_url and urlsplit(p.default_base_url).netloc == host), found
        )
    kind = provider.get("kind") or found.kind
    if found.name == "custom" and kind == "responses":
        found = PRESETS["openai-responses"]  # `kind: "responses"` alone is OpenAI's Responses API
    if found.name == "custom" and kind == "codex":
        found = PRESETS["codex"]  # `kind: "codex"` alone is the ChatGPT Codex backend
    if kind in _KIND_TEMPLATES and kind != found.kind:
        # An Anthropic-compatible endpoint of an OpenAI-style vendor (DeepSeek's /anthropic,
        # Ollama's /v1/messages) speaks Messages with an x-api-key, and the reverse; OpenAI's
        # own host named with `kind: "responses"` is its Responses API.
        t = PRESETS[_KIND_TEMPLATES[kind]]
        found = attrs.evolve(
            found,
            kind=t.kind,
            chat_path=t.chat_path,
            messages_path=t.messages_path,
            count_tokens_path=t.count_tokens_path,
            models_path=t.models_path,
            responses_path=t.responses_path,
            auth_header=t.auth_header,
            extra_headers=t.extra_headers,
        )
    cap = provider.get("max_output_tokens")
    headers = {**found.extra_headers, **(provider.get("headers") or {})}
    reasoning = provider.get("reasoning", "auto")
    return attrs.evolve(
        found,
        default_base_url=base or found.default_base_url,
        max_output_cap=int(cap) if cap else found.max_output_cap,
        extra_headers=headers,
        reasoning=reasoning if isinstance(reasoning, bool) else "auto",
    )


def upstream_url(preset: Preset, api_base_url: str, path_kind: PathKind) -> str:
    """The URL for one kind of call; the base may end in `/`, in `/v1`, or be the whole endpoint."""
    path = {
        "chat": preset.chat_path,
        "messages": preset.messages_path,
        "count_tokens": preset.count_tokens_path,
        "models": preset.models_path,
        "responses": preset.responses_path,
    }[path_kind]
    if not path:
        raise ValueError(f"a {preset.kind} provider ({preset.name}) has no {path_kind} endpoint")
    base = (api_base_url or preset.default_base_url).rstrip("/")
    if not base:
        raise ValueError(f"provider preset {preset.name!r} needs an api_base_url")
    for endpoint in (preset.count_tokens_path, preset.chat_path, preset.messages_path, preset.responses_path):
        if endpoint and base.endswith(endpoint):
            base = base[: -len(endpoint)]
            break
    if base.endswith("/v1") and path.startswith("/v1/"):
        path = path[3:]
    return base + path


def responses_url(preset: Preset) -> str:
    """The Responses endpoint of a provider's preset (whose base is the configured `api_base_url`)."""
    return upstream_url(preset, "", "responses")


def key_headers(style: AuthHeader, key: str) -> dict[str, str]:
    """The header that carries a key in the given style (none for an empty key)."""
    if not key or style == "none":
        return {}
    return {"x-api-key": key} if style == "x-api-key" else {"Authorization": f"Bearer {key}"}
