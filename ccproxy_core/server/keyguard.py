"""Client keys at the door: who is calling, and whether their key's limits let them in now.

Once the keys file holds any key, every request but `/health` needs a key (loopback included):
the config's `apikey` (the admin key, logged as client `admin`, no limits) or a client key.
`identify` (called by the app's `guard` middleware, before any body is read) finds the key by
its keyed hash, refuses unknown, revoked and expired keys with 401, and puts the key on the
request's log. `enforce` (which `guard` runs around the handler of a request with a key) checks
the key's budgets, rpm, tpm and concurrency on proxied endpoints before any upstream call
(`core.limits.admit`), and when the request ends charges its tokens and cost, priced as the
ledger prices them. The model list is checked where the body is read
(`check_model`), the provider list where routing candidates are planned (`filter_candidates`).

The keys file is re-read when it changes (checked at most once a second), so a key created,
changed or revoked by `ccproxy keys` without a server, or by the admin API, holds from the next
request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Protocol, TypeVar

from aiohttp import web

from ccproxy_core.config.model import ConfigError
from ccproxy_core.core import limits, pricing
from ccproxy_core.core.errors import AuthenticationFailed, PermissionDenied, ProxyError, RateLimited
from ccproxy_core.core.headers import bearer_token
from ccproxy_core.keys.model import ClientKey
from ccproxy_core.keys.store import EMPTY_INDEX, KeyIndex, KeyStore
from ccproxy_core.server import reqlog
from ccproxy_core.server.observability import OBS, PROXIED_SUFFIXES
from ccproxy_core.server.state import STATE
from ccproxy_core.usage.ledger import reading, resolve_path

log = logging.getLogger("ccproxy.keys")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ADMIN = "admin"
CURRENT_KEY: ContextVar[ClientKey | None] = ContextVar("ccproxy_client_key", default=None)
RECHECK_SECONDS = 1.0


class KeyGuard:
    """The server's view of the keys file and each key's counters (on the event loop thread)."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self.index: KeyIndex = EMPTY_INDEX
        self.counters: dict[str, limits.Counters] = {}
        self._mtime: float | None = None
        self._checked = 0.0

    @property
    def active(self) -> bool:
        return len(self.index) > 0

    def reload(self) -> None:
        self._mtime = self.store.mtime()
        if self._mtime is None:  # no keys file, no keys (and SQLite stays unloaded)
            self.index = EMPTY_INDEX
            return
        import sqlite3

        try:
            self.index = self.store.index()
        except (sqlite3.Error, OSError, ValueError) as exc:
            log.error("cannot read the client keys file %s: %s; keeping the keys read before", self.store.path, exc)

    def maybe_reload(self, now: float) -> None:
        """Re-read the file when it changed; its mtime is looked at most once a second."""
        if now - self._checked < RECHECK_SECONDS:
            return
        self._checked = now
        if self.store.mtime() != self._mtime:
            self.reload()

    def counters_of(self, name: str) -> limits.Counters:
        c = self.counters.get(name)
        if c is None:
            c = self.counters[name] = limits.Counters()
        return c


KEYS = web.AppKey("keys", KeyGuard)


def presented_key(request: web.Request) -> str | None:
    return request.headers.get("x-api-key") or bearer_token(request.headers)


def is_admin(request: web.Request, key: str | None = None) -> bool:
    apikey = request.app[STATE].config.apikey
    key = presented_key(request) if key is None else key
    return bool(apikey) and key is not None and hmac.compare_digest(key.encode(), apikey.encode())


def active(request: web.Request) -> bool:
    guard = request.app.get(KEYS)
    if guard is None:
        return False
    guard.maybe_reload(time.monotonic())
    return guard.active


def identify(request: web.Request) -> ProxyError | None:
    """With keys defined: None for the admin key or a usable client key; else the 401."""
    key = presented_key(request)
    if key is None:
        return AuthenticationFailed(
            "ccproxy needs a client key: send it as `x-api-key: KEY` or `Authorization: Bearer KEY` "
            "(`ccproxy keys create NAME` makes one)"
        )
    entry = reqlog.log_of(request)
    if is_admin(request, key):
        entry.client = ADMIN
        return None
    found = request.app[KEYS].index.lookup(key)
    if found is None:
        return AuthenticationFailed("the key sent is not a ccproxy client key (unknown or deleted); check the key")
    entry.client_key, entry.client = found, found.name
    now = time.time()
    if found.revoked_at is not None or found.expired(now):
        refusal = limits.admit(found, limits.Counters(), now)
        assert refusal is not None
        return AuthenticationFailed(refusal.message)
    return None


def _spend(request: web.Request) -> tuple[int, float]:
    """The tokens and cost of the request that just ended, as the ledger will record them."""
    entry = reqlog.log_of(request)
    entry.meter.flush()
    counts = entry.meter.counts
    obs = request.app.get(OBS)
    cost = pricing.cost_usd(obs.price(entry.upstream_model), counts) if entry.provider and obs is not None else 0.0
    return counts.input + counts.output + counts.cache_creation, cost or 0.0


async def enforce(request: web.Request, handler: Handler, key: ClientKey) -> web.StreamResponse:
    """`handler` for a request that presented client key `key` (app.guard calls this only then)."""
    path = request.path
    if path.startswith("/admin/"):
        raise PermissionDenied(
            f"client key {key.name!r} cannot manage keys; the admin API needs the admin key (the config's apikey)"
        )
    if not path.endswith(PROXIED_SUFFIXES):
        if path.endswith("/models") or "/responses/" in path:  # model lists, stored-response lookups
            return await handler(request)
        # /providers, /status, /usage, /metrics change the proxy or show everyone's use: the operator's.
        raise PermissionDenied(
            f"client key {key.name!r} may call the model endpoints only; {path} needs the admin key "
            "(the config's apikey)"
        )
    counters = request.app[KEYS].counters_of(key.name)
    shared = request.app[STATE].shared  # in this process, or counted across instances
    request_id = reqlog.log_of(request).request_id
    refusal = await shared.key_admit(key, counters, request_id, time.time())
    if refusal is not None:
        if refusal.status == 401:
            raise AuthenticationFailed(refusal.message)
        raise RateLimited(refusal.message, retry_after=refusal.retry_after)
    token = CURRENT_KEY.set(key)
    try:
        return await handler(request)
    finally:
        CURRENT_KEY.reset(token)
        tokens, cost = _spend(request)
        await shared.key_finish(key, counters, request_id, tokens, cost, time.time())


def check_model(model: str) -> None:
    """403 when the calling key may not use this model; the message names what it may use."""
    key = CURRENT_KEY.get()
    if key is not None and not key.limits.allows_model(model):
        raise PermissionDenied(
            f"key {key.name!r} may not use model {model!r}; it may use: {', '.join(key.limits.models)}"
        )


class _Routed(Protocol):
    @property
    def provider(self) -> _Named: ...


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def transparent(self) -> bool: ...


C = TypeVar("C", bound=_Routed)


def filter_candidates(candidates: Sequence[C]) -> list[C]:
    """The routing candidates the calling key may use; 403 when none is left."""
    key = CURRENT_KEY.get()
    if key is None:
        return list(candidates)
    # A provider without credentials of its own would send the client key upstream (one added
    # by a config reload after the start check): never a candidate for a client key.
    allowed = [
        c
        for c in candidates
        if not c.provider.transparent and (not key.limits.providers or c.provider.name in key.limits.providers)
    ]
    if not allowed and any(c.provider.transparent for c in candidates):
        raise PermissionDenied(
            f"key {key.name!r}: this request routes to a provider without credentials of its own "
            f"({', '.join(c.provider.name for c in candidates if c.provider.transparent)}), which client keys "
            "cannot use; give it api_key/api_keys or auth: oauth"
        )
    if not allowed:
        routed = ", ".join(dict.fromkeys(c.provider.name for c in candidates))
        raise PermissionDenied(
            f"key {key.name!r} may use only provider(s) {', '.join(key.limits.providers)}; "
            f"this request routes to {routed}"
        )
    return allowed


def transparent_problem(app: web.Application) -> str | None:
    """Why client keys cannot work with this config (a provider that forwards the client's key)."""
    runtime = app[STATE].runtime
    names = [p.name for p in runtime.providers.values() if p.transparent and p.config.enabled]
    if not names:
        return None
    return (
        f"client keys are defined ({app[KEYS].store.path}) but provider(s) {', '.join(names)} hold no "
        "credentials of their own and would forward the client's key upstream; give them api_key/api_keys "
        "or auth: oauth, or revoke the keys"
    )


def _ledger_spend(path_setting: str, names: list[str], now: float) -> dict[str, tuple[float, float]]:
    path = resolve_path(path_setting)
    if not names or not path.exists():
        return {}
    import sqlite3

    day, month = limits.day_window(now)[0], limits.month_window(now)[0]
    sql = (
        "SELECT client, SUM(CASE WHEN ts >= ? THEN cost_usd ELSE 0 END), SUM(cost_usd) "
        "FROM requests WHERE ts >= ? GROUP BY client"
    )
    try:
        with reading(path) as conn:
            rows = conn.execute(sql, (day, month)).fetchall()  # a month starts no later than its days
    except (sqlite3.Error, OSError) as exc:
        log.warning("client key budgets start from zero: cannot read the usage ledger %s: %s", path, exc)
        return {}
    return {client: (float(d or 0.0), float(m or 0.0)) for client, d, m in rows if client in names}


async def lifecycle(app: web.Application) -> AsyncIterator[None]:
    """At start: read the keys, refuse a config that cannot enforce them, seed spend from the ledger."""
    guard = app[KEYS]
    await asyncio.to_thread(guard.reload)
    if guard.active:
        problem = transparent_problem(app)
        if problem is not None:
            raise ConfigError([problem])
        now = time.time()
        config = app[STATE].config
        names = sorted({k.name for k in guard.index.by_digest.values()})
        if config.usage.enabled:
            spent = await asyncio.to_thread(_ledger_spend, config.usage.path, names, now)
            for name, (day, month) in spent.items():
                limits.seed(guard.counters_of(name), day, month, now)
    yield
    with contextlib.suppress(Exception):
        guard.counters.clear()


def install(app: web.Application, store: KeyStore | None = None) -> KeyGuard:
    guard = app[KEYS] = KeyGuard(store or KeyStore())
    app.cleanup_ctx.append(lifecycle)
    return guard
