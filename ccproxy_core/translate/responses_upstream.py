"""Anthropic Messages <-> OpenAI Responses, for a `kind: "responses"` provider.

    messages_to_responses(body, *, model, reasoning=True) -> ResponsesRequest(body, names, dropped)
    response_to_message(resp, *, model, names=ToolNames()) -> Anthropic Message

The other pair (`responses_request` / `responses_response`) serves Responses *clients* in front
of Messages providers; this pair serves Messages clients (and Chat clients, which become
Messages first) in front of a Responses provider. The stream half is `responses_upstream_stream`;
the per-message and per-tool work of the request is in `responses_upstream_input`.

Request, key by key from a whitelist (nothing Anthropic-only can leak):
- `system` -> `instructions`; each message -> `input` items in order: user text, images
  (`input_image`, data: URL or URL) and documents (`input_file`) in one `message` item;
  `tool_result` -> `function_call_output` (listed first, as Anthropic orders them; `output`
  is the text, or text and image parts when the result holds images); assistant text ->
  a `message` item with string content (the spec's input message takes input parts only, and
  an `OutputMessage` needs an id and status ccproxy would have to invent), `tool_use` ->
  `function_call` with the arguments as a JSON string. OpenAI wants every call answered and
  every output to answer a call: a call left without a result gets `MISSING_RESULT`, a result
  whose call is not in the turn before becomes user text.
- Thinking whose signature ccproxy made from a Responses `reasoning` item goes back as that
  item (`id`, `encrypted_content` exactly, the summary from the thinking text); any other
  thinking is dropped, since OpenAI cannot check Anthropic's signatures.
- tools -> function tools (`strict: false`: Anthropic schemas are not strict-mode schemas),
  names made OpenAI-safe by `ToolNames` as on the Chat path; server tools are dropped.
  tool_choice auto/any/tool/none -> auto/required/{function}/none, and
  `disable_parallel_tool_use` -> `parallel_tool_calls: false`.
- `thinking` / `output_config.effort` -> `reasoning: {effort, summary: auto}` through
  `chat_request.reasoning_effort`, the one budget -> effort table, and then
  `include: ["reasoning.encrypted_content"]`, since `store` is always false (ccproxy keeps
  no conversation upstream, so reasoning must travel in the request).
- `max_tokens` -> `max_output_tokens` (at least 16, OpenAI's minimum); temperature and top_p
  pass unless reasoning is on (reasoning models refuse them); `metadata.user_id` ->
  `safety_identifier` and `prompt_cache_key`, the two fields the spec says replace `user`
  (ids longer than 64 characters are sent as their sha256; Claude Code's id names the session,
  so the key keeps one conversation on OpenAI's warm cache). Named in `dropped`: stop_sequences
  and top_k (Responses has neither), sampling dropped for reasoning, and server tools.

Response: output items in order; `reasoning` -> thinking (summary text, else reasoning text)
signed by `reasoning_signature`, `message` parts -> text blocks, `function_call` -> tool_use
with parsed input; hosted tool calls are not the client's to run and are left out.
status completed -> end_turn (tool_use when a call was made), incomplete max_output_tokens ->
max_tokens, content_filter -> refusal; usage input_tokens = input - cached - cache writes.
A `failed` response raises `UpstreamError` (see `response_error`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, TypeGuard

from attrs import field, frozen

from ccproxy_core.core.errors import InvalidRequest, UpstreamError, anthropic_type_for_status
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.anthropic_blocks import system_text
from ccproxy_core.translate.chat_request import reasoning_effort
from ccproxy_core.translate.function_tools import FunctionTool, read_tool_choice, read_tools
from ccproxy_core.translate.responses_upstream_input import InputItems, reasoning_signature
from ccproxy_core.translate.tool_arguments import parse_tool_arguments
from ccproxy_core.translate.tool_names import ToolNames, safe_tool_use_id

MIN_OUTPUT_TOKENS = 16  # OpenAI refuses less
ENCRYPTED_REASONING = "reasoning.encrypted_content"
_MAX_USER_KEY = 64

# Responses `error.code` -> the HTTP status it stands for (then the Anthropic type by status).
_STATUS_BY_CODE: dict[str, int] = {
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "server_error": 500,
    "server_is_overloaded": 529,
    "overloaded": 529,
    "context_length_exceeded": 400,
    "invalid_prompt": 400,
    "invalid_request_error": 400,
}
_STOP_BY_INCOMPLETE: dict[str, str] = {"max_output_tokens": "max_tokens", "content_filter": "refusal"}


@frozen
class ResponsesRequest:
    """A Messages request as a Responses one: the body, the tool renames, what had no place."""

    body: JSON
    names: ToolNames = field(factory=ToolNames)
    dropped: tuple[str, ...] = ()


# -- request --------------------------------------------------------------------------------


def messages_to_responses(body: JSON, *, model: str, reasoning: bool = True) -> ResponsesRequest:
    """Translate an Anthropic request for the Responses `model`.

    `reasoning=False` is for a model that refuses `reasoning` (gpt-4.1, gpt-4o: the preset
    knows, as `dialect_for(model).reasoning == "none"`): thinking is then not asked for."""
    if not isinstance(body, dict):
        raise InvalidRequest("body: expected a JSON object")
    names = ToolNames.from_request(body)
    dropped: list[str] = []
    out: JSON = {"model": model}
    if body.get("system") is not None:
        instructions = system_text(body["system"], "system")
        if instructions:
            out["instructions"] = instructions
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: expected a list")
    conversation = InputItems(names)
    for i, message in enumerate(messages):
        conversation.add(message, f"messages.{i}")
    out["input"] = conversation.finish()

    tools = read_tools(body.get("tools"), names, dropped=dropped, require_name=True)
    if tools:  # OpenAI refuses tool_choice without tools
        out["tools"] = [_function(t) for t in tools]
        choice = read_tool_choice(body.get("tool_choice"), names, {t.name for t in tools})
        if choice.forced is not None:
            out["tool_choice"] = {"type": "function", "name": choice.forced}
        elif choice.mode is not None:
            out["tool_choice"] = choice.mode
        if choice.serial:
            out["parallel_tool_calls"] = False

    max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        if not _is_int(max_tokens):
            raise InvalidRequest("max_tokens: expected an integer")
        out["max_output_tokens"] = max(max_tokens, MIN_OUTPUT_TOKENS)
    effort = reasoning_effort(body.get("thinking"), body.get("output_config")) if reasoning else None
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if _is_number(value):
            if effort is None:
                out[key] = min(max(float(value), 0.0), 1.0)  # Anthropic's range, inside OpenAI's
            else:
                dropped.append(key)
    for key in ("stop_sequences", "top_k"):
        if body.get(key):
            dropped.append(key)
    if effort is not None:
        out["reasoning"] = {"effort": effort, "summary": "auto"}
        out["include"] = [ENCRYPTED_REASONING]
    user = _user_key(body.get("metadata"))
    if user is not None:
        out["safety_identifier"] = out["prompt_cache_key"] = user
    out["store"] = False
    if isinstance(body.get("stream"), bool):
        out["stream"] = body["stream"]
    return ResponsesRequest(out, names, tuple(dropped))


def _function(tool: FunctionTool) -> JSON:
    function: JSON = {"type": "function", "name": tool.name, "parameters": tool.schema, "strict": False}
    if tool.description:
        function["description"] = tool.description
    return function


def _user_key(metadata: Any) -> str | None:
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(user, str) or not user:
        return None
    return user if len(user) <= _MAX_USER_KEY else hashlib.sha256(user.encode()).hexdigest()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- response -------------------------------------------------------------------------------


def message_id(resp_id: Any) -> str:
    """`msg_<tail>` for `resp_<tail>`: the mirror of `responses_response.response_id`."""
    tail = resp_id.removeprefix("resp_") if isinstance(resp_id, str) and resp_id else ""
    return "msg_" + (tail or hashlib.sha256(repr(resp_id).encode()).hexdigest()[:24])


def reasoning_text(item: Mapping[str, Any]) -> str:
    """A reasoning item's summary parts joined, else its raw reasoning text (open-weight servers)."""
    for key in ("summary", "content"):
        parts = item.get(key)
        if isinstance(parts, list):
            texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
            if any(texts):
                return "\n\n".join(text for text in texts if text)
    return ""


def part_text(part: Any) -> str:
    """The text of a message content part: output_text, or a refusal."""
    if not isinstance(part, dict):
        return ""
    value = part.get("text") if part.get("type") != "refusal" else part.get("refusal")
    return value if isinstance(value, str) else ""


def anthropic_usage(usage: Any) -> JSON:
    """Anthropic usage (all four counters) from a Responses `usage`."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    read = _count(details.get("cached_tokens"))
    written = _count(details.get("cache_write_tokens"))
    return {
        "input_tokens": max(0, _count(usage.get("input_tokens")) - read - written),
        "output_tokens": _count(usage.get("output_tokens")),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
    }


def stop_reason(resp: Mapping[str, Any], has_tool_use: bool) -> str:
    """The Anthropic stop_reason for a finished response (a cut tool call is never `tool_use`)."""
    details = resp.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    if resp.get("status") == "incomplete" and isinstance(reason, str):
        return _STOP_BY_INCOMPLETE.get(reason, "end_turn")
    return "tool_use" if has_tool_use else "end_turn"


def response_error(error: Any) -> UpstreamError:
    """A Responses error (`response.error`, or an `error` event) in Anthropic terms."""
    error = error if isinstance(error, dict) else {}
    code, message = error.get("code"), error.get("message")
    status = _STATUS_BY_CODE.get(code, 502) if isinstance(code, str) else 502
    if not isinstance(message, str) or not message:
        message = f"the provider failed the response without a message (code {code!r}); retry, or check the provider"
    return UpstreamError(status, anthropic_type_for_status(status), message)


def response_to_message(resp: JSON, *, model: str, names: ToolNames | None = None) -> JSON:
    """Translate a non-streamed Responses `response`; `model` is the name the client asked for."""
    if not isinstance(resp, dict) or resp.get("status") == "failed" or isinstance(resp.get("error"), dict):
        raise response_error(resp.get("error") if isinstance(resp, dict) else None)
    names = names or ToolNames()
    content: list[JSON] = []
    output = resp.get("output")
    for item in output if isinstance(output, list) else []:
        if isinstance(item, dict):
            content.extend(output_blocks(item, names))
    has_tool_use = any(block["type"] == "tool_use" for block in content)
    return {
        "id": message_id(resp.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content or [{"type": "text", "text": ""}],
        "stop_reason": stop_reason(resp, has_tool_use),
        "stop_sequence": None,
        "usage": anthropic_usage(resp.get("usage")),
    }


def output_blocks(item: Mapping[str, Any], names: ToolNames) -> list[JSON]:
    """The Anthropic blocks one finished output item stands for (the stream uses it too)."""
    kind = item.get("type")
    if kind == "message":
        content = item.get("content")
        texts = [part_text(p) for p in content] if isinstance(content, list) else []
        return [{"type": "text", "text": text} for text in texts if text]
    if kind == "reasoning":
        thinking = reasoning_text(item)
        if not thinking and not item.get("encrypted_content"):
            return []  # nothing to show and nothing to replay
        return [{"type": "thinking", "thinking": thinking, "signature": reasoning_signature(item)}]
    if kind == "function_call" and isinstance(item.get("name"), str):
        return [
            {
                "type": "tool_use",
                "id": safe_tool_use_id(item.get("call_id")),
                "name": names.to_client(item["name"]),
                "input": parse_tool_arguments(item.get("arguments")),
            }
        ]
    return []  # hosted tool calls ran at OpenAI; the client has nothing to do with them


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
