"""Sticky sessions: the requests of one conversation stay on the credential that served it.

Anthropic's prompt cache is per account: a conversation moved to another account re-reads its
whole context at full price. So a conversation (a session key read from the request by
`session_key`) is remembered with the credential that last served it, and the pool is asked to
`prefer` that one while it is usable; a new conversation still goes round robin. When the
preferred credential is limited the pool picks another, and the conversation sticks to that.

`StickyTable` is bounded (least recently seen dropped first) and forgets a conversation
`ttl` seconds after its last request. Pure: the clock is passed in.

A conversation that moved may carry thinking blocks signed for the first account, which the new
one can refuse (400 "Invalid signature in thinking block"); `without_earlier_thinking` is the
same request with the thinking blocks of earlier assistant turns dropped, for one retry.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Any

import orjson

SESSION_HEADER = "X-Claude-Code-Session-Id"  # the same name reqlog records in the ledger

DEFAULT_TTL = 3600.0
MAX_SESSIONS = 100_000


class StickyTable:
    def __init__(self, ttl: float = DEFAULT_TTL, max_size: int = MAX_SESSIONS) -> None:
        self.ttl, self.max_size = ttl, max_size
        # session -> (credential, last seen, last told to other instances)
        self._entries: OrderedDict[str, tuple[str, float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, session: str, now: float) -> str | None:
        """The credential this conversation sticks to, or None (new, or idle past the TTL)."""
        entry = self._entries.get(session)
        if entry is None:
            return None
        if now - entry[1] > self.ttl:
            del self._entries[session]
            return None
        return entry[0]

    def put(self, session: str, credential: str, now: float) -> bool:
        """This conversation was just served by `credential`: it sticks there for another TTL.

        True when other instances should hear of it: a new or moved binding, or one last
        told more than half a TTL ago (so their copies never lapse while it is in use)."""
        before = self._entries.get(session)
        news = before is None or before[0] != credential or now - before[2] > self.ttl / 2
        self._entries[session] = (credential, now, now if news or before is None else before[2])
        self._entries.move_to_end(session)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)
        self._expire(now)
        return news

    def _expire(self, now: float, budget: int = 8) -> None:
        # The oldest entries are first: drop a few lapsed ones per call, so no call is ever slow.
        while budget and self._entries:
            session, (_, seen, _told) = next(iter(self._entries.items()))
            if now - seen <= self.ttl:
                return
            del self._entries[session]
            budget -= 1

    def sessions(self, now: float) -> Counter[str]:
        """Live conversations per credential name."""
        return Counter(cred for cred, seen, _ in self._entries.values() if now - seen <= self.ttl)


def session_key(headers: Any, body: Any, path_session: str | None = None) -> str | None:
    """What identifies a conversation: Claude Code's session header, the `session_id` in
    `metadata.user_id` (a JSON string, or the older `user_..._session_<id>` form), a Responses
    path's session id, or an OpenAI client's `prompt_cache_key` / `user`. None: no conversation."""
    header = headers.get(SESSION_HEADER) if headers is not None else None
    if header:
        return f"cc:{header}"
    if path_session:
        return f"codex:{path_session}"
    if not isinstance(body, dict):
        return None
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if isinstance(user_id, str) and user_id:
        found = _session_in_user_id(user_id)
        if found:
            return f"cc:{found}"
    for field in ("prompt_cache_key", "user"):
        value = body.get(field)
        if isinstance(value, str) and value:
            return f"{field}:{value}"
    return None


def _session_in_user_id(user_id: str) -> str | None:
    if user_id.startswith("{"):
        try:
            doc = orjson.loads(user_id)
        except orjson.JSONDecodeError:
            return None
        value = doc.get("session_id") if isinstance(doc, dict) else None
        return value if isinstance(value, str) and value else None
    _, sep, rest = user_id.rpartition("_session_")
    return (rest or None) if sep else None


# --- a moved conversation's thinking signatures ---------------------------------------------------


def is_signature_error(status: int, data: bytes) -> bool:
    """The provider refused the history's thinking signatures (signed for another account)."""
    if status != 400:
        return False
    text = data[:4096].lower()
    return b"signature" in text and b"thinking" in text


def without_earlier_thinking(body: dict[str, Any]) -> dict[str, Any] | None:
    """The request with every thinking block of earlier assistant turns dropped; None if it has none.

    The last assistant turn keeps its blocks when it ends in a tool use the client is answering
    (Anthropic requires them there); an assistant turn left empty gets a placeholder text."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    keep_last = _answering_tool(messages)
    last_assistant = max((i for i, m in enumerate(messages) if _role(m) == "assistant"), default=-1)
    changed, out = False, []
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if _role(message) != "assistant" or not isinstance(content, list) or (keep_last and i == last_assistant):
            out.append(message)
            continue
        kept = [b for b in content if not (isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking"))]
        if len(kept) != len(content):
            changed = True
            message = {**message, "content": kept or [{"type": "text", "text": "(thinking omitted)"}]}
        out.append(message)
    return {**body, "messages": out} if changed else None


def _role(message: Any) -> Any:
    return message.get("role") if isinstance(message, dict) else None


def _answering_tool(messages: list[Any]) -> bool:
    last = messages[-1] if messages else None
    content = last.get("content") if isinstance(last, dict) and _role(last) == "user" else None
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
