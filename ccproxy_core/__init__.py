"""ccproxy: one HTTP server between LLM clients and LLM providers.

The package is layered; a module may import from its own layer and the layers above it in
this list, never from a layer below:

    core/        pure decisions: errors, headers, routing, the credential pool and its failover
                 policy, outcomes, breakers, buckets, rate-limit headers, SSE framing, token
                 estimates. No I/O: nothing here imports aiohttp, asyncio, os, pathlib or time
                 (tests/unit/test_layers.py holds it to that); clocks are passed in.
    translate/   pure, sans-I/O converters between the wire dialects (requests, answers, and
                 streams as explicit state machines).
    providers/   pure facts about provider kinds and presets (URLs, auth headers, quirks).
    files.py     atomic file writes, shared by the I/O layers below.
    config/      the configuration model (attrs + cattrs), how its layers load, foreign formats.
    accounts/    accounts.json (store, watch) and Claude OAuth (login, refresh scheduler).
    server/      the aiohttp shell: app and middlewares, run-time state, dispatch over routes,
                 upstream calls with their credentials, the byte and event pumps, handlers/.
    cli/         the `ccproxy` command: argparse over plain functions, the daemon, launchers.

The path of one request (`POST /v1/messages` from Claude Code):

    server.app (middlewares: errors, client auth)
      -> server.handlers.messages        read the body once
      -> server.dispatch.plan_request    core.routing.route -> candidates (primary + fallbacks)
      -> server.dispatch.run             per candidate: breaker gate, provider bucket
         -> server.calls.anthropic_call  per credential: core.failover plan over core.pool,
                                         core.outcome.classify of each error answer
         -> server.relay.pump_bytes      stream the provider's bytes to the client as they come
"""

__version__ = "0.1.0"
