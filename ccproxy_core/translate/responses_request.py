"""OpenAI Responses request -> Anthropic Messages request.

`responses_to_messages` takes the body a Responses client sent (the openai SDK's
`client.responses.create`, Codex CLI) and returns the body for an Anthropic upstream plus a
`ResponsesPlan`: what the answer side must know to speak Responses again (which Anthropic tool
stands for which client tool, the tools that were dropped, JSON mode, the fields a `response`
object repeats). A Chat Completions provider is reached from here through the existing
Messages -> Chat translator, so there is one Responses pair, not two.

The conversation:
- `instructions`, then every `system` / `developer` message wherever it sits, become
  `system` text blocks in that order (Codex sends no `instructions`, only developer messages);
- `user` messages, `function_call_output` and `custom_tool_call_output` items become user
  turns (tool results first, as Anthropic wants); `assistant` messages, `reasoning`,
  `function_call` and `custom_tool_call` items become assistant turns; adjacent turns of one
  role merge, so a reasoning item, a message and a call from one model turn land together;
- a `reasoning` item whose `encrypted_content` ccproxy wrote restores its thinking block
  exactly (see `responses_response`); any other reasoning item is dropped, since Anthropic
  cannot check OpenAI's;
- message parts (`input_text`, `input_image`, `input_file`) are converted by the Chat
  Completions content helpers in `messages_content`, one rule for images and PDFs.

Tools (function, custom, namespace; hosted ones dropped and named) are `responses_tools`' job.

Thinking: `reasoning.effort` maps to a budget by `THINKING_BUDGETS`, the one table the Chat
Completions surface uses too, with the same rules (max_tokens grows past the budget; thinking
stays off for a tool loop whose signed thinking was not sent back; sampling is dropped). A
`tool_choice` that forces a call also leaves thinking off, as Anthropic allows no forced tool
with thinking.
`text.format` json_schema becomes the `json_tool_call` tool, as `response_format` does.

Refused with a 400 naming the field: `previous_response_id` and `conversation` (ccproxy keeps
no responses: send the whole conversation), stored `prompt` templates, `background`, item
references, file ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.messages_content import parse_arguments, tool_result_block, user_blocks
from ccproxy_core.translate.messages_request import THINKING_BUDGETS, tool_loop_without_thinking
from ccproxy_core.translate.messages_response import JSON_TOOL_NAME
from ccproxy_core.translate.responses_response import CallTarget, ResponsesPlan, decode_thinking, response_echo
from ccproxy_core.translate.responses_tools import anthropic_tools, flat_name, text_format, tool_choice
from ccproxy_core.translate.tool_names import safe_tool_use_id

_JSON_TOOL_DESCRIPTION = "Respond with a JSON object that matches this schema."
_CACHE = {"type": "ephemeral"}
_USER_ID = re.compile(r"[^@\s]{1,512}")  # Anthropic asks for an opaque id: no emails

_ASSISTANT_ITEMS = frozenset({"function_call", "custom_tool_call", "reasoning"})
_RESULT_ITEMS = frozenset({"function_call_output", "custom_tool_call_output"})
# Items only OpenAI can act on: calls of hosted tools (the provider could not have made them) and
# compaction summaries (encrypted by OpenAI). Nothing to replay; they are left out.
_OPENAI_ONLY_ITEMS = frozenset(
    {
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "image_generation_call",
        "computer_call",
        "computer_call_output",
        "mcp_call",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "tool_search_call",
        "tool_search_output",
        "compaction",
    }
)


def responses_to_messages(body: JSON, *, model: str, default_max_tokens: int = 4096) -> tuple[JSON, ResponsesPlan]:
    """Translate a Responses request body; returns (Anthropic body, plan for the answer)."""
    if not isinstance(body, dict):
        raise InvalidRequest("body: expected a JSON object")
    _refuse_state(body)
    tools, targets, dropped = anthropic_tools(body.get("tools"))
    system = _instructions(body.get("instructions"))
    turns = _Conversation(targets)
    turns.add_input(body.get("input"))
    system.extend(turns.system)

    choice = tool_choice(body.get("tool_choice"), targets)
    budget = _thinking_budget(body.get("reasoning"))
    if budget is not None and (tool_loop_without_thinking(turns.turns) or _forces_a_tool(choice)):
        budget = None  # Anthropic refuses thinking in both cases; the conversation and the forced call come first
    out: JSON = {
        "model": model,
        "messages": turns.finished(),
        "max_tokens": _max_tokens(body.get("max_output_tokens"), default_max_tokens, budget),
    }
    if system:
        system[-1]["cache_control"] = dict(_CACHE)
        out["system"] = system
    if budget is not None:
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    else:
        _sampling(body, out)
    schema = text_format(body.get("text"))
    if schema is not None:
        if not tools or (choice is not None and choice["type"] == "none"):
            # Nothing else may be called: the JSON tool is the answer, unless thinking forbids
            # forcing a tool; then it is only offered.
            choice = {"type": "auto"} if budget is not None else {"type": "tool", "name": JSON_TOOL_NAME}
        tools.append({"name": JSON_TOOL_NAME, "description": _JSON_TOOL_DESCRIPTION, "input_schema": schema})
    if tools:
        out["tools"] = tools
        if body.get("parallel_tool_calls") is False and (choice is None or choice["type"] != "none"):
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if choice is not None:
            out["tool_choice"] = choice
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str) and _USER_ID.fullmatch(user):
        out["metadata"] = {"user_id": user}
    if isinstance(body.get("stream"), bool):
        out["stream"] = body["stream"]
    plan = ResponsesPlan(
        targets=targets,
        dropped_tools=tuple(dropped),
        json_mode=schema is not None,
        effort=_effort(body.get("reasoning")) if budget is not None else None,
        echo=response_echo(body),
    )
    return out, plan


def _refuse_state(body: Mapping[str, Any]) -> None:
    previous = body.get("previous_response_id")
    if previous is not None:
        raise InvalidRequest(
            f"previous_response_id: ccproxy keeps no responses, so {previous!r} cannot be continued; "
            "send the whole conversation in `input` (as `store: false` clients do)"
        )
    if body.get("conversation") is not None:
        raise InvalidRequest("conversation: ccproxy keeps no conversations; send the whole conversation in `input`")
    if body.get("prompt") is not None:
        raise InvalidRequest("prompt: stored prompt templates live at OpenAI; send `instructions` and `input`")
    if body.get("background") is True:
        raise InvalidRequest("background: ccproxy answers in the foreground only; leave `background` out")


# -- conversation -------------------------------------------------------------------------


def _instructions(value: Any) -> list[JSON]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "text", "text": value}] if value.strip() else []
    raise InvalidRequest("instructions: expected a string")


def _chat_part(part: Any, path: str) -> Any:
    """A Responses content part as the Chat Completions part `messages_content` converts."""
    if not isinstance(part, dict):
        raise InvalidRequest(f"{path}: expected a content part object")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": part.get("text")}
    if kind == "refusal":
        return {"type": "text", "text": part.get("refusal")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            if part.get("file_id"):
                raise InvalidRequest(f"{path}.file_id: uploaded file ids cannot be resolved; send image_url")
            raise InvalidRequest(f"{path}.image_url: expected a URL or a data URL")
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "input_file":
        if part.get("file_url"):
            raise InvalidRequest(f"{path}.file_url: ccproxy does not fetch files; send file_data")
        spec = {k: part[k] for k in ("file_data", "file_id", "filename") if k in part}
        return {"type": "file", "file": spec}
    raise InvalidRequest(f"{path}.type: content parts of type {kind!r} cannot be sent to the model")


def _chat_content(content: Any, path: str) -> Any:
    if isinstance(content, str) or content is None:
        return content
    if isinstance(content, list):
        return [_chat_part(part, f"{path}.{j}") for j, part in enumerate(content)]
    raise InvalidRequest(f"{path}: expected a string or a list of content parts")


class _Conversation:
    """Input items -> system blocks and alternating Anthropic turns, in one pass."""

    def __init__(self, targets: Mapping[str, CallTarget]) -> None:
        self.system: list[JSON] = []
        self.turns: list[JSON] = []
        # client (namespace, name) -> Anthropic tool name, for calls in the history
        self._names = {(t.namespace, t.name): name for name, t in targets.items()}

    def add_input(self, value: Any) -> None:
        if isinstance(value, str):
            self._add("user", user_blocks(value, "input"))
            return
        if not isinstance(value, list) or not value:
            raise InvalidRequest("input: expected a string or a non-empty list of input items")
        for i, item in enumerate(value):
            self._item(item, f"input.{i}")

    def finished(self) -> list[JSON]:
        if not self.turns:
            raise InvalidRequest("input: expected at least one user message, call or call output")
        self._answer_missing_results()
        last = self.turns[-1]
        for block in reversed(last["content"]):
            if block["type"] not in ("thinking", "redacted_thinking"):
                block["cache_control"] = dict(_CACHE)
                break
        return self.turns

    def _add(self, role: str, blocks: list[JSON]) -> None:
        if not blocks:
            return  # an empty turn would be rejected; its neighbours may merge instead
        if self.turns and self.turns[-1]["role"] == role:
            content = self.turns[-1]["content"]
            if role == "user" and blocks[0]["type"] == "tool_result":
                # results first: after earlier results, before any text of this turn
                at = next((k for k, b in enumerate(content) if b["type"] != "tool_result"), len(content))
                content[at:at] = blocks
            else:
                content.extend(blocks)
        else:
            self.turns.append({"role": role, "content": list(blocks)})

    def _item(self, item: Any, path: str) -> None:
        if not isinstance(item, dict):
            raise InvalidRequest(f"{path}: expected an input item object")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            self._message(item, path)
        elif kind in _ASSISTANT_ITEMS:
            block = self._assistant_item(kind, item, path)
            if block is not None:
                self._add("assistant", [block])
        elif kind in _RESULT_ITEMS:
            chat_tool = {
                "tool_call_id": item.get("call_id"),
                "content": _chat_content(item.get("output"), f"{path}.output"),
            }
            self._add("user", [tool_result_block(chat_tool, path)])
        elif kind in _OPENAI_ONLY_ITEMS:
            return
        elif kind == "item_reference":
            raise InvalidRequest(
                f"{path}: item references need stored responses, which ccproxy does not keep; send the item itself"
            )
        else:
            raise InvalidRequest(f"{path}.type: input items of type {kind!r} cannot be sent to the model")

    def _message(self, item: Mapping[str, Any], path: str) -> None:
        role = item.get("role")
        content = _chat_content(item.get("content"), f"{path}.content")
        if role in ("system", "developer"):
            self.system.extend(user_blocks(content, path) if content is not None else [])
            if any(block["type"] != "text" for block in self.system):
                raise InvalidRequest(f"{path}.content: {role} messages can hold text only")
        elif role == "user":
            self._add("user", user_blocks(content, path) if content is not None else [])
        elif role == "assistant":
            # history text only: images are not an assistant's to send
            blocks = user_blocks(content, path) if content is not None else []
            self._add("assistant", [b for b in blocks if b["type"] == "text"])
        else:
            raise InvalidRequest(f"{path}.role: expected user, assistant, system or developer, got {role!r}")

    def _assistant_item(self, kind: str, item: Mapping[str, Any], path: str) -> JSON | None:
        if kind == "reasoning":
            return decode_thinking(item.get("encrypted_content"))
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"{path}.name: expected a non-empty string")
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequest(f"{path}.call_id: expected a non-empty string")
        namespace = item.get("namespace") if isinstance(item.get("namespace"), str) else None
        anthropic_name = self._names.get((namespace, name)) or flat_name(namespace, name)
        if kind == "custom_tool_call":
            raw = item.get("input")
            tool_input: JSON = {"input": raw if isinstance(raw, str) else ""}
        else:
            tool_input = parse_arguments(item.get("arguments"))
        return {"type": "tool_use", "id": safe_tool_use_id(call_id), "name": anthropic_name, "input": tool_input}

    def _answer_missing_results(self) -> None:
        """Anthropic wants every tool_use answered in the next turn, and every tool_result to answer one.

        A call without output gets a note; an output whose call is not in the turn before (a
        history the client trimmed) becomes text, so its content still reaches the model."""
        k = 0
        while k < len(self.turns):
            turn = self.turns[k]
            calls = [b["id"] for b in turn["content"] if b["type"] == "tool_use"] if turn["role"] == "assistant" else []
            following = self.turns[k + 1] if k + 1 < len(self.turns) else None
            if following is not None and following["role"] == "user":
                content = [_orphan_as_text(b) if _orphan(b, calls) else b for b in following["content"]]
                content.sort(key=lambda b: b["type"] != "tool_result")  # stable: results first, order kept
                following["content"] = content
            answered = {b.get("tool_use_id") for b in following["content"]} if following else set()
            missing = [
                {"type": "tool_result", "tool_use_id": c, "content": "[no output was recorded for this call]"}
                for c in calls
                if c not in answered
            ]
            if missing and (following is None or following["role"] != "user"):
                self.turns.insert(k + 1, {"role": "user", "content": missing})
            elif missing and following is not None:
                following["content"][0:0] = missing
            k += 1
        first = self.turns[0]
        if first["role"] == "user":
            first["content"] = [_orphan_as_text(b) if _orphan(b, []) else b for b in first["content"]]


def _orphan(block: JSON, calls: list[str]) -> bool:
    return block["type"] == "tool_result" and block.get("tool_use_id") not in calls


def _orphan_as_text(block: JSON) -> JSON:
    content = block.get("content")
    if isinstance(content, list):
        content = "\n".join(str(part.get("text", "")) for part in content if part.get("type") == "text")
    return {"type": "text", "text": f"[output of tool call {block.get('tool_use_id')}]\n{content or ''}"}


# -- scalar fields ------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _forces_a_tool(choice: JSON | None) -> bool:
    return choice is not None and choice["type"] in ("any", "tool")


def _effort(reasoning: Any) -> str | None:
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    return effort if isinstance(effort, str) else None


def _thinking_budget(reasoning: Any) -> int | None:
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        raise InvalidRequest('reasoning: expected an object such as {"effort": "medium"}')
    effort = reasoning.get("effort")
    if effort is None:
        return None
    if not isinstance(effort, str) or effort not in THINKING_BUDGETS:
        raise InvalidRequest(f"reasoning.effort: expected one of {', '.join(THINKING_BUDGETS)}")
    return THINKING_BUDGETS[effort]


def _max_tokens(given: Any, default: int, budget: int | None) -> int:
    value = default
    if given is not None:
        if not _is_int(given) or given < 1:
            raise InvalidRequest("max_output_tokens: expected a positive integer")
        value = given
    if budget is not None and value <= budget:
        value += budget  # the client still gets the answer length it asked for
    return value


def _sampling(body: Mapping[str, Any], out: JSON) -> None:
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InvalidRequest(f"{key}: expected a number")
        out[key] = min(max(float(value), 0.0), 1.0)  # OpenAI allows temperature up to 2
