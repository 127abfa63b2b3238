"""Anthropic Messages request -> OpenAI Chat Completions request.

The output is built key by key from a whitelist, never by copying the input and deleting
what is known to be Anthropic-only: new Claude Code fields (`context_management`,
`output_config`, `cache_control` with `ttl`/`scope`, ...) would otherwise leak to strict
upstreams that reject unknown keys. Every tool name goes through one `ToolNames`, so the
tools list, `tool_choice` and history `tool_use` blocks agree, and the response side can
undo the renames.

Messages are converted in one pass by `_Conversation`, which carries the only cross-message
rule Chat Completions has: an assistant turn with `tool_calls` must be followed at once by one
`tool` message per call. So a user turn's tool_results go first, in block order, before its
text and images; a call without a result gets a placeholder answer; a result without a call
is dropped; a mid-conversation system message that lands between a call and its result
waits behind the tool messages (that rule is `pending.PendingCalls`, shared with the
Responses translator). Turning one block into text or a content part (images, documents,
tool_result content, system text) is `anthropic_blocks`' job.

Reasoning buckets (`thinking` -> effort), one table for every provider:

    enabled, budget_tokens <= 1024   low
    enabled, budget_tokens <= 8192   medium
    enabled, larger budget           high
    adaptive                         medium
    disabled or absent               (nothing sent)

Bad input raises `InvalidRequest` naming the JSON path, e.g. `messages.3.content.1: ...`.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from attrs import define, field

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.anthropic_blocks import (
    block_type,
    document_text,
    image_part,
    search_summary,
    system_text,
    text_of,
    tool_arguments,
    tool_result_content,
)
from ccproxy_core.translate.dialect import DEFAULT_DIALECT, ChatDialect
from ccproxy_core.translate.function_tools import read_tool_choice, read_tools
from ccproxy_core.translate.pending import MISSING_RESULT, PendingCalls
from ccproxy_core.translate.tool_names import ToolNames, mistral_tool_id

# Signatures of thinking blocks ccproxy made up from another provider's reasoning. Real
# Anthropic rejects them ("Invalid `signature` in `thinking` block"), so they are stripped
# before history goes back to Anthropic (`strip_synthetic_thinking`).
SYNTHETIC_SIGNATURE_PREFIX = "ccproxy-synthetic:"

MAX_STOP = 4  # OpenAI rejects more stop sequences


def messages_to_chat(body: JSON, *, model: str, dialect: ChatDialect = DEFAULT_DIALECT) -> tuple[JSON, ToolNames]:
    """Translate an Anthropic request for the upstream `model`; also return the tool renames."""
    if not isinstance(body, dict):
        raise InvalidRequest("body: expected a JSON object")
    names = ToolNames.from_request(body)
    conversation = _Conversation(names, dialect)
    conversation.add_system(body.get("system"))
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: expected a list")
    for i, message in enumerate(messages):
        conversation.add(message, f"messages.{i}")
    out: JSON = {"model": model, "messages": conversation.finish()}

    tools = read_tools(body.get("tools"), names)
    choice = read_tool_choice(body.get("tool_choice"), names, {t.name for t in tools})
    if tools:  # OpenAI refuses tool_choice and parallel_tool_calls without tools
        out["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.schema}}
            for t in tools
        ]
        if choice.forced is not None:
            out["tool_choice"] = {"type": "function", "function": {"name": choice.forced}}
        elif choice.mode is not None:
            out["tool_choice"] = choice.mode
        if choice.serial:
            out["parallel_tool_calls"] = False

    max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        if not _is_int(max_tokens):
            raise InvalidRequest("max_tokens: expected an integer")
        out[dialect.max_tokens_field] = max_tokens
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if _is_number(value):
            out[key] = value
    stops = body.get("stop_sequences")
    if isinstance(stops, list):
        kept = [s for s in stops if isinstance(s, str) and s]
        if kept:
            out["stop"] = kept[:MAX_STOP]
    effort = reasoning_effort(body.get("thinking"), body.get("output_config"))
    if effort is not None:
        if dialect.reasoning == "effort":
            out["reasoning_effort"] = effort
        elif dialect.reasoning == "openrouter":
            out["reasoning"] = {"effort": effort}
    metadata = body.get("metadata")
    if dialect.send_user and isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    if body.get("stream") is True:
        out["stream"] = True
        if dialect.stream_usage:
            out["stream_options"] = {"include_usage": True}
    return out, names


_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


def reasoning_effort(thinking: Any, output_config: Any = None) -> str | None:
    """The effort bucket for an Anthropic `thinking` object (table in the module docstring).

    Adaptive thinking carries no budget; Claude Code states the effort it wants in
    `output_config.effort` next to it, so that wins over the "medium" default."""
    if not isinstance(thinking, dict):
        return None
    kind = thinking.get("type")
    if kind == "adaptive":
        asked = output_config.get("effort") if isinstance(output_config, dict) else None
        return _EFFORTS.get(asked, "medium") if isinstance(asked, str) else "medium"
    if kind != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not _is_int(budget):
        return "medium"
    if budget <= 1024:
        return "low"
    return "medium" if budget <= 8192 else "high"


def strip_synthetic_thinking(body: JSON) -> JSON | None:
    """A copy of `body` without ccproxy-made thinking blocks, or None when it has none."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    changed = False
    kept_messages: list[Any] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            kept = [b for b in content if not _is_synthetic_thinking(b)]
            if len(kept) != len(content):
                changed = True
                if kept:  # an assistant turn that held only our thinking disappears
                    kept_messages.append({**message, "content": kept})
                continue
        kept_messages.append(message)
    return {**body, "messages": kept_messages} if changed else None


def _is_synthetic_thinking(block: Any) -> bool:
    if not isinstance(block, dict) or block.get("type") != "thinking":
        return False
    signature = block.get("signature")
    return isinstance(signature, str) and signature.startswith(SYNTHETIC_SIGNATURE_PREFIX)


@define
class _Conversation:
    names: ToolNames
    dialect: ChatDialect
    out: list[JSON] = field(factory=list)
    # the last assistant turn's calls still awaiting their tool messages, and the system
    # messages held behind them
    pending: PendingCalls = field(factory=lambda: PendingCalls(_missing_result))

    def add_system(self, system: Any) -> None:
        if system is None:
            return
        text = system_text(system, "system")
        if text:
            self.out.append({"role": "system", "content": text})

    def add(self, message: Any, path: str) -> None:
        if not isinstance(message, dict):
            raise InvalidRequest(f"{path}: expected an object")
        role, content = message.get("role"), message.get("content")
        if not isinstance(content, (str, list)):
            raise InvalidRequest(f"{path}.content: expected a string or a list of blocks")
        if role == "user":
            self._user(content, f"{path}.content")
        elif role == "assistant":
            self.out.extend(self.pending.settle())
            self._assistant(content, f"{path}.content")
        elif role == "system":
            text = system_text(content, f"{path}.content")
            if text:
                self.out.extend(self.pending.note({"role": "system", "content": text}))
        else:
            raise InvalidRequest(f'{path}.role: expected "user", "assistant" or "system"')

    def finish(self) -> list[JSON]:
        self.out.extend(self.pending.settle())
        return self.out

    def _call_id(self, block: JSON, key: str, path: str) -> str:
        value = block.get(key)
        if not isinstance(value, str) or not value:
            raise InvalidRequest(f"{path}.{key}: expected a string")
        return mistral_tool_id(value) if self.dialect.tool_id_style == "mistral9" else value

    def _user(self, content: str | list[Any], path: str) -> None:
        if isinstance(content, str):
            self.out.extend(self.pending.settle())
            if content:
                self.out.append({"role": "user", "content": content})
            return
        parts: list[JSON] = []
        tool_images: list[JSON] = []
        for j, block in enumerate(content):
            bpath = f"{path}.{j}"
            kind = block_type(block, bpath)
            if kind == "tool_result":
                call_id = self._call_id(block, "tool_use_id", bpath)
                if not self.pending.answer(call_id):
                    continue  # orphan: OpenAI rejects a tool message without its call
                text, images = tool_result_content(block, bpath, vision=self.dialect.supports_images)
                self.out.append({"role": "tool", "tool_call_id": call_id, "content": text})
                tool_images.extend(images)
            elif kind == "text":
                text = text_of(block, bpath)
                if text:
                    parts.append({"type": "text", "text": text})
            elif kind == "image":
                parts.append(image_part(block, bpath, vision=self.dialect.supports_images))
            elif kind == "document":
                parts.append({"type": "text", "text": document_text(block, bpath)})
            # anything else (thinking echoed by a client, future types) has no user equivalent
        self.out.extend(self.pending.settle())
        parts = tool_images + parts
        if not parts:
            return
        if all(p["type"] == "text" for p in parts):
            self.out.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts)})
        else:
            self.out.append({"role": "user", "content": parts})

    def _assistant(self, content: str | list[Any], path: str) -> None:
        if isinstance(content, str):
            if content:
                self.out.append({"role": "assistant", "content": content})
            return
        texts: list[str] = []
        calls: list[JSON] = []
        reasoning: list[str] = []
        for j, block in enumerate(content):
            bpath = f"{path}.{j}"
            kind = block_type(block, bpath)
            if kind == "text":
                texts.append(text_of(block, bpath))
            elif kind == "tool_use":
                name = block.get("name")
                if not isinstance(name, str):
                    raise InvalidRequest(f"{bpath}.name: expected a string")
                calls.append(
                    {
                        "id": self._call_id(block, "id", bpath),
                        "type": "function",
                        "function": {
                            "name": self.names.to_upstream(name),
                            "arguments": tool_arguments(block.get("input")),
                        },
                    }
                )
            elif kind == "thinking":
                if self.dialect.echo_reasoning and isinstance(block.get("thinking"), str):
                    reasoning.append(block["thinking"])
            elif kind == "server_tool_use":
                texts.append(f"\n[{block.get('name', 'server tool')}: {tool_arguments(block.get('input'))}]\n")
            elif kind == "web_search_tool_result":
                texts.append(search_summary(block.get("content")))
            # redacted_thinking and unknown types are never forwarded
        text = "".join(texts)
        if not (text or calls or reasoning):
            return
        message: JSON = {"role": "assistant", "content": text or (None if calls else "")}
        if calls:
            message["tool_calls"] = calls
            for call in calls:
                self.pending.expect(call["id"])
        if reasoning:
            message["reasoning_content"] = "".join(reasoning)
        self.out.append(message)


def _missing_result(call_id: str) -> JSON:
    return {"role": "tool", "tool_call_id": call_id, "content": MISSING_RESULT}


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
