"""The aiohttp application: a literal route table, the middlewares, startup and shutdown.

Two middlewares (each layer costs every request a coroutine and its resumptions), outermost first:
- `observability.observe`: a request id on every response, one access-log line, the usage
  ledger row and the metrics of each request (499 when the client goes away).
- `guard`, which does, in this order:
  - client auth (`refusal`): with `apikey` set, every request but `/health` and the `HEAD /`
    warm-up must carry it (`x-api-key` or `Authorization: Bearer`), compared in constant time;
    without it, only loopback clients are served. It runs before any handler reads (or
    inflates) a body, and first refuses header values that are not UTF-8, so no later step
    meets an unencodable one.
  - `keyguard.enforce`, only for a request that presented a client key (one without pays
    nothing for it): each request's key, its limits and budgets.
  - errors: every `ProxyError` (and every aiohttp HTTP error, and anything unexpected) becomes
    an answer in the client's own dialect, scrubbed of secrets; no traceback ever reaches a
    client. Once a stream has started, errors are the pumps' business (server/relay.py): they
    end it with one error event; nothing here ever writes a second response into an open body.

A client that sends `Expect: 100-continue` is checked the same way (and against the body
size limit) before it is told to send its body (`expect_continue`). Requests aiohttp cannot
parse at all are answered by the protocol (framing.py), which `run` serves through.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from ccproxy_core.config.model import Config
from ccproxy_core.core.errors import (
    AuthenticationFailed,
    ExpectationFailed,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ProxyError,
    RequestTooLarge,
)
from ccproxy_core.core.headers import bearer_token
from ccproxy_core.core.inbound import header_problem
from ccproxy_core.core.redaction import Redactor, SecretsFilter
from ccproxy_core.server import framing, keyguard, lazy, loops, observability, replies, reqlog, sdk_mode
from ccproxy_core.server.handlers import chat, common, health, messages, metrics, models
from ccproxy_core.server.state import STATE, State, UpstreamFactory
from ccproxy_core.server.upstream import Http1Upstream
from ccproxy_core.server.workers import WORKER, WorkerSlot, watch_supervisor

log = logging.getLogger("ccproxy")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

OPEN_PATHS = frozenset({"/health", "/dashboard"})  # the dashboard page holds no data


def error_response(request: web.Request, err: ProxyError) -> web.Response:
    err.message = request.app[STATE].redactor.scrub(err.message)  # a provider may quote a key
    return replies.error_response(request, err)


_HTTP_ERRORS: dict[int, type[ProxyError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    413: RequestTooLarge,
}


def _http_error(request: web.Request, exc: web.HTTPException) -> ProxyError:
    """aiohttp's own HTTP errors (no route, wrong method, ...) as ccproxy errors."""
    if exc.status == 404:
        return NotFound(f"no endpoint {request.method} {request.path}; see the README for the API")
    if exc.status == 405:
        return InvalidRequest(f"{request.method} is not allowed on {request.path}")
    return _HTTP_ERRORS.get(exc.status, InvalidRequest)(exc.text or exc.reason)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Client auth (`refusal`), then the handler (through `keyguard.enforce` for a client key),
    every error made an answer: one layer where there were two, a coroutine fewer a request."""
    try:
        refused = refusal(request)
        if refused is not None:
            raise refused
        key = reqlog.log_of(request).client_key  # set by client auth when a client key was presented
        if key is None:  # no client key: nothing for the key guard to hold
            response = await handler(request)
        else:
            response = await keyguard.enforce(request, handler, key)
    except ProxyError as err:
        return error_response(request, err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(request, _http_error(request, exc))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unexpected error while serving %s %s", request.method, request.path)
        if request.writer is not None and request.writer.output_size > 0:
            # A response has started: a second one would land inside its body. aiohttp closes the
            # connection on the re-raise, so the client sees a broken answer, never a wrong one.
            raise
        return error_response(request, ProxyError("internal error in ccproxy; the details are in its log"))
    if response.status >= 400 and isinstance(response, web.Response) and isinstance(response.body, bytes):
        # A provider's error answer relayed as it came (passthrough) may quote the key it refused.
        response.body = request.app[STATE].redactor.scrub_bytes(response.body)
    return response


@functools.lru_cache(maxsize=1024)
def is_loopback(remote: str | None) -> bool:
    # Cached: clients repeat their address on every request, and parsing it costs more than a lookup.
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def presented_key(request: web.Request) -> str | None:
    return request.headers.get("x-api-key") or bearer_token(request.headers)


def refusal(request: web.Request) -> ProxyError | None:
    """Why this client may not be served (bad header bytes, no key, wrong key, not local), or None."""
    problem = header_problem(request.raw_headers)
    if problem is not None:
        return InvalidRequest(problem)
    if request.path in OPEN_PATHS or (request.path == "/" and request.method in ("HEAD", "GET")):
        return None
    if request.path == "/metrics" and request.app[STATE].config.metrics.public:
        return None
    if keyguard.active(request):  # client keys exist: the admin key or a client key, loopback too
        return keyguard.identify(request)
    apikey = request.app[STATE].config.apikey
    if apikey:
        key = presented_key(request)
        if key is None or not hmac.compare_digest(key.encode(), apikey.encode()):
            return AuthenticationFailed(
                "ccproxy needs its API key: send it as `x-api-key: KEY` or `Authorization: Bearer KEY`"
                + ("" if key is None else " (the key sent does not match)")
            )
    elif not is_loopback(request.remote):
        return PermissionDenied(
            "ccproxy serves only this machine while no API key is set; set `apikey` in the config "
            "(or CCPROXY_API_KEY) to accept clients from other hosts"
        )
    return None


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """`Expect: 100-continue`: the client is refused, or told to send its body, before it sends it.

    Runs before the middlewares, so an answer given here closes the connection (the client may
    send the body anyway, and it is not read)."""
    expect = request.headers.get("expect", "").strip().lower()
    limit = request.app[STATE].config.limits.max_request_body_size
    err = refusal(request)
    if err is None and expect != "100-continue":
        err = ExpectationFailed(f"Expect: {expect} is not supported; send no Expect or 100-continue")
    if err is None and request.content_length is not None and request.content_length > limit:
        err = common.too_large(limit)
    if err is not None:
        response = error_response(request, err)
        response.force_close()
        return response
    await framing.send_continue(request)
    return None


async def warmup(request: web.Request) -> web.Response:
    """Claude Code sends `HEAD /` before its first request; answer at once."""
    return web.Response(status=200, text="" if request.method == "HEAD" else "ccproxy is running; see /health\n")


# lazy.*: the routes of surfaces only some clients use, their modules loaded on the first request.
ROUTES = [
    web.route("HEAD", "/", warmup),
    web.get("/", warmup, allow_head=False),
    web.get("/health", health.health),
    web.get("/metrics", metrics.metrics),
    *lazy.DASHBOARD,
    *lazy.USAGE,
    web.post("/v1/messages", messages.create_message),
    web.post("/api/v1/messages", messages.create_message),
    web.post("/v1/messages/count_tokens", messages.count_tokens),
    web.post("/api/v1/messages/count_tokens", messages.count_tokens),
    web.post("/v1/chat/completions", chat.create_completion),
    web.post("/api/v1/chat/completions", chat.create_completion),
    web.get("/v1/models", models.list_models),
    web.get("/api/v1/models", models.list_models),
    *lazy.STATUS,
    *lazy.PROVIDERS,
    *lazy.RESPONSES,
    # The replaced product's Codex plugin also served these; they are the /v1 surfaces.
    web.post("/api/codex/chat/completions", chat.create_completion),
    web.post("/api/codex/v1/chat/completions", chat.create_completion),
    web.get("/api/codex/v1/models", models.list_models),
    *lazy.SDK,
    *lazy.KEYS,
]


async def _state_lifecycle(app: web.Application) -> AsyncIterator[None]:
    await app[STATE].start()
    yield
    await app[STATE].close()


def create_app(
    config: Config,
    *,
    config_files: tuple[str, ...] = (),
    redactor: Redactor | None = None,
    upstreams: UpstreamFactory = Http1Upstream,
) -> web.Application:
    """Build the application for one configuration; nothing is read from env or disk here.

    `upstreams` builds each provider's `Upstream`: aiohttp by default, an in-memory fake in tests."""
    app = web.Application(
        middlewares=[observability.observe, guard],
        client_max_size=config.limits.max_request_body_size,
        # Request bodies are inflated by read_json, after client auth and within the size limit.
        handler_args={"max_field_size": 65536, "auto_decompress": False},
    )
    app[STATE] = State(config, config_files=config_files, redactor=redactor, upstreams=upstreams)
    observability.install(app)  # request ids, access log, metrics, usage ledger
    keyguard.install(app)  # client keys: the keys file, each key's counters
    app.router.add_routes(framing.with_expect_handler(ROUTES, expect_continue))
    app.cleanup_ctx.append(_state_lifecycle)
    app.cleanup_ctx.append(sdk_mode.lifecycle)  # after the state: it reads the config
    return app


def configure_logging(
    level: str, file: str = "", fmt: str = "text", redactor: Redactor | None = None, worker: str = ""
) -> None:
    """The "ccproxy" logger's one handler; with a redactor, every record is scrubbed of secrets.

    `worker` ("worker 2/3" under `serve --workers`) goes in each text line's prefix, or a JSON line's fields."""
    if file:  # the Go proxy's ~/.ccproxy/ccproxy.log: its directory may not exist yet
        Path(file).parent.mkdir(parents=True, exist_ok=True)
    handler: logging.Handler = logging.FileHandler(file) if file else logging.StreamHandler()
    if redactor is not None:
        handler.addFilter(SecretsFilter(redactor))
    if fmt == "json":
        handler.setFormatter(_JsonFormatter(worker))
    else:
        tag = f" [{worker}]" if worker else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s %(name)s{tag}: %(message)s"))
    root = logging.getLogger("ccproxy")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


class _JsonFormatter(logging.Formatter):
    def __init__(self, worker: str = "") -> None:
        super().__init__()
        self._worker = {"worker": worker} if worker else {}

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(
            {
                "time": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
                **getattr(record, "fields", {}),  # structured fields, e.g. the access log's
                **self._worker,
            }
        ).decode()


def run(
    config: Config,
    *,
    config_files: tuple[str, ...] = (),
    shutdown_timeout: float = 30.0,
    loaded: Any = None,
    worker: WorkerSlot | None = None,
) -> None:
    """Serve in the foreground until SIGINT/SIGTERM, then drain requests in flight.

    `loaded` (a `config.load.LoadedConfig`): its files are watched and reloaded on change, and its
    ignored settings are named in one warning. `worker`: this process is one of `serve --workers N`
    (cli/workers.py); it binds the port with SO_REUSEPORT and stops when its supervisor goes."""
    redactor = Redactor()  # the app's State feeds it the config's secrets and the pools' tokens
    label = worker.label if worker is not None else ""
    configure_logging(config.log.level, config.log.file, config.log.format, redactor, worker=label)
    loop_name = loops.install()
    app = create_app(config, config_files=config_files, redactor=redactor)
    if worker is not None:
        app[WORKER] = worker
        watch_supervisor()
    if loaded is not None:
        from ccproxy_core.server import config_watch

        config_watch.attach(app, loaded)
    providers = ", ".join(f"{p.name}/{p.kind or p.preset or 'preset'}" for p in config.providers)

    def listening(_: str) -> None:  # run_app calls this once the sockets are bound
        log.info(
            "ccproxy listening on http://%s:%d (%s event loop, %d provider(s): %s)%s",
            config.host,
            config.port,
            loop_name,
            len(config.providers),
            providers,
            f" as {label} (pid {os.getpid()}, supervisor pid {worker.supervisor})" if worker is not None else "",
        )

    framing.run_app(  # web.run_app with ccproxy's HTTP protocol (framing.py)
        app,
        host=config.host,
        port=config.port,
        access_log=None,
        print=listening,
        handler_cancellation=True,
        shutdown_timeout=shutdown_timeout,
        reuse_port=worker is not None,
    )
