"""An Anthropic request's client tools and `tool_choice`, read once for both OpenAI APIs.

Chat Completions and Responses take the same function tools and the same choices, in two
shapes (`{"type": "function", "function": {...}}` against `{"type": "function", "name": ...}`);
what a request means is read here, and each translator writes its own shape:

    read_tools(raw, names, dropped=...)         -> [FunctionTool]   server tools skipped
    read_tool_choice(choice, names, declared)   -> ToolChoice       auto / any / tool / none
"""

from __future__ import annotations

from typing import Any

from attrs import frozen

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.core.wire import JSON
from ccproxy_core.translate.tool_names import ToolNames

EMPTY_SCHEMA: JSON = {"type": "object", "properties": {}}


@frozen
class FunctionTool:
    name: str  # as sent upstream (ToolNames.to_upstream)
    description: str  # "" when the client gave none
    schema: JSON


@frozen
class ToolChoice:
    mode: str | None  # "auto", "required" or "none"; None: leave it to the provider
    forced: str | None  # the one tool a `{"type": "tool"}` choice forces, as sent upstream
    serial: bool  # disable_parallel_tool_use: parallel calls must be switched off


def read_tools(
    tools: Any, names: ToolNames, *, dropped: list[str] | None = None, require_name: bool = False
) -> list[FunctionTool]:
    """The client tools; server tools (web_search_*, bash_*, ...) run only inside Anthropic and
    are skipped (and named in `dropped`). `require_name`: an empty name is refused too."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("tools: expected a list")
    out: list[FunctionTool] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"tools.{i}: expected an object")
        if tool.get("type") not in (None, "custom"):
            if dropped is not None:
                dropped.append(f"tools.{i} ({tool.get('type')})")
            continue
        name = tool.get("name")
        if not isinstance(name, str) or (require_name and not name):
            raise InvalidRequest(f"tools.{i}.name: expected a string")
        schema = tool.get("input_schema", EMPTY_SCHEMA)
        if not isinstance(schema, dict):
            raise InvalidRequest(f"tools.{i}.input_schema: expected an object")
        description = tool.get("description")
        out.append(FunctionTool(names.to_upstream(name), description if isinstance(description, str) else "", schema))
    return out


_NO_CHOICE = ToolChoice(None, None, False)


def read_tool_choice(choice: Any, names: ToolNames, declared: set[str]) -> ToolChoice:
    """Anthropic's tool_choice; `declared` are the upstream names of the tools sent."""
    if choice is None:
        return _NO_CHOICE
    if not isinstance(choice, dict):
        raise InvalidRequest("tool_choice: expected an object")
    kind = choice.get("type")
    serial = choice.get("disable_parallel_tool_use") is True
    if kind == "auto":
        return ToolChoice("auto", None, serial)
    if kind == "any":
        return ToolChoice("required", None, serial)
    if kind == "none":
        return ToolChoice("none", None, False)
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise InvalidRequest("tool_choice.name: expected a string")
        upstream = names.to_upstream(name)
        if upstream not in declared:
            return ToolChoice(None, None, serial)  # it named a server tool that was dropped
        return ToolChoice(None, upstream, serial)
    raise InvalidRequest('tool_choice.type: expected "auto", "any", "tool" or "none"')
