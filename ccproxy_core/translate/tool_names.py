"""Tool names and tool-call ids that every Chat Completions upstream accepts.

Anthropic allows tool names OpenAI rejects: MCP tools (`mcp__server__tool_name`) run past
OpenAI's 64-character limit, and some carry dots or colons. `ToolNames` is built once per
request from every name the request mentions (tools, `tool_choice`, history `tool_use`); an
unsafe name becomes a 55-character cleaned prefix + `_` + the first 8 hex digits of its sha256,
so the same name maps the same way in every request, and the response path restores the
original with `to_client`. Safe names pass through untouched, so a request without odd names
costs one dict lookup per name.

Tool-call ids go the other way: upstreams invent ids Anthropic clients reject (Kimi's
`functions.Bash:0`, Gemini's `...__thought__<signature>`, none at all), so `safe_tool_use_id`
makes them match `^[a-zA-Z0-9_-]+$`. Mistral only accepts 9 alphanumeric characters, so
`mistral_tool_id` hashes any other id into that shape; being deterministic, it maps a tool_use
id and its tool_result's `tool_use_id` to the same value without keeping state.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from attrs import field, frozen

from ccproxy_core.core.ids import new_id
from ccproxy_core.core.wire import JSON

MAX_TOOL_NAME = 64
_PREFIX_LEN = 55  # 55 + "_" + 8 hex = 64

_SAFE_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_UNSAFE_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_SAFE_ID = re.compile(r"[a-zA-Z0-9_-]+")
_ALNUM9 = re.compile(r"[a-zA-Z0-9]{9}")
_GEMINI_THOUGHT = "__thought__"
_BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def safe_tool_name(name: str) -> str:
    """`name` if OpenAI accepts it, else a deterministic 64-character-or-shorter stand-in."""
    if _SAFE_NAME.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    prefix = _UNSAFE_CHARS.sub("_", name)[:_PREFIX_LEN] or "tool"
    return f"{prefix}_{digest}"


@frozen
class ToolNames:
    """The renames of one request: client name <-> upstream name, only for unsafe names."""

    _upstream: dict[str, str] = field(factory=dict)
    _client: dict[str, str] = field(factory=dict)

    @classmethod
    def of(cls, names: Iterable[str]) -> ToolNames:
        upstream: dict[str, str] = {}
        client: dict[str, str] = {}
        for name in names:
            safe = safe_tool_name(name)
            if safe != name:
                upstream[name] = safe
                client[safe] = name
        return cls(upstream, client)

    @classmethod
    def from_request(cls, body: JSON) -> ToolNames:
        """Every tool name an Anthropic request mentions: tools, tool_choice, history tool_use."""
        return cls.of(_names_in(body))

    def to_upstream(self, name: str) -> str:
        found = self._upstream.get(name)
        if found is not None:
            return found
        # A name the request did not declare (it cannot come back in a response) still has to
        # be valid upstream; the hash keeps it stable.
        return safe_tool_name(name)

    def to_client(self, name: str) -> str:
        return self._client.get(name, name)


def _names_in(body: JSON) -> Iterable[str]:
    tools = body.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                yield tool["name"]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("name"), str):
        yield choice["name"]
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list):
                for block in content:
                    if _is_tool_use(block):
                        yield block["name"]


def _is_tool_use(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") == "tool_use" and isinstance(block.get("name"), str)


def new_tool_use_id() -> str:
    return new_id("toolu_")


def safe_tool_use_id(tool_id: str | None) -> str:
    """An id Anthropic clients accept: `[a-zA-Z0-9_-]+`, generated when missing."""
    if not tool_id or not isinstance(tool_id, str):
        return new_tool_use_id()
    cut = tool_id.find(_GEMINI_THOUGHT)
    if cut >= 0:
        # Gemini appends its thought signature to the id; the client never needs it.
        tool_id = tool_id[:cut]
    if _SAFE_ID.fullmatch(tool_id):
        return tool_id
    cleaned = _UNSAFE_CHARS.sub("_", tool_id)
    return cleaned or new_tool_use_id()


def mistral_tool_id(tool_id: str) -> str:
    """A 9-character alphanumeric id for Mistral; ids already in that shape are kept."""
    if _ALNUM9.fullmatch(tool_id):
        return tool_id
    number = int.from_bytes(hashlib.sha256(tool_id.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        chars.append(_BASE62[digit])
    return "".join(chars)
