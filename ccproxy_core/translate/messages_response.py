"""Anthropic Message -> OpenAI `chat.completion` (non-streaming), and the mappings the stream shares.

An OpenAI client talking to a Claude provider gets back one Anthropic `Message`; this module
turns it into the `chat.completion` object the openai SDK parses:

- `content` is the text blocks joined in order, `null` when the answer is only tool calls;
- `tool_use` blocks become `tool_calls` with `arguments` = compact JSON of `input`;
- thinking text goes to `reasoning_content`, and the blocks with their signatures to
  `thinking_blocks` (a LiteLLM-compatible extra field) so a client can echo them back on the
  next turn, which Anthropic requires while a tool loop runs with thinking on;
- in JSON mode (`response_format` became the forced tool `json_tool_call`, see
  `messages_request`) that tool's input is unwrapped into `content`.

The small mappings (`finish_reason`, `chat_usage`, `chat_id`, `leading_blank`) live here and
`messages_stream` imports them, so streamed and non-streamed answers agree field for field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from ccproxy_core.core.wire import JSON

# The forced tool that carries `response_format` (LiteLLM uses the same name).
JSON_TOOL_NAME = "json_tool_call"

# Anthropic stop_reason -> OpenAI finish_reason (the inverse of translation.md §4).
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any, *, json_only: bool = False) -> str:
    """The OpenAI finish_reason for an Anthropic stop_reason.

    `json_only` says the only tool called was the JSON-mode tool: to the client that is an
    ordinary answer, not a tool call.
    """
    if json_only and stop_reason == "tool_use":
        return "stop"
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def chat_usage(usage: Mapping[str, Any]) -> JSON:
    """OpenAI `usage` from Anthropic usage; every Anthropic field is optional.

    Anthropic reports cached input apart from `input_tokens`; OpenAI's `prompt_tokens` is the
    whole prompt, so the cache reads and writes are added back in.
    """
    fresh = _count(usage.get("input_tokens"))
    read = _count(usage.get("cache_read_input_tokens"))
    written = _count(usage.get("cache_creation_input_tokens"))
    completion = _count(usage.get("output_tokens"))
    prompt = fresh + read + written
    out: JSON = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
    }
    details = usage.get("output_tokens_details")
    if isinstance(details, dict) and "thinking_tokens" in details:
        out["completion_tokens_details"] = {"reasoning_tokens": _count(details["thinking_tokens"])}
    return out


def chat_id(message_id: Any) -> str:
    """`chatcmpl-…` derived from the Anthropic message id, so logs on both sides line up."""
    if isinstance(message_id, str) and message_id:
        return "chatcmpl-" + message_id.removeprefix("msg_")
    return "chatcmpl-ccproxy"


def leading_blank(blocks: list[Any]) -> bool:
    """True when block 0 is a whitespace-only text block.

    Adaptive thinking on claude-opus-4-6 opens with a text block whose only text is "\\n\\n"
    before the thinking block; passing it on would start every answer with a blank line.
    """
    if not blocks:
        return False
    first = blocks[0]
    if not isinstance(first, dict) or first.get("type") != "text":
        return False
    text = first.get("text")
    return not isinstance(text, str) or not text.strip()


def dumps_compact(value: Any) -> str:
    return orjson.dumps(value).decode()


def message_to_chat(msg: JSON, *, model: str, json_mode: bool = False, created: int) -> JSON:
    """One Anthropic Message as an OpenAI `chat.completion`; `model` is the name the client asked for."""
    blocks = msg.get("content")
    if not isinstance(blocks, list):
        blocks = []
    texts: list[str] = []
    calls: list[JSON] = []
    reasoning: list[str] = []
    thinking_blocks: list[JSON] = []
    json_used = False
    for block in blocks[1:] if leading_blank(blocks) else blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            arguments = dumps_compact(block.get("input") or {})
            if json_mode and block.get("name") == JSON_TOOL_NAME:
                # Block order is kept: the stream can only append, so both paths do the same.
                texts.append(arguments)
                json_used = True
                continue
            calls.append(
                {
                    "id": str(block.get("id") or ""),
                    "type": "function",
                    "function": {"name": str(block.get("name") or ""), "arguments": arguments},
                }
            )
        elif kind == "thinking":
            thought = str(block.get("thinking") or "")
            reasoning.append(thought)
            thinking_blocks.append(
                {"type": "thinking", "thinking": thought, "signature": str(block.get("signature") or "")}
            )
        elif kind == "redacted_thinking":
            thinking_blocks.append({"type": "redacted_thinking", "data": str(block.get("data") or "")})
        # server tool blocks (web search and its results) have no Chat Completions equivalent

    content = "".join(texts)
    message: JSON = {
        "role": "assistant",
        "content": None if calls and not content else content,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if thinking_blocks:
        message["thinking_blocks"] = thinking_blocks
    usage = msg.get("usage")
    return {
        "id": chat_id(msg.get("id")),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish_reason(msg.get("stop_reason"), json_only=json_used and not calls),
                "logprobs": None,
            }
        ],
        "usage": chat_usage(usage if isinstance(usage, dict) else {}),
    }
