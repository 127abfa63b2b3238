"""OpenAI message content -> Anthropic content blocks: the per-message half of `messages_request`.

Each function takes one OpenAI message (or its `content`) and the field path used in error
messages, and returns Anthropic blocks; merging turns and everything request-wide stays in
`messages_request`. Blank text is dropped rather than sent (Anthropic rejects empty and
whitespace-only text blocks), and tool-call ids are rewritten the same way on both sides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.core.inbound import json_too_deep
from ccproxy_core.core.wire import JSON

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_BAD_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


def _text(text: str, part: Mapping[str, Any] | None = None) -> JSON:
    block: JSON = {"type": "text", "text": text}
    if part is not None and "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def system_blocks(content: Any, path: str) -> list[JSON]:
    if isinstance(content, str):
        return [_text(content)] if content.strip() else []
    if isinstance(content, list):
        blocks = []
        for j, part in enumerate(content):
            text = part.get("text") if isinstance(part, dict) and part.get("type") == "text" else None
            if not isinstance(text, str):
                raise InvalidRequest(f"{path}.content.{j}: expected a text part")
            if text.strip():
                blocks.append(_text(text, part))
        return blocks
    raise InvalidRequest(f"{path}.content: expected a string or a list of text parts")


def user_blocks(content: Any, path: str) -> list[JSON]:
    if isinstance(content, str):
        return [_text(content)] if content.strip() else []  # Anthropic rejects blank text blocks
    if isinstance(content, list):
        return [block for j, part in enumerate(content) if (block := _part(part, f"{path}.content.{j}"))]
    raise InvalidRequest(f"{path}.content: expected a string or a list of parts")


def _part(part: Any, path: str) -> JSON | None:
    if not isinstance(part, dict):
        raise InvalidRequest(f"{path}: expected a content part object")
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequest(f"{path}.text: expected a string")
        return _text(text, part) if text.strip() else None
    if kind == "image_url":
        spec = part.get("image_url")
        url = spec.get("url") if isinstance(spec, dict) else spec
        if not isinstance(url, str):
            raise InvalidRequest(f"{path}.image_url.url: expected a string")
        return _image(url, f"{path}.image_url.url")
    if kind == "file":
        spec = part.get("file")
        if not isinstance(spec, dict):
            raise InvalidRequest(f"{path}.file: expected an object")
        return _document(spec, f"{path}.file")
    if kind in ("image", "document") and isinstance(part.get("source"), Mapping):
        return dict(part)  # already an Anthropic block (LiteLLM users send these)
    raise InvalidRequest(f"{path}.type: content parts of type {kind!r} cannot be sent to Anthropic")


def _data_url(url: str, path: str) -> tuple[str, str]:
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise InvalidRequest(f"{path}: expected a base64 data URL (data:<type>;base64,…)")
    return header[:-7].lower(), data


def _image(url: str, path: str) -> JSON:
    if url.startswith("data:"):
        media_type, data = _data_url(url, path)
        media_type = "image/jpeg" if media_type == "image/jpg" else media_type
        if media_type not in _IMAGE_TYPES:
            raise InvalidRequest(f"{path}: image type {media_type!r} is not supported (jpeg, png, gif, webp)")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest(f"{path}: expected an http(s) URL or a data URL")


def _document(spec: Mapping[str, Any], path: str) -> JSON:
    data = spec.get("file_data")
    if not isinstance(data, str) or not data:
        if "file_id" in spec:
            raise InvalidRequest(f"{path}.file_id: uploaded file ids cannot be resolved; send file_data")
        raise InvalidRequest(f"{path}.file_data: expected a base64 string or data URL")
    if data.startswith("data:"):
        media_type, data = _data_url(data, f"{path}.file_data")
        if media_type != "application/pdf":
            raise InvalidRequest(f"{path}.file_data: only PDF files can be sent, got {media_type!r}")
    source = {"type": "base64", "media_type": "application/pdf", "data": data}
    block: JSON = {"type": "document", "source": source}
    filename = spec.get("filename")
    if isinstance(filename, str) and 0 < len(filename) <= 500:
        block["title"] = filename
    return block


def _tool_id(call_id: Any, path: str) -> str:
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{path}: expected a non-empty string")
    # Anthropic allows [a-zA-Z0-9_-] only; ids minted by other providers may not fit, and the
    # same rewrite on both sides keeps tool_use and tool_result paired.
    return _BAD_ID_CHARS.sub("_", call_id) if _BAD_ID_CHARS.search(call_id) else call_id


def assistant_blocks(msg: Mapping[str, Any], path: str) -> list[JSON]:
    blocks: list[JSON] = []
    for echoed in msg.get("thinking_blocks") or ():
        # Only signed blocks can go back; an unsigned one would be rejected.
        if isinstance(echoed, dict) and echoed.get("type") == "thinking" and echoed.get("signature"):
            blocks.append(
                {"type": "thinking", "thinking": str(echoed.get("thinking") or ""), "signature": echoed["signature"]}
            )
        elif isinstance(echoed, dict) and echoed.get("type") == "redacted_thinking" and echoed.get("data"):
            blocks.append({"type": "redacted_thinking", "data": echoed["data"]})
    content = msg.get("content")
    if isinstance(content, str):
        if content.strip():
            blocks.append(_text(content))
    elif isinstance(content, list):
        for j, part in enumerate(content):
            text = part.get("text", part.get("refusal")) if isinstance(part, dict) else None
            if not isinstance(text, str):
                raise InvalidRequest(f"{path}.content.{j}: expected a text or refusal part")
            if text.strip():
                blocks.append(_text(text, part))
    elif content is not None:
        raise InvalidRequest(f"{path}.content: expected a string, a list of parts or null")
    calls = msg.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise InvalidRequest(f"{path}.tool_calls: expected a list")
    for k, call in enumerate(calls or ()):
        where = f"{path}.tool_calls.{k}"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise InvalidRequest(f"{where}.function: expected an object")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"{where}.function.name: expected a non-empty string")
        blocks.append(
            {
                "type": "tool_use",
                "id": _tool_id(call.get("id"), f"{where}.id"),
                "name": name,
                "input": parse_arguments(function.get("arguments")),
            }
        )
    return blocks


def tool_result_block(msg: Mapping[str, Any], path: str) -> JSON:
    tool_use_id = _tool_id(msg.get("tool_call_id"), f"{path}.tool_call_id")
    block: JSON = {"type": "tool_result", "tool_use_id": tool_use_id}
    content = msg.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif isinstance(content, list):
        parts = [part for j, raw in enumerate(content) if (part := _part(raw, f"{path}.content.{j}"))]
        if parts:
            block["content"] = parts
    elif content is not None:
        raise InvalidRequest(f"{path}.content: expected a string or a list of parts")
    return block


def mark_cache(cache_control: Any, blocks: list[JSON]) -> None:
    # LiteLLM-style `cache_control` on a whole message marks its last block.
    if isinstance(cache_control, dict):
        for block in reversed(blocks):
            if block["type"] not in ("thinking", "redacted_thinking"):
                block["cache_control"] = dict(cache_control)
                return


def parse_arguments(arguments: Any) -> JSON:
    """Tool-call arguments (a JSON string) as the object Anthropic wants in `tool_use.input`.

    Anything that is not a JSON object (or is one nested too deep to pass on) is kept as
    `{"raw": "..."}` rather than refused: it is the model's own earlier output, and refusing it
    would wedge the conversation.
    """
    if isinstance(arguments, dict):
        return dict(arguments)
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    if not isinstance(arguments, str):
        return {"raw": orjson.dumps(arguments).decode()}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"raw": arguments}
    # Too deep to re-encode (inbound.py): kept as the text it came as, like any other non-object.
    return value if isinstance(value, dict) and not json_too_deep(value, text=arguments) else {"raw": arguments}
