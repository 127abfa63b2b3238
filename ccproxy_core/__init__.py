"""ccproxy: one HTTP server between LLM clients and LLM providers.

The package is layered; a module may import from its own layer and the layers above it in
this list, never from a layer below:

    core/        pure decisions: errors, headers, routing, the credential pool and its failover
                 policy, outcomes, breakers, buckets, client-key limits, sticky sessions,
                 rate-limit headers, SSE framing, token estimates, prices, and the rules by
                 which instances share state (shared.py, shared_counts.py). No I/O: nothing here
                 imports aiohttp, asyncio, os, pathlib or time (tests/unit/test_layers.py holds it
                 to that); clocks are passed in.
    translate/   pure, sans-I/O converters between the wire dialects (requests, answers, and
                 streams as explicit state machines).
    providers/   pure facts about provider kinds and presets (URLs, auth headers, quirks), the
                 rules a preset makes for one model (rules.py), tool-schema rewriting (schemas.py).
    files.py     atomic file writes, shared by the I/O layers below.
    dirs.py      the default config, state, log and cache directories (XDG; platformdirs elsewhere).
    config/      the configuration model (attrs + cattrs), how its layers load, foreign formats.
    accounts/    accounts.json (one writer per file, watch) and Claude OAuth (login, refresh);
                 ChatGPT OAuth for `codex` providers (codex.py), refreshed by the same scheduler;
                 what both token endpoints share (grant.py).
    usage/       the usage ledger (SQLite, written in batches off the event loop) and its queries.
    keys/        client keys: their model and their store (hashed, SQLite).
    sdk/         SDK mode: the local Claude Code CLI driven over its stream-json protocol.
    server/      the aiohttp shell: app and middlewares, run-time state, dispatch over routes,
                 upstream calls with their credentials, the byte and event pumps, handlers/;
                 the shared-state backends (shared.py: in process; redis_state.py: Redis, loaded
                 only when configured) and a worker's side of `serve --workers`.
    cli/         the `ccproxy` command: argparse over plain functions, the daemon, the service,
                 the supervisor of `serve --workers`.

The path of one request (`POST /v1/messages` from Claude Code):

    server.app (middlewares: observe; guard: client auth, client keys, errors as answers)
      -> server.handlers.messages        read the body once (bounded, after auth)
      -> server.dispatch.plan_request    core.routing.route -> candidates (primary + fallbacks)
      -> server.dispatch.run             per candidate: breaker gate, provider bucket
         -> server.calls.anthropic_call  per credential: core.failover plan over core.pool,
                                         core.outcome.classify of each error answer, one
                                         Outcome read by the pool, the failover and the breaker
         -> server.upstream              the Upstream interface (server.http1; in memory in tests)
         -> server.relay.pump_bytes      stream the provider's bytes to the client as they come
      <- server.observability            the access-log line, the ledger row, the metrics
"""

__version__ = "0.1.0"
