"""The knobs of one OpenAI-compatible upstream that change how a request is translated.

Provider presets (`ccproxy_core.providers.presets`) build one `ChatDialect` per provider; the
Anthropic -> Chat Completions translator reads it. Quirks that are pure post-processing of the
translated request (clamping `max_tokens`, dropping rejected fields, cleaning tool schemas)
belong to the preset, not here.
"""

from __future__ import annotations

from typing import Literal

from attrs import frozen

ReasoningStyle = Literal["none", "effort", "openrouter"]
ToolIdStyle = Literal["passthrough", "mistral9"]


@frozen
class ChatDialect:
    # OpenAI reasoning models (o-series, gpt-5) reject `max_tokens`.
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    # Ask for `stream_options.include_usage`; a few servers reject the field.
    stream_usage: bool = True
    # `metadata.user_id` -> `user`; some providers limit its length or reject it.
    send_user: bool = True
    # How `thinking.budget_tokens` is expressed: `reasoning_effort`, OpenRouter's
    # `reasoning: {effort}`, or not at all.
    reasoning: ReasoningStyle = "effort"
    # DeepSeek thinking mode needs earlier reasoning echoed back as `reasoning_content`.
    echo_reasoning: bool = False
    # Mistral accepts only 9-character alphanumeric tool-call ids.
    tool_id_style: ToolIdStyle = "passthrough"
    # A model without vision gets a text note instead of the image.
    supports_images: bool = True


DEFAULT_DIALECT = ChatDialect()
