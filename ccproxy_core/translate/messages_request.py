"""OpenAI Chat Completions request -> Anthropic Messages request (translation.md §6.1).

`chat_to_messages` takes the parsed body an OpenAI client sent and returns the body for an
Anthropic upstream, plus `json_mode`: True when `response_format` became the tool
`json_tool_call`, whose input the response side unwraps back into `content`.

The conversation is rebuilt in one pass:
- `system` and `developer` messages, wherever they sit, become `system` text blocks in order;
- `tool` messages become `tool_result` blocks in a user turn, and adjacent turns of the same
  role are merged, so every result of a parallel-call turn lands in the one user message
  Anthropic wants (with the results first, as Anthropic requires);
- an assistant turn becomes echoed `thinking_blocks` (if any), then text, then `tool_use`.

Thinking. `reasoning_effort` maps to `thinking.budget_tokens` by `THINKING_BUDGETS` (LiteLLM's
defaults). `none` and `minimal` turn thinking off: Anthropic's smallest budget is 1024, so
there is no honest "minimal". `max_tokens` must exceed the budget; when it does not, the
budget is added on top so the client still gets the answer length it asked for. Thinking is
left off when the last assistant turn called tools without echoing its signed thinking
blocks: Anthropic rejects such a tool loop (LiteLLM does the same). With thinking on,
`temperature` and `top_p` are dropped (Anthropic allows only the defaults) and
`response_format` is offered as a tool but not forced (forced tool_choice is rejected).

Dropped because Anthropic has no equivalent: logprobs, top_logprobs, penalties, seed,
logit_bias, store, modalities, audio, prediction, service_tier, verbosity, web_search_options,
OpenAI `metadata`. Refused: `n` > 1, and the deprecated `functions` API (send `tools`).
Bad input raises `InvalidRequest` naming the field path. Message content (parts, images,
files, tool calls and results) is converted in `messages_content`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.messages_content import (
    assistant_blocks,
    mark_cache,
    system_blocks,
    tool_result_block,
    user_blocks,
)
from ccproxy_core.translate.messages_response import JSON_TOOL_NAME

# reasoning_effort -> thinking budget_tokens; None = no thinking.
THINKING_BUDGETS: dict[str, int | None] = {
    "none": None,
    "minimal": None,
    "low": 1024,
    "medium": 2048,
    "high": 4096,
    "xhigh": 8192,
    "max": 16384,
}

_TOOL_CHOICES: dict[str, JSON] = {
    "auto": {"type": "auto"},
    "required": {"type": "any"},
    "none": {"type": "none"},
}
_JSON_TOOL_DESCRIPTION = "Respond with a JSON object that matches this schema."
_EMPTY_SCHEMA: JSON = {"type": "object", "properties": {}}
_USER_ID = re.compile(r"[^@\s]{1,512}")  # Anthropic asks for an opaque id: no emails


def chat_to_messages(body: JSON, *, model: str, default_max_tokens: int = 4096) -> tuple[JSON, bool]:
    """Translate a Chat Completions request body; returns (Anthropic body, json_mode)."""
    if not isinstance(body, dict):
        raise InvalidRequest("body: expected a JSON object")
    n = body.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("n: Anthropic models return one choice; send n=1 or leave it out")
    system, turns = _conversation(body.get("messages"))

    budget = _thinking_budget(body.get("reasoning_effort"))
    if budget is not None and tool_loop_without_thinking(turns):
        budget = None
    max_tokens = _max_tokens(body, default_max_tokens, budget)
    out: JSON = {"model": model, "messages": turns, "max_tokens": max_tokens}
    if system:
        out["system"] = system
    if budget is not None:
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    else:
        _sampling(body, out)
    stop = _stop_sequences(body.get("stop"))
    if stop:
        out["stop_sequences"] = stop

    tools, tool_choice, json_mode = _tools(body, thinking=budget is not None)
    if tools:
        out["tools"] = tools
        if tool_choice is not None:
            out["tool_choice"] = tool_choice
    user = body.get("user")
    if isinstance(user, str) and _USER_ID.fullmatch(user):
        out["metadata"] = {"user_id": user}
    stream = body.get("stream")
    if isinstance(stream, bool):
        out["stream"] = stream
    return out, json_mode


# -- conversation -------------------------------------------------------------------------


def _conversation(messages: Any) -> tuple[list[JSON], list[JSON]]:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: expected a non-empty list of messages")
    system: list[JSON] = []
    turns: list[JSON] = []
    for i, msg in enumerate(messages):
        path = f"messages.{i}"
        if not isinstance(msg, dict):
            raise InvalidRequest(f"{path}: expected a message object")
        role = msg.get("role")
        if role in ("system", "developer"):
            blocks = system_blocks(msg.get("content"), path)
            mark_cache(msg.get("cache_control"), blocks)
            system.extend(blocks)
            continue
        if role == "user":
            anthropic_role, blocks = "user", user_blocks(msg.get("content"), path)
        elif role == "assistant":
            anthropic_role, blocks = "assistant", assistant_blocks(msg, path)
        elif role == "tool":
            anthropic_role, blocks = "user", [tool_result_block(msg, path)]
        else:
            raise InvalidRequest(f"{path}.role: expected system, developer, user, assistant or tool, got {role!r}")
        if not blocks:
            continue  # an empty turn would be rejected; its neighbours may merge instead
        mark_cache(msg.get("cache_control"), blocks)
        if turns and turns[-1]["role"] == anthropic_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": anthropic_role, "content": blocks})
    if not turns:
        raise InvalidRequest("messages: expected at least one user, assistant or tool message")
    for turn in turns:
        content = turn["content"]
        if turn["role"] == "user" and _results_not_first(content):
            content.sort(key=lambda block: block["type"] != "tool_result")  # stable: order kept
    _trim_prefill(turns[-1])
    return system, turns


def _results_not_first(content: list[JSON]) -> bool:
    seen_other = False
    for block in content:
        if block["type"] != "tool_result":
            seen_other = True
        elif seen_other:
            return True
    return False


def _trim_prefill(turn: JSON) -> None:
    # A final assistant turn is a prefill, and Anthropic rejects one ending in whitespace.
    if turn["role"] != "assistant":
        return
    last = turn["content"][-1]
    if last["type"] == "text":
        last["text"] = last["text"].rstrip()  # never empties it: blank text was dropped already


def tool_loop_without_thinking(turns: list[JSON]) -> bool:
    """True when the newest assistant turn called tools, its results follow, and no thinking was echoed."""
    for k in range(len(turns) - 1, -1, -1):
        turn = turns[k]
        if turn["role"] != "assistant":
            continue
        blocks = turn["content"]
        if not any(block["type"] == "tool_use" for block in blocks):
            return False
        after = turns[k + 1 :]
        if not all(block["type"] == "tool_result" for t in after for block in t["content"]):
            return False  # a new user turn started: earlier thinking need not be echoed
        return blocks[0]["type"] not in ("thinking", "redacted_thinking")
    return False


# -- scalar fields ------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _thinking_budget(effort: Any) -> int | None:
    if effort is None:
        return None
    if not isinstance(effort, str) or effort not in THINKING_BUDGETS:
        raise InvalidRequest(f"reasoning_effort: expected one of {', '.join(THINKING_BUDGETS)}")
    return THINKING_BUDGETS[effort]


def _max_tokens(body: Mapping[str, Any], default: int, budget: int | None) -> int:
    value = default
    for key in ("max_completion_tokens", "max_tokens"):  # the newer name wins
        given = body.get(key)
        if given is None:
            continue
        if not _is_int(given) or given < 1:
            raise InvalidRequest(f"{key}: expected a positive integer")
        value = given
        break
    if budget is not None and value <= budget:
        value += budget
    return value


def _sampling(body: Mapping[str, Any], out: JSON) -> None:
    temperature = body.get("temperature")
    if temperature is not None:
        if not _is_number(temperature):
            raise InvalidRequest("temperature: expected a number")
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)  # OpenAI allows up to 2
    top_p = body.get("top_p")
    if top_p is not None:
        if not _is_number(top_p):
            raise InvalidRequest("top_p: expected a number")
        out["top_p"] = min(max(float(top_p), 0.0), 1.0)


def _stop_sequences(stop: Any) -> list[str]:
    if stop is None:
        return []
    items = [stop] if isinstance(stop, str) else stop
    if not isinstance(items, list):
        raise InvalidRequest("stop: expected a string or a list of strings")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidRequest(f"stop.{i}: expected a string")
    return [item for item in items if item.strip()]  # Anthropic rejects whitespace-only ones


# -- tools --------------------------------------------------------------------------------


def _tools(body: Mapping[str, Any], *, thinking: bool) -> tuple[list[JSON], JSON | None, bool]:
    raw = body.get("tools")
    if raw is None and body.get("functions") is not None:
        raise InvalidRequest("functions: the deprecated functions API is not supported; send tools")
    if raw is not None and not isinstance(raw, list):
        raise InvalidRequest("tools: expected a list of tools")
    tools = [_tool(tool, f"tools.{i}") for i, tool in enumerate(raw or [])]
    choice = _tool_choice(body.get("tool_choice"))
    schema = _response_schema(body.get("response_format"))
    if schema is not None:
        if not tools or (choice is not None and choice["type"] == "none"):
            # Nothing else may be called: make the answer the JSON tool, unless thinking
            # forbids forcing a tool, in which case the model is only offered it.
            choice = {"type": "auto"} if thinking else {"type": "tool", "name": JSON_TOOL_NAME}
        tools.append({"name": JSON_TOOL_NAME, "description": _JSON_TOOL_DESCRIPTION, "input_schema": schema})
    if body.get("parallel_tool_calls") is False and tools and (choice is None or choice["type"] != "none"):
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    return tools, choice, schema is not None


def _tool(tool: Any, path: str) -> JSON:
    if not isinstance(tool, dict):
        raise InvalidRequest(f"{path}: expected a tool object")
    kind = tool.get("type", "function")
    if kind != "function":
        if isinstance(tool.get("name"), str) and kind != "custom":
            return dict(tool)  # an Anthropic server tool (web_search_…) given as is
        raise InvalidRequest(f"{path}.type: only function tools can be sent to Anthropic, got {kind!r}")
    # Some clients send the Responses API's flat shape: name and parameters beside "type".
    function = tool.get("function", tool if "name" in tool else None)
    if not isinstance(function, dict):
        raise InvalidRequest(f"{path}.function: expected an object")
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{path}.function.name: expected a non-empty string")
    params = function.get("parameters")
    if params is None:
        schema = dict(_EMPTY_SCHEMA)
    elif isinstance(params, dict):
        schema = dict(params) if "type" in params else {"type": "object", **params}
    else:
        raise InvalidRequest(f"{path}.function.parameters: expected a JSON schema object")
    out: JSON = {"name": name}
    description = function.get("description")
    if isinstance(description, str) and description:
        out["description"] = description
    out["input_schema"] = schema
    if "cache_control" in tool:
        out["cache_control"] = tool["cache_control"]
    return out


def _tool_choice(choice: Any) -> JSON | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return dict(_TOOL_CHOICES[choice])
    if isinstance(choice, dict):
        function = choice.get("function")
        if choice.get("type") == "function" and isinstance(function, dict):
            name = function.get("name")
            if not isinstance(name, str) or not name:
                raise InvalidRequest("tool_choice.function.name: expected a non-empty string")
            return {"type": "tool", "name": name}
        allowed = choice.get("allowed_tools")
        if choice.get("type") == "allowed_tools" and isinstance(allowed, dict):
            # Anthropic cannot narrow the tool list per request; keep the mode at least.
            return {"type": "any"} if allowed.get("mode") == "required" else {"type": "auto"}
    raise InvalidRequest("tool_choice: expected auto, required, none or {type: function, function: {name}}")


def _response_schema(fmt: Any) -> JSON | None:
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if schema is None:
            return {"type": "object"}
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise InvalidRequest(
                'response_format.json_schema.schema: expected an object schema ({"type": "object", …})'
            )
        return dict(schema)
    raise InvalidRequest("response_format.type: expected text, json_object or json_schema")
