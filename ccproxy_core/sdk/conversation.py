"""A client's Messages request -> the one user turn Claude Code is sent, and its system text.

The CLI takes user turns only; it keeps its own history. So:

- turns the CLI has not seen that include earlier assistant turns (a stateless request with a
  history, or a new session that starts with one) are written out as a transcript in a text
  block, followed by the last user turn's own blocks;
- the last turn must be the user's (Claude Code cannot continue a prefilled assistant turn);
- the client's `system` (and any mid-conversation `system` message) goes to
  `--append-system-prompt`, so Claude Code keeps its own instructions for its tools;
- tools the client defines are refused: SDK mode runs Claude Code's own tools, and the
  client's would never be called.

Text and image blocks pass as they are; `tool_use`, `tool_result` and `thinking` blocks of the
history become text in the transcript. Sampling fields (`max_tokens`, `temperature`, ...)
have no CLI equivalent and are ignored.
"""

from __future__ import annotations

from typing import Any

import orjson
from attrs import frozen

from ccproxy_core.core.errors import InvalidRequest
from ccproxy_core.core.wire import JSON

TOOLS_REFUSED = (
    "tools: SDK mode runs Claude Code's own tools (set sdk.allowed_tools on the proxy) and cannot call "
    "tools defined by the client; send requests with client tools to /v1/messages or /v1/chat/completions"
)
HISTORY_OPEN = "Earlier turns of this conversation, for context:\n\n"
HISTORY_CLOSE = "\n(end of the earlier turns)\n\n"


@frozen
class CliTurn:
    content: tuple[JSON, ...]  # the blocks of the one user message the CLI is sent
    system: str


def refuse_client_tools(body: JSON) -> None:
    tools = body.get("tools")
    if tools or body.get("functions"):
        raise InvalidRequest(TOOLS_REFUSED)


def system_text(system: Any, path: str = "system") -> str:
    if system is None or system == "":
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n\n".join(_block_text(b, f"{path}.{i}") for i, b in enumerate(system))
    raise InvalidRequest(f"{path}: expected a string or a list of text blocks")


def _block_text(block: Any, path: str) -> str:
    """A block as transcript text."""
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        raise InvalidRequest(f"{path}: expected a content block (an object with a `type`)")
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text") or "")
    if kind == "thinking":
        return ""  # the model's private reasoning is not part of what was said
    if kind == "redacted_thinking":
        return ""
    if kind == "tool_use":
        return f"[called {block.get('name')}: {orjson.dumps(block.get('input') or {}).decode()}]"
    if kind == "tool_result":
        inner = block.get("content")
        text = (
            inner
            if isinstance(inner, str)
            else " ".join(_block_text(b, f"{path}.content") for b in inner or [] if isinstance(b, dict))
        )
        return f"[tool result: {text}]"
    if kind in ("image", "document"):
        return f"[{kind} omitted from the earlier turns]"
    return ""


def _blocks(content: Any, path: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequest(f"{path}.content: expected a string or a list of content blocks")
    out: list[JSON] = []
    for i, block in enumerate(content):
        if isinstance(block, dict) and block.get("type") in ("text", "image", "document"):
            out.append({k: v for k, v in block.items() if k != "cache_control"})
        else:
            text = _block_text(block, f"{path}.content.{i}")
            if text:
                out.append({"type": "text", "text": text})
    return out


def _role(message: Any, path: str) -> str:
    role = message.get("role") if isinstance(message, dict) else None
    if role not in ("user", "assistant", "system"):
        raise InvalidRequest(f'{path}.role: expected "user" or "assistant"')
    return str(role)


def cli_turn(messages: list[Any], system: Any, *, offset: int = 0) -> CliTurn:
    """The user turn for `messages` (the turns the CLI has not seen; `offset` numbers them in errors)."""
    if not messages:
        raise InvalidRequest("messages: expected at least one message")
    roles = [_role(m, f"messages.{offset + i}") for i, m in enumerate(messages)]
    systems = [system_text(system)] if system else []
    # The last user turn: the trailing user messages (a client may send several in a row).
    start = len(messages)
    while start > 0 and roles[start - 1] in ("user", "system"):
        start -= 1
    if not any(r == "user" for r in roles[start:]):
        raise InvalidRequest(
            f"messages.{offset + len(messages) - 1}: the last message must be the user's; Claude Code "
            "cannot continue a prefilled assistant turn"
        )
    history: list[str] = []
    for i, (message, role) in enumerate(zip(messages[:start], roles[:start], strict=True)):
        path = f"messages.{offset + i}"
        text = "\n".join(t for t in (_block_text(b, f"{path}.content") for b in _listed(message, path)) if t)
        if role == "system":
            systems.append(text)
        elif text:
            history.append(f"{'User' if role == 'user' else 'Assistant'}: {text}")
    content: list[JSON] = []
    for i, (message, role) in enumerate(zip(messages[start:], roles[start:], strict=True)):
        path = f"messages.{offset + start + i}"
        if role == "system":
            systems.append("\n".join(_block_text(b, path) for b in _listed(message, path)))
        else:
            content.extend(_blocks(message.get("content"), path))
    if history:
        content.insert(0, {"type": "text", "text": HISTORY_OPEN + "\n\n".join(history) + HISTORY_CLOSE})
    if not content:
        raise InvalidRequest(f"messages.{offset + len(messages) - 1}.content: the user turn is empty")
    return CliTurn(content=tuple(content), system="\n\n".join(s for s in systems if s))


def _listed(message: JSON, path: str) -> list[Any]:
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return content
    raise InvalidRequest(f"{path}.content: expected a string or a list of content blocks")
