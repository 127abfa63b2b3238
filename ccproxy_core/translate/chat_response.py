"""OpenAI Chat Completions response -> Anthropic Message, plus the pieces the stream shares.

`chat_to_message` builds the Message in Anthropic's block order (thinking, text, tool_use),
whatever order the upstream used. The helpers below it are shared with `chat_stream`:
`stop_reason_for`, `anthropic_usage`, and (from `tool_arguments`) `parse_tool_arguments` and
`close_json_object`, so a streamed answer and a non-streamed one come out the same.

Thinking made from another provider's reasoning gets a signature that starts with
`SYNTHETIC_SIGNATURE_PREFIX`: clients insist on a signature, and the prefix lets the proxy drop
the block before the history reaches real Anthropic, which would reject it.

Tool arguments are never handed over as a string: Claude Code validates `input` against the
tool schema (see `tool_arguments`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ccproxy_core.core.errors import UpstreamError
from ccproxy_core.core.ids import new_id
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.chat_request import SYNTHETIC_SIGNATURE_PREFIX

# re-exported: chat_stream and responses_stream read them here, with the rest of the shared pieces
from ccproxy_core.translate.tool_arguments import close_json_object as close_json_object
from ccproxy_core.translate.tool_arguments import parse_tool_arguments as parse_tool_arguments
from ccproxy_core.translate.tool_names import ToolNames, safe_tool_use_id

# `content_filter` has no Anthropic twin; `end_turn` is what older clients understand.
_STOP_REASONS: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "end_turn",
}


def new_message_id() -> str:
    return new_id("msg_")


def synthetic_signature(seed: str) -> str:
    return SYNTHETIC_SIGNATURE_PREFIX + hashlib.sha256(seed.encode()).hexdigest()[:32]


def stop_reason_for(finish_reason: Any, has_tool_use: bool) -> str:
    """Anthropic `stop_reason` for an OpenAI `finish_reason`.

    Any tool_use block makes it `tool_use` (some providers say `stop` after tool calls), except
    after `length`: arguments cut off by the token limit must not be run as a tool call.
    """
    if has_tool_use and finish_reason != "length":
        return "tool_use"
    if isinstance(finish_reason, str):
        return _STOP_REASONS.get(finish_reason, "end_turn")
    return "end_turn"


def anthropic_usage(usage: Any, *, input_estimate: int = 0, output_estimate: int = 0) -> JSON:
    """Anthropic usage (all four counters) from an OpenAI `usage` object, or the estimates."""
    if not isinstance(usage, dict):
        return {
            "input_tokens": input_estimate,
            "output_tokens": output_estimate,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
    prompt_details = usage.get("prompt_tokens_details")
    if not isinstance(prompt_details, dict):
        prompt_details = {}
    cache_read = _count(prompt_details.get("cached_tokens")) or _count(usage.get("prompt_cache_hit_tokens"))
    cache_write = (
        _count(usage.get("cache_creation_input_tokens"))
        or _count(prompt_details.get("cache_creation_tokens"))
        or _count(prompt_details.get("cache_write_tokens"))
    )
    prompt = _count(usage.get("prompt_tokens"))
    return {
        # OpenAI's prompt_tokens include the cached part; Anthropic counts it separately
        "input_tokens": max(0, prompt - cache_read - cache_write),
        "output_tokens": _count(usage.get("completion_tokens")),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
    }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def chat_to_message(resp: JSON, *, model: str, names: ToolNames) -> JSON:
    """Translate a non-streamed Chat Completions answer; `model` is the name the client asked for."""
    if not isinstance(resp, dict) or resp.get("error"):
        raise in_band_error(resp)
    choices = resp.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamError(502, "api_error", "upstream answered 200 without choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        message = {}
    msg_id = new_message_id()
    content: list[JSON] = []

    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": synthetic_signature(f"{msg_id}:0")})
    text = _text(message.get("content")) or _text(message.get("refusal"))
    if text:
        content.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        legacy = message.get("function_call")
        calls = [{"function": legacy}] if isinstance(legacy, dict) else []
    has_tool_use = False
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            continue
        content.append(
            {
                "type": "tool_use",
                "id": safe_tool_use_id(call.get("id")),
                "name": names.to_client(function["name"]),
                "input": parse_tool_arguments(function.get("arguments")),
            }
        )
        has_tool_use = True
    if not content:
        content.append({"type": "text", "text": ""})

    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason_for(choice.get("finish_reason"), has_tool_use),
        "stop_sequence": None,
        "usage": anthropic_usage(resp.get("usage")),
    }


def in_band_error(body: Any) -> UpstreamError:
    """An error inside a 200 answer; OpenRouter puts the real HTTP status in `error.code`."""
    err = body.get("error") if isinstance(body, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    status = code if isinstance(code, int) and 400 <= code < 600 else 502
    return UpstreamError.from_openai(status, body if isinstance(body, dict) else {"error": str(body)})


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers answer with content parts
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""
