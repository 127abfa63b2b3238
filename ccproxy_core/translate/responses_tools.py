"""Responses tools -> Anthropic tools: function, custom and namespace tools, tool_choice, text.format.

`function` tools map as they are. A `custom` tool (free-text input, e.g. Codex's apply_patch)
becomes a function with one string parameter `input`, its grammar added to the description.
A `namespace` is flattened to `<namespace>__<tool>`; `CallTarget` records what each Anthropic
name stands for, so the answer side can unflatten it. Any other tool type is hosted
(web_search, file_search, code_interpreter, ...): it can run only at OpenAI, so it is dropped
and named, and the `webSearch` route never sees it. `text.format` json_schema becomes the
schema of the `json_tool_call` tool, as `response_format` does on the Chat surface.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.responses_response import CallTarget
from ccproxy_core.translate.tool_names import safe_tool_name

NAMESPACE_SEPARATOR = "__"
CUSTOM_INPUT_SCHEMA: JSON = {
    "type": "object",
    "properties": {
        "input": {
            "type": "string",
            "description": "The tool's input, exactly as its description asks (free text, not JSON).",
        }
    },
    "required": ["input"],
}
_EMPTY_SCHEMA: JSON = {"type": "object", "properties": {}}
_TOOL_CHOICES: dict[str, JSON] = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}


def flat_name(namespace: str | None, name: str) -> str:
    """The Anthropic name of a client tool (namespaced or not), the same for its calls in the history."""
    return safe_tool_name(f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name)


def anthropic_tools(raw: Any) -> tuple[list[JSON], dict[str, CallTarget], list[str]]:
    """The Anthropic tools, what each name stands for, and the type of every tool dropped."""
    if raw is None:
        return [], {}, []
    if not isinstance(raw, list):
        raise InvalidRequest("tools: expected a list of tools")
    tools: list[JSON] = []
    targets: dict[str, CallTarget] = {}
    dropped: list[str] = []
    for i, tool in enumerate(raw):
        path = f"tools.{i}"
        if not isinstance(tool, dict):
            raise InvalidRequest(f"{path}: expected a tool object")
        kind = tool.get("type")
        if kind == "namespace":
            namespace = tool.get("name")
            inner = tool.get("tools")
            if not isinstance(namespace, str) or not namespace:
                raise InvalidRequest(f"{path}.name: expected a non-empty string")
            if not isinstance(inner, list):
                raise InvalidRequest(f"{path}.tools: expected a list of function or custom tools")
            for j, member in enumerate(inner):
                _tool(member, f"{path}.tools.{j}", namespace, tools, targets)
        elif kind in ("function", "custom"):
            _tool(tool, path, None, tools, targets)
        elif not isinstance(kind, str) or not kind:
            raise InvalidRequest(f"{path}.type: expected function, custom, namespace or a hosted tool's type")
        elif kind not in dropped:
            dropped.append(kind)
    return tools, targets, dropped


def _tool(tool: Any, path: str, namespace: str | None, tools: list[JSON], targets: dict[str, CallTarget]) -> None:
    if not isinstance(tool, dict) or tool.get("type") not in ("function", "custom"):
        raise InvalidRequest(f"{path}.type: expected a function or custom tool")
    kind = str(tool["type"])
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{path}.name: expected a non-empty string")
    anthropic_name = flat_name(namespace, name)
    given = tool.get("description")
    description = given if isinstance(given, str) else ""
    if kind == "custom":
        schema = CUSTOM_INPUT_SCHEMA
        fmt = tool.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
            description += (
                f"\n\nThe input must match this {fmt.get('syntax') or 'grammar'} grammar:\n{fmt['definition']}"
            )
    else:
        params = tool.get("parameters")
        if params is None:
            schema = _EMPTY_SCHEMA
        elif isinstance(params, dict):
            schema = dict(params) if "type" in params else {"type": "object", **params}
        else:
            raise InvalidRequest(f"{path}.parameters: expected a JSON schema object")
    out: JSON = {"name": anthropic_name}
    if description:
        out["description"] = description
    out["input_schema"] = dict(schema)
    tools.append(out)
    targets[anthropic_name] = CallTarget(kind, name, namespace)


def tool_choice(choice: Any, targets: Mapping[str, CallTarget]) -> JSON | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice in _TOOL_CHOICES:
            return None if not targets and choice != "none" else dict(_TOOL_CHOICES[choice])
        raise InvalidRequest("tool_choice: expected auto, required, none or an object naming a tool")
    if not isinstance(choice, dict):
        raise InvalidRequest("tool_choice: expected auto, required, none or an object naming a tool")
    kind = choice.get("type")
    if kind in ("function", "custom"):
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest("tool_choice.name: expected a non-empty string")
        wanted = next((n for n, t in targets.items() if t.name == name), None)
        if wanted is None:
            raise InvalidRequest(f"tool_choice.name: {name!r} is not one of the request's function or custom tools")
        return {"type": "tool", "name": wanted}
    if kind == "allowed_tools":
        # Anthropic cannot narrow the tool list per request; keep the mode at least.
        return {"type": "any"} if choice.get("mode") == "required" and targets else None
    return None  # a hosted tool (dropped) or an MCP server: the model chooses among the rest


def text_format(text: Any) -> JSON | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        raise InvalidRequest('text: expected an object such as {"format": {"type": "text"}}')
    fmt = text.get("format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        schema = fmt.get("schema")
        if schema is None:
            return {"type": "object"}
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise InvalidRequest('text.format.schema: expected an object schema ({"type": "object", …})')
        return dict(schema)
    raise InvalidRequest("text.format.type: expected text, json_object or json_schema")
