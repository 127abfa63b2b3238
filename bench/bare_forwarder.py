"""The floor: an aiohttp + uvloop byte forwarder that does nothing but forward.

`python bench/bare_forwarder.py PORT UPSTREAM_URL` forwards every POST to the same path on
UPSTREAM_URL with one pooled client session, JSON whole and SSE chunk by chunk. No parsing,
routing, auth or error handling: what is left is the cost of aiohttp itself on both sides.
"""

from __future__ import annotations

import sys

import aiohttp
from aiohttp import web


async def forward(request: web.Request) -> web.StreamResponse:
    session: aiohttp.ClientSession = request.app["session"]
    body = await request.read()
    async with session.post(
        request.app["upstream"] + request.path, data=body, headers={"content-type": "application/json"}
    ) as upstream:
        if upstream.content_type != "text/event-stream":
            return web.Response(status=upstream.status, body=await upstream.read(), content_type="application/json")
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def session_ctx(app: web.Application) -> object:
    app["session"] = aiohttp.ClientSession(auto_decompress=False)
    yield
    await app["session"].close()


def main() -> None:
    import uvloop

    uvloop.install()
    app = web.Application()
    app["upstream"] = sys.argv[2]
    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/{tail:.*}", forward)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
