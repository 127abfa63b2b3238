"""Client session ids -> Claude Code sessions, and which of a request's turns are new.

A client names a session with any string (`/claude/{session_id}/v1/...`); the CLI wants a
UUID. Each id gets a fresh random UUID the first time ccproxy sees it (so two proxies, or one
restarted, never write into each other's CLI transcripts), kept with what the session has seen.

What the session has seen is one `Seen` entry per message, in client terms: the role, and for
user turns a fingerprint of their text. A request is then either

- the full history again (its first len(seen) messages agree with what was seen: roles
  everywhere, user text fingerprints): only the messages after them are new; or
- only the new turns (anything else): every message in it is new.

After the turn the session has seen the new messages and one assistant answer.
Pure: the runner holds the table and the clock.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson
from attrs import evolve, frozen

Seen = tuple[str, str]  # (role, fingerprint of a user turn's text; "" for other roles)


@frozen
class Session:
    client_id: str
    uuid: str
    seen: tuple[Seen, ...] = ()
    started: bool = False  # the CLI has a transcript to resume

    def after_turn(self, new: list[Any]) -> Session:
        """The session once the CLI answered the `new` messages."""
        return evolve(self, seen=(*self.seen, *(seen_entry(m) for m in new), ("assistant", "")), started=True)


def new_session(client_id: str) -> Session:
    return Session(client_id=client_id, uuid=str(uuid.uuid4()))


def seen_entry(message: Any) -> Seen:
    role = str(message.get("role")) if isinstance(message, dict) else ""
    if role != "user":
        return (role, "")
    content = message.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "\n".join(
            str(b.get("text") or "") if isinstance(b, dict) and b.get("type") == "text" else orjson.dumps(b).decode()
            for b in content
        )
    else:
        text = ""
    return (role, hashlib.sha256(text.strip().encode()).hexdigest()[:16])


def _agrees(message: Any, seen: Seen) -> bool:
    entry = seen_entry(message)
    return entry[0] == seen[0] and (seen[0] != "user" or entry[1] == seen[1])


def unseen(session: Session, messages: list[Any]) -> tuple[int, list[Any]]:
    """(offset, new messages): the turns of `messages` the session has not seen yet."""
    n = len(session.seen)
    if n and len(messages) > n and all(_agrees(m, s) for m, s in zip(messages, session.seen, strict=False)):
        return n, messages[n:]
    return 0, messages
