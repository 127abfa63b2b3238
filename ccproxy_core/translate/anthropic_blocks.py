"""Anthropic content blocks -> Chat Completions pieces: the per-block half of `chat_request`.

Each function takes one Anthropic block (or a `system` value) and the JSON path used in error
messages, and returns text or an OpenAI content part; which message a piece lands in, and the
ordering rule between tool calls and tool messages, stay in `chat_request`. Nothing here reads
the dialect: the one capability that matters per block, vision, is passed in as a flag.

What cannot be carried becomes a visible note rather than vanishing: an image for a model
without vision, a PDF or URL document, an unsupported image source. Images inside a
tool_result are returned apart from its text, since most providers reject images in `tool`
messages; the caller moves them to the user message that follows.
"""

from __future__ import annotations

from typing import Any

import orjson

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.core.wire import JSON

NO_VISION = "[image omitted: the model has no vision]"
TOOL_IMAGE_NOTE = "[the tool returned image(s); they follow in the next user message]"


def block_type(block: Any, path: str) -> str:
    if isinstance(block, dict):
        kind = block.get("type")
        if isinstance(kind, str):
            return kind
    raise InvalidRequest(f'{path}: expected an object with "type"')


def text_of(block: JSON, path: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f"{path}.text: expected a string")
    return text


def system_text(system: Any, path: str) -> str:
    if isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise InvalidRequest(f"{path}: expected a string or a list of text blocks")
    texts = []
    for i, block in enumerate(system):
        if block_type(block, f"{path}.{i}") == "text":
            text = text_of(block, f"{path}.{i}")
            if text:
                texts.append(text)
    return "\n\n".join(texts)


def document_text(block: JSON, path: str) -> str:
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequest(f"{path}.source: expected an object")
    kind = source.get("type")
    if kind == "text" and isinstance(source.get("data"), str):
        body = source["data"]
    elif kind == "content":
        inner = source.get("content")
        body = inner if isinstance(inner, str) else system_text(inner, f"{path}.source.content")
    elif kind == "base64" and source.get("media_type") == "application/pdf":
        body = "[PDF document omitted: the model cannot read PDF files]"
    elif kind == "url":
        body = f"[document omitted: {source.get('url')}]"
    else:
        body = "[document omitted]"
    title = block.get("title")
    return f"{title}\n\n{body}" if isinstance(title, str) and title else body


def image_part(block: JSON, path: str, *, vision: bool) -> JSON:
    """An OpenAI `image_url` part, or a text part saying why the image was left out."""
    if not vision:
        return {"type": "text", "text": NO_VISION}
    source = block.get("source")
    if not isinstance(source, dict):
        raise InvalidRequest(f"{path}.source: expected an object")
    kind = source.get("type")
    if kind == "base64":
        data, media = source.get("data"), source.get("media_type")
        if not isinstance(data, str):
            raise InvalidRequest(f"{path}.source.data: expected a base64 string")
        # some clients send a whole data URL as `data`; "base64," cannot occur in base64
        cut = data.find("base64,", 0, 200)
        if cut >= 0:
            data = data[cut + 7 :]
        url = f"data:{media if isinstance(media, str) else 'image/png'};base64,{data}"
    elif kind == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        return {"type": "text", "text": f"[image omitted: unsupported source {kind!r}]"}
    return {"type": "image_url", "image_url": {"url": url}}


def tool_result_content(block: JSON, path: str, *, vision: bool) -> tuple[str, list[JSON]]:
    """(text for the `tool` message, images that must move to a user message after it)."""
    content = block.get("content")
    images: list[JSON] = []
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        pieces: list[str] = []
        for k, item in enumerate(content):
            ipath = f"{path}.content.{k}"
            kind = block_type(item, ipath)
            if kind == "text":
                pieces.append(text_of(item, ipath))
            elif kind == "image":
                # most providers reject images in tool messages: they move to a user message
                part = image_part(item, ipath, vision=vision)
                if part["type"] == "text":
                    pieces.append(part["text"])
                else:
                    images.append(part)
            elif kind == "document":
                pieces.append(document_text(item, ipath))
        text = "\n".join(pieces)
    else:
        raise InvalidRequest(f"{path}.content: expected a string or a list of blocks")
    if images and not text:
        text = TOOL_IMAGE_NOTE
    if block.get("is_error") is True:
        text = "Error: " + text
    return text, images


def search_summary(content: Any) -> str:
    if not isinstance(content, list):
        return ""
    lines = [f"- {r.get('title', '')} ({r.get('url', '')})" for r in content if isinstance(r, dict)]
    return "\n[web search results]\n" + "\n".join(lines) + "\n" if lines else ""


def tool_arguments(value: Any) -> str:
    """A tool input as the JSON string Chat Completions wants in `arguments`."""
    if value is None:
        return "{}"
    return orjson.dumps(value).decode()
