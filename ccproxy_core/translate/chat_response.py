"""OpenAI Chat Completions response -> Anthropic Message, plus the pieces the stream shares.

`chat_to_message` builds the Message in Anthropic's block order (thinking, text, tool_use),
whatever order the upstream used. The helpers below it are shared with `chat_stream`:
`stop_reason_for`, `anthropic_usage`, `parse_tool_arguments` and `close_json_object`, so a
streamed answer and a non-streamed one come out the same.

Thinking made from another provider's reasoning gets a signature that starts with
`SYNTHETIC_SIGNATURE_PREFIX`: clients insist on a signature, and the prefix lets the proxy drop
the block before the history reaches real Anthropic, which would reject it.

Tool arguments are never handed over as a string: Claude Code validates `input` against the
tool schema. They are parsed strictly, then repaired (trailing commas, unclosed strings and
brackets, a Markdown fence), else replaced by `{}`.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import orjson

from ccproxy_core.core.errors import UpstreamError
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.chat_request import SYNTHETIC_SIGNATURE_PREFIX
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
    return "msg_" + secrets.token_hex(12)


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


def parse_tool_arguments(raw: Any) -> JSON:
    """Tool arguments as an object: parsed, else repaired, else `{}`."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _repair(raw)
    if isinstance(value, str):  # double-encoded by some providers
        return parse_tool_arguments(value) if value.lstrip().startswith("{") else {}
    return value if isinstance(value, dict) else {}


def _repair(raw: str) -> JSON:
    start = raw.find("{")
    scanned = _scan(raw[start:]) if start >= 0 else None
    if scanned is None:
        return {}
    body, suffix, _ = scanned
    try:
        value = orjson.loads(body + suffix)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def close_json_object(prefix: str) -> str | None:
    """What to append to already-sent argument text so it becomes a JSON object.

    A stream cannot take back what it sent, so only appending is allowed: `""` when `prefix`
    is complete, `"{}"` when it is blank, None when no suffix can make it an object.
    """
    if not prefix.strip():
        return "{}"
    try:
        value = orjson.loads(prefix)
    except orjson.JSONDecodeError:
        scanned = _scan(prefix)
        if scanned is None or scanned[2] or not prefix.lstrip().startswith("{"):
            return None
        suffix = scanned[1]
        try:
            value = orjson.loads(prefix + suffix)
        except orjson.JSONDecodeError:
            return None
        return suffix if isinstance(value, dict) else None
    return "" if isinstance(value, dict) else None


_LITERALS = ("true", "false", "null")
_BARE = frozenset("0123456789-+.eEtrufalsn")
_SPACE = frozenset(" \t\r\n")


def _scan(text: str) -> tuple[str, str, bool] | None:
    """Close what a truncated JSON value left open.

    Returns (body, suffix, edited): `body` is `text` cut after the top-level value, minus
    trailing commas and a half-written escape (`edited` says whether any was removed), and
    `body + suffix` is complete. None when `text` holds something no JSON can contain.
    """
    out: list[str] = []
    frames: list[list[str]] = []  # [opener, what it waits for: key|colon|value|next]
    in_str = is_key = False
    esc_at, hex_left, comma_at = -1, 0, -1
    token: list[str] = []
    edited = False

    def value_done() -> None:
        if frames:
            frames[-1][1] = "next"

    for ch in text:
        if in_str:
            out.append(ch)
            if hex_left:
                hex_left -= 1
                esc_at = -1 if not hex_left else esc_at
            elif esc_at >= 0:
                hex_left, esc_at = (4, esc_at) if ch == "u" else (0, -1)
            elif ch == "\\":
                esc_at = len(out) - 1
            elif ch == '"':
                in_str = False
                if is_key:
                    frames[-1][1] = "colon"
                else:
                    value_done()
            continue
        if token and ch not in _BARE:
            token.clear()
            value_done()
        if ch in _SPACE:
            out.append(ch)
            continue
        if ch in "}]":
            if comma_at >= 0:
                out[comma_at] = ""
                edited = True
            comma_at = -1
            if not frames:
                return None
            frames.pop()
            out.append(ch)
            if not frames:
                return "".join(out), "", edited
            value_done()
            continue
        comma_at = -1
        if ch == '"':
            in_str = True
            is_key = bool(frames) and frames[-1][0] == "{" and frames[-1][1] == "key"
        elif ch in "{[":
            value_done()  # the new container is the parent's value
            frames.append([ch, "key" if ch == "{" else "value"])
        elif ch == ":":
            if not frames:
                return None
            frames[-1][1] = "value"
        elif ch == ",":
            if not frames:
                return None
            frames[-1][1] = "key" if frames[-1][0] == "{" else "value"
            comma_at = len(out)
        elif ch in _BARE:
            token.append(ch)
        else:
            return None
        out.append(ch)

    if not frames:
        return None
    suffix: list[str] = []
    if in_str:
        if esc_at >= 0:  # an escape cut in half cannot be completed sensibly
            del out[esc_at:]
            edited = True
        suffix.append('"')
        if is_key:
            frames[-1][1] = "colon"
        else:
            value_done()
    elif token:
        word = "".join(token)
        rest = next((lit[len(word) :] for lit in _LITERALS if lit.startswith(word)), None)
        if rest is not None:
            suffix.append(rest)
        elif word[-1] in "-+.eE":
            suffix.append("0")
        value_done()
    if comma_at >= 0:
        out[comma_at] = ""
        edited = True
        frames[-1][1] = "next"
    for opener, waiting in reversed(frames):
        if opener == "{":
            suffix.append(":null}" if waiting == "colon" else "null}" if waiting == "value" else "}")
        else:
            suffix.append("]")
    return "".join(out), "".join(suffix), edited
