"""Which conversation a request belongs to, noted where its body is read, for sticky credentials.

`note` reads the session key (core/sticky.py: Claude Code's session header or the session in
`metadata.user_id`, a Responses path's session id, an OpenAI client's `prompt_cache_key` /
`user`) and keeps it on the request; the credential loop (calls.py) passes it to the pool so
the conversation stays on the credential that served it. The ledger's `session_id` gets it too
when the Claude Code header did not already set it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ccproxy_core.core import sticky
from ccproxy_core.server import reqlog

STICKY: web.RequestKey[str | None] = web.RequestKey("ccproxy.sticky")


def note(request: web.Request, body: Any) -> None:
    key = sticky.session_key(request.headers, body, request.match_info.get("session_id"))
    request[STICKY] = key  # None too: `of` then finds it without a KeyError (about 13,000 instructions)
    if key is None:
        return
    entry = reqlog.log_of(request)
    if not entry.session_id:
        entry.session_id = key.partition(":")[2]


def of(request: web.Request) -> str | None:
    try:
        return request[STICKY]  # (not request.get: on a Request that is the Mapping ABC's, two calls)
    except KeyError:  # a path that reads no body
        return None
