"""Anthropic messages -> Responses input items: the request half of `responses_upstream`, which
holds the rules (read its docstring first). Tools and tool_choice are read by `function_tools`,
as on the Chat path.

Also the one place for the signature format of thinking that stands for a Responses
`reasoning` item: `reasoning_signature` writes it (answer side), `reasoning_item` reads it
back (request side). The payload is the item's id and its `encrypted_content`, base64url JSON
behind `REASONING_SIGNATURE_PREFIX`, as `responses_response.encode_thinking` packs the other
direction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.anthropic_blocks import (
    block_type,
    document_text,
    image_part,
    system_text,
    text_of,
    tool_arguments,
    tool_result_content,
)
from ccproxy_core.translate.chat_request import SYNTHETIC_SIGNATURE_PREFIX
from ccproxy_core.translate.pending import MISSING_RESULT, PendingCalls
from ccproxy_core.translate.tool_names import ToolNames

# Inside the synthetic prefix, so the Anthropic path strips these blocks like any other
# ccproxy-made thinking (`strip_synthetic_thinking`) before real Anthropic sees them.
REASONING_SIGNATURE_PREFIX = SYNTHETIC_SIGNATURE_PREFIX + "responses-v1:"
_MAX_CALL_ID = 64  # function_call_output.call_id

# -- reasoning items in thinking signatures -------------------------------------------------


def reasoning_signature(item: Mapping[str, Any]) -> str:
    """A Responses reasoning item as the signature of the thinking block that stands for it."""
    payload = {"id": str(item.get("id") or ""), "e": str(item.get("encrypted_content") or "")}
    return REASONING_SIGNATURE_PREFIX + base64.urlsafe_b64encode(orjson.dumps(payload)).decode()


def reasoning_item(block: Mapping[str, Any]) -> JSON | None:
    """The reasoning item a thinking block's signature carries, or None (not ours, or no content)."""
    signature = block.get("signature")
    if not isinstance(signature, str) or not signature.startswith(REASONING_SIGNATURE_PREFIX):
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(signature[len(REASONING_SIGNATURE_PREFIX) :]))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("e"), str) or not payload["e"]:
        return None  # without encrypted content the item cannot be replayed (store is false)
    thinking = block.get("thinking")
    summary = [{"type": "summary_text", "text": thinking}] if isinstance(thinking, str) and thinking else []
    item: JSON = {"type": "reasoning", "summary": summary, "encrypted_content": payload["e"]}
    if isinstance(payload.get("id"), str) and payload["id"]:
        item["id"] = payload["id"]
    return item


# -- conversation ---------------------------------------------------------------------------


class InputItems:
    """Anthropic messages -> Responses input items, in one pass.

    `pending` holds the calls of the last assistant turn that still need an output, and the
    system messages that wait behind those outputs."""

    def __init__(self, names: ToolNames) -> None:
        self.names = names
        self.items: list[JSON] = []
        self.pending = PendingCalls(_missing_output)

    def add(self, message: Any, path: str) -> None:
        if not isinstance(message, dict):
            raise InvalidRequest(f"{path}: expected an object")
        role, content = message.get("role"), message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise InvalidRequest(f"{path}.content: expected a string or a list of blocks")
        if role == "user":
            self._user(content, f"{path}.content")
        elif role == "assistant":
            self.items.extend(self.pending.settle())
            self._assistant(content, f"{path}.content")
        elif role == "system":  # Claude Code sends these mid-conversation
            text = system_text(content, f"{path}.content")
            if text:
                note = {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": text}]}
                self.items.extend(self.pending.note(note))
        else:
            raise InvalidRequest(f'{path}.role: expected "user", "assistant" or "system"')

    def finish(self) -> list[JSON]:
        self.items.extend(self.pending.settle())
        return self.items

    def _user(self, content: list[Any], path: str) -> None:
        parts: list[JSON] = []
        for j, block in enumerate(content):
            bpath = f"{path}.{j}"
            kind = block_type(block, bpath)
            if kind == "tool_result":
                self._result(block, bpath, parts)
            elif kind == "text":
                text = text_of(block, bpath)
                if text:
                    parts.append({"type": "input_text", "text": text})
            elif kind == "image":
                parts.append(_input_part(image_part(block, bpath, vision=True)))
            elif kind == "document":
                parts.append(_document(block, bpath))
            # thinking echoed by a client and unknown types have no user equivalent
        self.items.extend(self.pending.settle())
        if parts:
            self.items.append({"type": "message", "role": "user", "content": parts})

    def _result(self, block: JSON, path: str, parts: list[JSON]) -> None:
        tool_use_id = block.get("tool_use_id")
        if not isinstance(tool_use_id, str) or not tool_use_id:
            raise InvalidRequest(f"{path}.tool_use_id: expected a string")
        text, images = tool_result_content(block, path, vision=True)
        call_id = _call_id(tool_use_id)
        if not self.pending.answer(call_id):  # its call is not in the turn before: keep it as text
            parts.append({"type": "input_text", "text": f"[output of tool call {tool_use_id}]\n{text}"})
            parts.extend(_input_part(image) for image in images)
            return
        output: str | list[JSON] = text
        if images:
            output = [{"type": "input_text", "text": text}, *(_input_part(image) for image in images)]
        self.items.append({"type": "function_call_output", "call_id": call_id, "output": output})

    def _assistant(self, content: list[Any], path: str) -> None:
        """Reasoning and text in their order, then the calls: nothing may stand between a call
        and its output, which comes with the next user turn. OpenAI refuses a reasoning item
        without the item that followed it, so reasoning that ends the turn is left out."""
        turn: list[JSON] = []
        texts: list[str] = []
        calls: list[JSON] = []
        for j, block in enumerate(content):
            bpath = f"{path}.{j}"
            kind = block_type(block, bpath)
            if kind == "text":
                texts.append(text_of(block, bpath))
            elif kind == "tool_use":
                calls.append(self._call(block, bpath))
            elif kind == "thinking":
                item = reasoning_item(block)
                if item is not None:
                    _flush_text(texts, turn)
                    turn.append(item)
            # redacted_thinking, server tools (they ran inside Anthropic) and unknown types stay behind
        _flush_text(texts, turn)
        while turn and not calls and turn[-1]["type"] == "reasoning":
            turn.pop()
        self.items.extend(turn)
        self.items.extend(calls)

    def _call(self, block: JSON, path: str) -> JSON:
        name = block.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"{path}.name: expected a string")
        tool_use_id = block.get("id")
        if not isinstance(tool_use_id, str) or not tool_use_id:
            raise InvalidRequest(f"{path}.id: expected a string")
        call_id = _call_id(tool_use_id)
        self.pending.expect(call_id)
        return {
            "type": "function_call",
            "call_id": call_id,
            "name": self.names.to_upstream(name),
            "arguments": tool_arguments(block.get("input")),
        }


def _missing_output(call_id: str) -> JSON:
    return {"type": "function_call_output", "call_id": call_id, "output": MISSING_RESULT}


def _flush_text(texts: list[str], turn: list[JSON]) -> None:
    text = "".join(texts)
    texts.clear()
    if text:
        turn.append({"type": "message", "role": "assistant", "content": text})


def _call_id(tool_use_id: str) -> str:
    """The id as OpenAI takes it (at most 64 characters), the same for a call and its output."""
    if len(tool_use_id) <= _MAX_CALL_ID:
        return tool_use_id
    return "call_" + hashlib.sha256(tool_use_id.encode()).hexdigest()[:40]


def _input_part(chat_part: JSON) -> JSON:
    """A Chat Completions part from `anthropic_blocks` as a Responses input part."""
    if chat_part["type"] == "image_url":
        return {"type": "input_image", "image_url": chat_part["image_url"]["url"], "detail": "auto"}
    return {"type": "input_text", "text": chat_part["text"]}


def _document(block: JSON, path: str) -> JSON:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if isinstance(source, dict) and source.get("media_type") == "application/pdf":
        title = block.get("title")
        filename = title if isinstance(title, str) and title else "document.pdf"
        if kind == "base64" and isinstance(source.get("data"), str):
            return {
                "type": "input_file",
                "filename": filename,
                "file_data": f"data:application/pdf;base64,{source['data']}",
            }
    if kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        return {"type": "input_file", "file_url": source["url"]}
    return {"type": "input_text", "text": document_text(block, path)}
