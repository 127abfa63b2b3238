"""`GET /dashboard`: one self-contained page (static/dashboard.html) that polls the JSON APIs.

The page holds no data, so it is served without the proxy key (a browser cannot send a header
when it navigates); the page asks for the key once and sends it with each API call. It is read
from the package once and kept, and forbids loading anything from anywhere but this server.
"""

from __future__ import annotations

import functools
from importlib import resources

from aiohttp import web

# Everything the page needs is inline; connect-src 'self' keeps its polling on this server.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@functools.cache
def page() -> bytes:
    return resources.files("ccproxy_core.server").joinpath("static/dashboard.html").read_bytes()


async def dashboard(request: web.Request) -> web.Response:
    return web.Response(
        body=page(),
        content_type="text/html",
        charset="utf-8",
        headers={
            "content-security-policy": CSP,
            "cache-control": "no-store",
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
        },
    )
