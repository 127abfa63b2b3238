"""Claude OAuth: PKCE login, token refresh, and the scheduler that keeps every account fresh.

The endpoints are undocumented and have moved before (console.anthropic.com -> platform.claude.com),
so every constant lives in `OAuthSettings`; the caller builds it from config and from
`CCPROXY_OAUTH_TOKEN_URL`. Both token calls send JSON bodies; Claude also wants `state` in the
code exchange. What every token endpoint shares (PKCE, the pasted code, `TokenSet`, posting
a grant, the errors `OAuthError` > `InvalidGrant`, `TransientRefreshError`) is accounts/grant.py's.

Refresh tokens are single-use and rotate, so `RefreshScheduler` guarantees one refresh per
account at a time: a per-account lock, one shared in-flight task that every caller joins
(`refresh_now`), the current refresh token re-read inside the lock (from the file too, in case
`ccproxy auth login` or another process replaced it), and the new tokens written to
accounts.json *before* the pool hands them out, through the file's one writer
(`store.save_refreshed`: this account's tokens only, never re-adding an account removed by
hand). After a reload (`poke`), tokens the file holds that are older than the pool's (an edit
from a stale copy) are written back (`write_back`). A failure other than `invalid_grant` changes no
state: the old token stays in use and the refresh is retried with exponential backoff and
jitter. A refresh never touches a rate-limit cooldown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import orjson

from ccproxy_core.accounts.grant import (
    Clock,
    InvalidGrant,
    OAuthError,
    Refresher,
    TokenSet,
    code_grant,
    expires_in,
    next_refresh,
    oauth_error,
    post_grant,
    refusal,
)
from ccproxy_core.accounts.store import AccountsError, load_accounts, save_refreshed, write_back_newer
from ccproxy_core.config.model import OAuthSettings
from ccproxy_core.core.credential import Credential, CredentialState, with_tokens
from ccproxy_core.core.errors import NotFound, ProxyError
from ccproxy_core.core.pool import CredentialPool

log = logging.getLogger("ccproxy.oauth")
_DEAD_GRANT = frozenset({"invalid_grant"})  # the refresh token is spent or revoked


# --- login ------------------------------------------------------------------------------------


def authorize_url(settings: OAuthSettings, challenge: str, state: str) -> str:
    query = urlencode(
        {
            "code": "true",  # Claude's flag for the manual flow that shows the code to paste
            "client_id": settings.client_id,
            "response_type": "code",
            "redirect_uri": settings.redirect_uri,
            "scope": settings.scopes,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
        }
    )
    return f"{settings.authorize_url}?{query}"


async def exchange_code(
    session: aiohttp.ClientSession,
    settings: OAuthSettings,
    code: str,
    verifier: str,
    state: str,
    *,
    clock: Clock = time.time,
) -> TokenSet:
    body = {**code_grant(settings, code, verifier), "state": state}
    return await _token_call(session, settings, body, None, clock)


async def refresh(
    session: aiohttp.ClientSession, settings: OAuthSettings, refresh_token: str, *, clock: Clock = time.time
) -> TokenSet:
    """New tokens for `refresh_token`; the old refresh token is kept if none is issued."""
    body = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": settings.client_id}
    return await _token_call(session, settings, body, refresh_token, clock)


async def _token_call(
    session: aiohttp.ClientSession, settings: OAuthSettings, body: dict[str, str], old_refresh: str | None, clock: Clock
) -> TokenSet:
    status, doc, raw = await post_grant(session, settings, orjson.dumps(body), "application/json")
    if status == 200 and isinstance(doc, dict) and isinstance(doc.get("access_token"), str):
        lasts = expires_in(doc)
        return TokenSet(
            access_token=doc["access_token"],
            refresh_token=next_refresh(doc, old_refresh),
            expires_at=clock() + (float(settings.default_expires_in) if lasts is None else lasts),
            scope=doc.get("scope"),
        )
    raise refusal("token endpoint", status, *oauth_error(doc, raw), dead=_DEAD_GRANT)


def claude_refresher(settings: OAuthSettings) -> Refresher:
    async def grant(session: aiohttp.ClientSession, refresh_token: str, clock: Clock) -> TokenSet:
        return await refresh(session, settings, refresh_token, clock=clock)

    return Refresher(grant)


# --- the scheduler ----------------------------------------------------------------------------


def refresh_due_at(cred: Credential, st: CredentialState, buffer: float, retry_at: float | None) -> float | None:
    """When the scheduler should refresh `cred` (epoch s), or None for never. Pure."""
    if cred.kind != "oauth" or not cred.refresh_token or st.disabled:
        return None
    if st.auth_error and not st.needs_refresh:
        return None  # the refresh token was refused: only a new login helps
    if st.needs_refresh:
        at = 0.0  # upstream refused the access token: now
    elif cred.expires_at is None:
        return None
    else:
        at = cred.expires_at - buffer
    return at if retry_at is None else max(at, retry_at)


def backoff_delay(failures: int, jitter: float, base: float, cap: float) -> float:
    """Exponential backoff with jitter: base·2^(n-1) capped, scaled by 0.5..1 (jitter in 0..1)."""
    return min(cap, base * 2.0 ** max(0, failures - 1)) * (0.5 + jitter / 2)


Fetch = Callable[[], Awaitable[Credential]]
Coordinator = Callable[[Credential, Fetch], Awaitable[Credential]]
"""Runs one refresh (`fetch`) for an account, or answers with tokens another instance got."""


async def _alone(cred: Credential, fetch: Fetch) -> Credential:
    return await fetch()


class RefreshScheduler:
    """Refreshes the OAuth credentials of one pool `refresh_buffer_seconds` before expiry."""

    def __init__(
        self,
        pool: CredentialPool,
        session: aiohttp.ClientSession,
        settings: OAuthSettings,
        accounts_path: Path | None,
        *,
        refresh_buffer_seconds: float = 600.0,
        clock: Clock = time.time,
        rng: Callable[[], float] = random.random,
        backoff_base: float = 5.0,
        backoff_max: float = 600.0,
        min_interval: float = 30.0,
        max_sleep: float = 60.0,
        refresher: Refresher | None = None,
        coordinator: Coordinator | None = None,
    ) -> None:
        self.pool, self.session, self.settings = pool, session, settings
        self.refresher = refresher if refresher is not None else claude_refresher(settings)
        self.accounts_path = accounts_path
        self.buffer = refresh_buffer_seconds
        self.clock, self._rng = clock, rng
        self._backoff = (backoff_base, backoff_max)
        self._min_interval, self._max_sleep = min_interval, max_sleep
        self._locks: dict[str, asyncio.Lock] = {}
        self._inflight: dict[str, asyncio.Task[Credential]] = {}
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._write_back = False
        self._task: asyncio.Task[None] | None = None
        self._coordinator: Coordinator = coordinator or _alone

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="oauth-refresh")

    async def stop(self, grace: float | None = None) -> None:
        """Stop the loop; let refreshes in flight finish (a rotated token must reach the file),
        waiting at most `grace` seconds (default: the token call's own timeout)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pending = set(self._inflight.values())
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.settings.timeout_seconds if grace is None else grace)
            for t in late:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def poke(self) -> None:
        """Re-plan now (after a reload, an `enable`, or a 401 that set needs_refresh), and put
        back into the file any tokens older than the pool's (a reload of a stale hand edit)."""
        self._write_back = True
        self._wake.set()

    def retry_in(self, name: str, now: float) -> float:
        """Seconds until the scheduler tries `name` again after a failed refresh (0: any time)."""
        return max(0.0, self._retry_at.get(name, now) - now) if self._failures.get(name) else 0.0

    async def write_back(self) -> list[str]:
        """Write the pool's tokens over older ones in the file; the names written."""
        if self.accounts_path is None:
            return []
        try:
            names = await asyncio.to_thread(write_back_newer, self.accounts_path, self.pool.credentials())
        except (OSError, AccountsError) as e:
            log.error("cannot put the newer tokens back into %s: %s", self.accounts_path, e)
            return []
        for name in names:
            log.warning(
                "account '%s': %s held older tokens than the running proxy (an edit from a stale copy?); "
                "wrote the newer ones back",
                name,
                self.accounts_path,
            )
        return names

    def next_due(self, now: float) -> tuple[list[Credential], float | None]:
        """(credentials due now, earliest future due time)."""
        due, later = [], None
        for cred in self.pool.credentials():
            at = refresh_due_at(cred, self.pool.state(cred.name), self.buffer, self._retry_at.get(cred.name))
            if at is None:
                continue
            if at <= now:
                due.append(cred)
            elif later is None or at < later:
                later = at
        return due, later

    async def _run(self) -> None:
        while True:
            if self._write_back:
                self._write_back = False
                await self.write_back()
            now = self.clock()
            due, later = self.next_due(now)
            if due:
                await asyncio.gather(*(self._quietly(c) for c in due))
                continue
            self._wake.clear()
            timeout = self._max_sleep if later is None else min(self._max_sleep, later - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, timeout))

    async def _quietly(self, cred: Credential) -> None:
        try:
            await self.refresh_now(cred.name, stale_token=cred.secret)
        except (OAuthError, ProxyError) as e:
            log.warning("token refresh for account '%s' failed: %s", cred.name, e)
        except Exception:
            log.exception("token refresh for account '%s' failed", cred.name)

    async def refresh_now(self, name: str, *, stale_token: str | None = None) -> Credential:
        """Refresh `name` now, or join the refresh already in flight. With `stale_token` (the
        token a 401 came back for), a token already replaced since is returned as it is."""
        task = self._inflight.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._refresh(name, stale_token))
            self._inflight[name] = task
            task.add_done_callback(lambda t: self._finished(name, t))
        # Shielded: a caller that goes away (client disconnect) must not abort a refresh
        # whose new single-use token is on its way to the file.
        return await asyncio.shield(task)

    def _finished(self, name: str, task: asyncio.Task[Credential]) -> None:
        if self._inflight.get(name) is task:
            del self._inflight[name]
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not logged as lost

    async def _refresh(self, name: str, stale_token: str | None) -> Credential:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            cred = self.pool.get(name)
            if cred is None:
                raise NotFound(f"no account named '{name}' in provider '{self.pool.provider}'")
            if cred.kind != "oauth" or not cred.refresh_token:
                raise OAuthError(f"account '{name}' has no refresh token")
            cred = await self._newest(cred)
            if stale_token is not None and cred.secret != stale_token:
                return cred  # someone refreshed while we queued
            refresh_token = cred.refresh_token
            if not refresh_token:
                raise OAuthError(f"account '{name}' has no refresh token")
            self.pool.set_refreshing(name, True)
            try:

                async def fetch() -> Credential:
                    tokens = await self.refresher.grant(self.session, refresh_token, self.clock)
                    return with_tokens(cred, tokens.access_token, tokens.refresh_token, tokens.expires_at)

                try:
                    # With a shared backend: one refresh per account across instances, and tokens
                    # another instance already got are taken instead of a call of ours.
                    new = await self._coordinator(cred, fetch)
                except InvalidGrant as e:
                    self._failures.pop(name, None)
                    self.pool.mark_auth_error(name, f"{e}; run `{self.refresher.relogin.format(name=name)}`")
                    raise
                except Exception as e:
                    self._note_failure(name, e)
                    raise
                try:
                    await self._persist(new, spent=refresh_token)
                finally:
                    # Even if saving failed or we were cancelled: the old refresh token is
                    # spent, so the new tokens are the only ones that work.
                    self.pool.tokens_refreshed(name, new, self.clock())
            finally:
                self.pool.set_refreshing(name, False)
            now = self.clock()
            self._failures.pop(name, None)
            self._retry_at[name] = now + self._min_interval
            log.info("refreshed the token of account '%s'", name)
            return new

    async def adopt(self, old: Credential, new: Credential) -> None:
        """Tokens another instance's refresh got for `old`'s account: used and saved here too."""
        async with self._locks.setdefault(old.name, asyncio.Lock()):
            current = self.pool.get(old.name)
            if current is None or current.refresh_token != old.refresh_token:
                return  # this instance has moved on already (its own refresh, or a reload)
            try:
                await self._persist(new, spent=old.refresh_token or "")
            finally:
                self.pool.tokens_refreshed(old.name, new, self.clock())
            self._retry_at[old.name] = self.clock() + self._min_interval
            log.info("took the tokens another instance refreshed for account '%s'", old.name)

    async def _newest(self, cred: Credential) -> Credential:
        """The account as the file has it, if the file holds newer tokens than the pool."""
        if self.accounts_path is None:
            return cred
        try:
            creds, _ = await asyncio.to_thread(load_accounts, self.accounts_path)
        except AccountsError:
            return cred
        disk = next((c for c in creds if c.name == cred.name), None)
        if (
            disk is not None
            and disk.refresh_token != cred.refresh_token
            and (disk.expires_at or 0.0) > (cred.expires_at or 0.0)
        ):
            self.pool.tokens_refreshed(cred.name, disk, self.clock())
            return disk
        return cred

    async def _persist(self, new: Credential, spent: str) -> None:
        if self.accounts_path is None:
            return
        try:
            warnings = await asyncio.to_thread(
                save_refreshed, self.accounts_path, new, spent, fallback=self.pool.credentials()
            )
        except (OSError, AccountsError) as e:
            # The old refresh token is spent: the new one is only in memory now. Use it anyway
            # (the account would be lost otherwise) and say so loudly.
            msg = f"refreshed tokens could not be saved to {self.accounts_path}: {getattr(e, 'strerror', None) or e}"
            log.error("account '%s': %s", new.name, msg)
            self.pool.note_error(new.name, msg)
            return
        for w in warnings:
            log.warning("%s", w)

    def _note_failure(self, name: str, error: BaseException) -> None:
        n = self._failures.get(name, 0) + 1
        self._failures[name] = n
        delay = backoff_delay(n, self._rng(), *self._backoff)
        self._retry_at[name] = self.clock() + delay
        self.pool.note_error(name, f"token refresh failed (attempt {n}, retrying in {delay:.0f} s): {error}")
