"""Error answers in the client's own dialect, rendered once for every path that refuses a request.

Three places refuse requests: the `guard` middleware (anything a handler raises), the
`Expect: 100-continue` check (before the body is sent), and the HTTP protocol itself
(malformed framing, framing.py). All three come here, so an OpenAI client always gets
`{"error":{...}}` and an Anthropic client `{"type":"error","error":{...}}`.

What a client sent may come back in a message (a header value, a path); it is escaped here
so that no input can make the renderer itself fail, and an error's headers are kept only
when they are plain printable ASCII, which any HTTP writer can send.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

from ccproxy_core.core.errors import ProxyError, anthropic_body, openai_status_and_body
from ccproxy_core.core.headers import ANTHROPIC_VERSION

_FRAMING = frozenset({"content-type", "content-length", "transfer-encoding", "content-encoding", "connection"})
_OPENAI_PATHS = ("/chat/completions", "/responses")


def openai_dialect(path: str, anthropic_version: bool) -> bool:
    """Whether a request to `path` speaks OpenAI (`/v1/models` does unless `anthropic-version` is sent)."""
    return path.endswith(_OPENAI_PATHS) or (path.endswith("/v1/models") and not anthropic_version)


def is_openai_dialect(request: web.BaseRequest) -> bool:
    return openai_dialect(request.path, ANTHROPIC_VERSION in request.headers)


def escaped(text: str) -> str:
    """`text` with anything that is not encodable UTF-8 (a lone surrogate from a bad byte) escaped."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers an error answer may carry: no framing headers, only printable ASCII values."""
    return {
        name: value
        for name, value in headers.items()
        if name.lower() not in _FRAMING and name.isascii() and value.isascii() and value.isprintable()
    }


def render_error(err: ProxyError, *, openai: bool | None) -> web.Response:
    """The answer for `err` in one dialect; with `openai=None` (dialect unknown), a body that
    carries the fields of both, which either SDK parses."""
    err.message = escaped(err.message)
    if openai:
        status, body = openai_status_and_body(err)
    elif openai is None:
        status, body = err.http_status, anthropic_body(err)
        body["error"] = {**openai_status_and_body(err)[1]["error"], **body["error"]}
    else:
        status, body = err.http_status, anthropic_body(err)
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=safe_headers(err.headers)
    )


def error_response(request: web.BaseRequest, err: ProxyError) -> web.Response:
    """The answer for `err` in the dialect of the endpoint `request` asked for."""
    return render_error(err, openai=is_openai_dialect(request))
