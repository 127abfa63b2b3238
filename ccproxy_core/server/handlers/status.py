"""The credential pool's status API, in the multi-account proxy's shapes (camelCase).

`GET /status` aggregates every provider that has a pool (`providers` holds each one's own
snapshot); `?provider=NAME` narrows any of these calls to one provider, which also settles an
account name used by two providers. Tokens never appear: every answer passes the server's
redactor, which masks any configured secret or pool token by value (a provider may quote a key
in an error that becomes `lastError`).

A manual refresh that the token endpoint refuses is the user's to fix, not a server fault:
a spent or revoked refresh token is a 409 naming the account and `ccproxy auth login`, an
unreachable or failing endpoint a 503 with `retry-after`, any other refusal a 502.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from aiohttp import web

from ccproxy_core.accounts.grant import InvalidGrant, OAuthError, TransientRefreshError
from ccproxy_core.core.errors import NotFound, ProxyError, ServiceUnavailable, UpstreamError
from ccproxy_core.core.pool import CredentialPool
from ccproxy_core.core.wire import JSON
from ccproxy_core.server.credentials import ProviderPool
from ccproxy_core.server.handlers import common
from ccproxy_core.server.state import STATE

_COUNTS = (
    "totalAccounts",
    "availableAccounts",
    "rateLimitedAccounts",
    "authErrorAccounts",
    "disabledAccounts",
    "expiredAccounts",
)


class AccountNeedsLogin(ProxyError):
    """The account's refresh token is spent or revoked: only a new login brings it back."""

    _status = 409
    _type = "invalid_request_error"


def json_response(request: web.Request, data: Any) -> web.Response:
    return common.json_response(request.app[STATE].redactor.scrub_json(data))


def _pools(request: web.Request) -> list[ProviderPool]:
    state = request.app[STATE]
    wanted = request.query.get("provider")
    pools = [p for name, p in state.pools.items() if p.pool is not None and name in state.runtime.providers]
    if wanted is not None:
        pools = [p for p in pools if p.name == wanted]
        if not pools:
            raise NotFound(
                f"provider {wanted!r} has no credential pool "
                f"(pools: {', '.join(p.name for p in _all(request)) or 'none'})"
            )
    return pools


def _all(request: web.Request) -> list[ProviderPool]:
    return [p for p in request.app[STATE].pools.values() if p.pool is not None]


def _pool(owner: ProviderPool) -> CredentialPool:
    assert owner.pool is not None
    return owner.pool


def _find(request: web.Request, name: str) -> tuple[ProviderPool, JSON]:
    now = time.time()
    for owner in _pools(request):
        if name in _pool(owner).names:
            account = _pool(owner).account_json(name, now)
            # Live sticky conversations on this credential (core/sticky.py).
            return owner, {"provider": owner.name, **account, "sessions": owner.sessions(now).get(name, 0)}
    known = ", ".join(f"{o.name}/{n}" for o in _pools(request) for n in _pool(o).names) or "none"
    raise NotFound(f"no account named {name!r} (known: {known})")


async def status(request: web.Request) -> web.Response:
    now = time.time()
    snapshots = [_pool(owner).snapshot(now) for owner in _pools(request)]
    totals: Counter[str] = Counter()
    for snap in snapshots:
        totals.update({k: snap.get(k, 0) for k in _COUNTS})
    accounts = [{"provider": snap["provider"], **account} for snap in snapshots for account in snap["accounts"]]
    return json_response(
        request,
        {
            **{k: totals[k] for k in _COUNTS},
            "nextAccount": next((s["nextAccount"] for s in snapshots if s["nextAccount"]), None),
            "accounts": accounts,
            "providers": {s["provider"]: s for s in snapshots},
        },
    )


async def list_accounts(request: web.Request) -> web.Response:
    now = time.time()
    return json_response(
        request,
        [
            {"provider": owner.name, **account}
            for owner in _pools(request)
            for account in _pool(owner).snapshot(now)["accounts"]
        ],
    )


async def get_account(request: web.Request) -> web.Response:
    return json_response(request, _find(request, request.match_info["name"])[1])


async def refresh_account(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    owner, _ = _find(request, name)
    if owner.scheduler is None:
        raise ServiceUnavailable(f"account {name!r} is an API key; only OAuth accounts refresh")
    try:
        await owner.refresh(name)
    except InvalidGrant as exc:
        raise AccountNeedsLogin(
            f"account {name!r} of provider {owner.name!r} cannot refresh: its refresh token was already "
            f"used or revoked ({exc}); log it in again with {owner.login_hint(name)}"
        ) from None
    except TransientRefreshError as exc:
        wait = max(1, round(owner.scheduler.retry_in(name, time.time())))
        raise ServiceUnavailable(
            f"account {name!r} of provider {owner.name!r} could not refresh now: {exc}; "
            f"ccproxy retries by itself, or try again in {wait} s",
            headers={"retry-after": str(wait)},
        ) from None
    except OAuthError as exc:
        raise UpstreamError(
            502,
            "api_error",
            f"account {name!r} of provider {owner.name!r} could not refresh: {exc}; "
            "check the `oauth` settings (token_url, client_id) or log in again",
        ) from None
    return json_response(
        request,
        {"status": "success", "message": f"refreshed the tokens of {name!r}", "account": _find(request, name)[1]},
    )


async def _switch(request: web.Request, enable: bool) -> web.Response:
    name = request.match_info["name"]
    owner, _ = _find(request, name)
    pool = _pool(owner)
    previous = pool.enable(name, time.time()) if enable else pool.disable(name, time.time())
    owner.save_state()
    if enable and owner.scheduler is not None:
        owner.scheduler.poke()
    after = _find(request, name)[1]
    return json_response(
        request,
        {
            "status": "success",
            "message": f"{'enabled' if enable else 'disabled'} {name!r}",
            "previousState": previous,
            "newState": after["state"],
            "account": after,
        },
    )


async def enable_account(request: web.Request) -> web.Response:
    return await _switch(request, True)


async def disable_account(request: web.Request) -> web.Response:
    return await _switch(request, False)
