"""Anthropic Message -> OpenAI Responses `response` object, and the pieces the stream shares.

The output items follow the Message's blocks in order:

    thinking / redacted_thinking   reasoning item (summary = the thinking text)
    text                           message item with one output_text part
    tool_use of a function tool    function_call item (with `namespace` for a namespaced tool)
    tool_use of a custom tool      custom_tool_call item (`input` is the tool's one string)
    tool_use of the JSON-mode tool message item: its input is the answer (`text.format`)
    server tools and their results (nothing: a Responses client cannot run them)

Thinking goes out whole in `encrypted_content`: `store: false` clients (Codex) send reasoning
items back on the next turn, and Anthropic accepts a thinking block only with its exact text
and signature. `encode_thinking` / `decode_thinking` are the one place for that format; the
prefix tells ccproxy's own tokens from OpenAI's, which are dropped on the way in.

Usage: `input_tokens` is the whole prompt (fresh + cache read + cache write), as OpenAI counts
it; `input_tokens_details.cached_tokens` is the cache read, `cache_write_tokens` the write.
Ids of the response and its items are derived from the Anthropic message id, so logs on both
sides line up.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson
from attrs import field, frozen

from ccproxy_core.core.ids import new_id
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.messages_response import JSON_TOOL_NAME, dumps_compact, leading_blank

THINKING_PREFIX = "ccproxy-thinking-v1:"

# Anthropic stop_reason -> the Responses `incomplete_details.reason`; every other one completes.
INCOMPLETE_REASONS: dict[str, str] = {
    "max_tokens": "max_output_tokens",
    "model_context_window_exceeded": "max_output_tokens",
    "refusal": "content_filter",
}


@frozen
class CallTarget:
    """What an Anthropic tool name stands for on the client's side."""

    kind: str  # "function" or "custom"
    name: str
    namespace: str | None = None


@frozen
class ResponsesPlan:
    """What the response side needs to know about the request it answers."""

    targets: Mapping[str, CallTarget] = field(factory=dict)  # by Anthropic tool name
    dropped_tools: tuple[str, ...] = ()
    json_mode: bool = False
    effort: str | None = None  # reasoning.effort as asked, for providers that take an effort
    echo: Mapping[str, Any] = field(factory=dict)  # request fields a `response` object repeats

    def target(self, name: str) -> CallTarget:
        return self.targets.get(name) or CallTarget("function", name)

    def is_json_tool(self, name: Any) -> bool:
        return self.json_mode and name == JSON_TOOL_NAME


def _echo_defaults() -> JSON:
    """What OpenAI repeats for a field the request left out (fresh objects: nothing is shared)."""
    return {
        "instructions": None,
        "max_output_tokens": None,
        "metadata": {},
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "store": True,
        "temperature": 1.0,
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
    }


def response_echo(body: Mapping[str, Any]) -> JSON:
    """The request fields a `response` object repeats, with OpenAI's defaults for those left out."""
    echo = {key: default if body.get(key) is None else body[key] for key, default in _echo_defaults().items()}
    reasoning = body.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, dict) else {}
    echo["reasoning"] = {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")}
    tools = echo["tools"]
    if isinstance(tools, list):  # as OpenAI echoes them: function tools state `strict` and `parameters`
        echo["tools"] = [_echo_tool(tool) for tool in tools]
    text = body.get("text")
    echo["text"] = text if isinstance(text, dict) and "format" in text else {"format": {"type": "text"}}
    return echo


def _echo_tool(tool: Any) -> Any:
    if isinstance(tool, dict) and tool.get("type") == "function":
        return {**tool, "strict": tool.get("strict", True), "parameters": tool.get("parameters")}
    return tool


# -- thinking in encrypted_content ----------------------------------------------------------


def encode_thinking(block: Mapping[str, Any]) -> str:
    """A thinking (or redacted_thinking) block as an opaque `encrypted_content` string."""
    if block.get("type") == "redacted_thinking":
        payload: JSON = {"r": str(block.get("data") or "")}
    else:
        payload = {"t": str(block.get("thinking") or ""), "s": str(block.get("signature") or "")}
    return THINKING_PREFIX + base64.urlsafe_b64encode(orjson.dumps(payload)).decode()


def decode_thinking(value: Any) -> JSON | None:
    """The block `encode_thinking` made, or None for anything else (OpenAI's own, or damaged)."""
    if not isinstance(value, str) or not value.startswith(THINKING_PREFIX):
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(value[len(THINKING_PREFIX) :]))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("r"), str) and payload["r"]:
        return {"type": "redacted_thinking", "data": payload["r"]}
    thinking, signature = payload.get("t"), payload.get("s")
    if isinstance(thinking, str) and isinstance(signature, str) and signature:
        return {"type": "thinking", "thinking": thinking, "signature": signature}
    return None


# -- ids, usage, status ---------------------------------------------------------------------


def response_id(message_id: Any) -> str:
    if isinstance(message_id, str) and message_id:
        return "resp_" + message_id.removeprefix("msg_")
    return new_id("resp_")


def item_id(prefix: str, resp_id: str, index: int) -> str:
    """`msg_…`, `rs_…`, `fc_…`, `ctc_…`: the response id's tail and the item's position."""
    return f"{prefix}_{resp_id.removeprefix('resp_')}_{index}"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def responses_usage(usage: Mapping[str, Any]) -> JSON:
    fresh = _count(usage.get("input_tokens"))
    read = _count(usage.get("cache_read_input_tokens"))
    written = _count(usage.get("cache_creation_input_tokens"))
    output = _count(usage.get("output_tokens"))
    details = usage.get("output_tokens_details")
    reasoning = _count(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    prompt = fresh + read + written
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + output,
    }


def status_for(stop_reason: Any) -> tuple[str, JSON | None]:
    """The response status and its `incomplete_details` for an Anthropic stop_reason."""
    reason = INCOMPLETE_REASONS.get(stop_reason) if isinstance(stop_reason, str) else None
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def response_object(
    *,
    resp_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[JSON],
    echo: Mapping[str, Any],
    usage: JSON | None = None,
    incomplete: JSON | None = None,
    error: JSON | None = None,
) -> JSON:
    out: JSON = {
        "id": resp_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": incomplete,
        "model": model,
        "output": output,
        **echo,
    }
    if usage is not None:  # OpenAI sends null until the end; the spec allows only leaving it out
        out["usage"] = usage
    return out


# -- output items ---------------------------------------------------------------------------


def output_text(text: str) -> JSON:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item: str, text: str | None, status: str) -> JSON:
    content = [] if text is None else [output_text(text)]
    return {"id": item, "type": "message", "status": status, "role": "assistant", "content": content}


def reasoning_item(item: str, thinking: str, encrypted: str | None) -> JSON:
    out: JSON = {
        "id": item,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": thinking}] if thinking else [],
    }
    if encrypted is not None:
        out["encrypted_content"] = encrypted
    return out


def call_item(item: str, target: CallTarget, call_id: str, payload: str, status: str) -> JSON:
    """A function_call (`payload` = JSON arguments) or a custom_tool_call (`payload` = its input)."""
    if target.kind == "custom":
        out: JSON = {
            "id": item,
            "type": "custom_tool_call",
            "status": status,
            "call_id": call_id,
            "name": target.name,
            "input": payload,
        }
    else:
        out = {
            "id": item,
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": target.name,
            "arguments": payload,
        }
    if target.namespace:
        out["namespace"] = target.namespace
    return out


def custom_input(tool_input: Any) -> str:
    """A custom tool's string from the `{"input": "..."}` object its Anthropic stand-in takes."""
    if isinstance(tool_input, dict) and isinstance(tool_input.get("input"), str):
        return str(tool_input["input"])
    return dumps_compact(tool_input) if tool_input else ""


def message_to_response(msg: JSON, *, model: str, plan: ResponsesPlan, created_at: int) -> JSON:
    """One Anthropic Message as a Responses `response`; `model` is the name the client asked for."""
    resp_id = response_id(msg.get("id"))
    blocks = msg.get("content")
    if not isinstance(blocks, list):
        blocks = []
    output: list[JSON] = []
    for block in blocks[1:] if leading_blank(blocks) else blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        index = len(output)
        if kind == "text":
            output.append(message_item(item_id("msg", resp_id, index), str(block.get("text") or ""), "completed"))
        elif kind == "thinking":
            output.append(
                reasoning_item(item_id("rs", resp_id, index), str(block.get("thinking") or ""), encode_thinking(block))
            )
        elif kind == "redacted_thinking":
            output.append(reasoning_item(item_id("rs", resp_id, index), "", encode_thinking(block)))
        elif kind == "tool_use":
            name = block.get("name")
            if plan.is_json_tool(name):
                text = dumps_compact(block.get("input") or {})
                output.append(message_item(item_id("msg", resp_id, index), text, "completed"))
                continue
            target = plan.target(str(name or ""))
            payload = (
                custom_input(block.get("input")) if target.kind == "custom" else dumps_compact(block.get("input") or {})
            )
            prefix = "ctc" if target.kind == "custom" else "fc"
            output.append(
                call_item(item_id(prefix, resp_id, index), target, str(block.get("id") or ""), payload, "completed")
            )
    status, incomplete = status_for(msg.get("stop_reason"))
    usage = msg.get("usage")
    return response_object(
        resp_id=resp_id,
        created_at=created_at,
        model=model,
        status=status,
        output=output,
        usage=responses_usage(usage if isinstance(usage, dict) else {}),
        echo=plan.echo,
        incomplete=incomplete,
    )
