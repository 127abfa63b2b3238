"""Where each provider's credentials live at run time, and one request's attempts over them.

`ProviderPool` owns a provider's `CredentialPool` and what keeps it current: for Claude
subscription accounts the accounts.json file, its watcher (hot reload) and the refresh
scheduler; for every pool the small state file that carries cooldowns and disabled flags over
a restart. A provider without credentials of its own is transparent: the client's own
`x-api-key` / `Authorization` goes upstream (the zero-config default).

`CredentialAttempts` is one request's view: the credential for each upstream call, moving to
the next only when the pool's `FailoverPlan` says so (a rate-limited account, an OAuth token
that needed a refresh). The plan itself, the pure policy, lives in `core/failover.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import aiohttp
import orjson
from attrs import frozen

from ccproxy_core import dirs
from ccproxy_core.accounts import store as accounts
from ccproxy_core.accounts.watch import AccountsWatcher, Reload
from ccproxy_core.config.model import Config, ProviderConfig
from ccproxy_core.core.credential import Credential as PoolCredential
from ccproxy_core.core.credential import api_key_credentials
from ccproxy_core.core.errors import AttemptFailed, CredentialsRejected, ProxyError, RateLimited, ServiceUnavailable
from ccproxy_core.core.failover import FailoverPlan, Step
from ccproxy_core.core.headers import ANTHROPIC_BETA, CHATGPT_ACCOUNT_ID, OAUTH_BETA, merge_beta
from ccproxy_core.core.outcome import OK, Outcome, OutcomeKind
from ccproxy_core.core.pool import CredentialPool, PoolSettings
from ccproxy_core.core.shared import CredentialEntry, entry_of, merge_entry, shared_tokens
from ccproxy_core.core.sticky import StickyTable
from ccproxy_core.providers.presets import key_headers
from ccproxy_core.providers.rules import AuthHeader
from ccproxy_core.server.shared import MEMORY, SharedState

if TYPE_CHECKING:
    from ccproxy_core.accounts import oauth

log = logging.getLogger("ccproxy.pool")

SAVE_INTERVAL = 10.0  # seconds between checks for pool state worth saving


@frozen
class WireCredential:
    """A credential as it goes on the wire."""

    name: str
    secret: str  # an API key or an OAuth access token; "" for the client's own
    style: AuthHeader | Literal["oauth"]
    source: PoolCredential | None = None

    def headers(self, base: Mapping[str, str]) -> dict[str, str]:
        if self.style != "oauth":
            return key_headers(self.style, self.secret)
        if self.source is not None and self.source.account_id is not None:
            # A ChatGPT account (kind codex): its bearer token and its account, nothing else.
            return {**key_headers("authorization-bearer", self.secret), CHATGPT_ACCOUNT_ID: self.source.account_id}
        # An OAuth token is a bearer token that needs its beta tag; every tag the client sent stays.
        return {
            **key_headers("authorization-bearer", self.secret),
            ANTHROPIC_BETA: merge_beta(base.get(ANTHROPIC_BETA), OAUTH_BETA),
        }


CLIENT_OWN = WireCredential(name="client", secret="", style="none")


def _codex() -> ModuleType:
    """ChatGPT OAuth (accounts/codex.py), imported only where an OAuth provider is configured."""
    from ccproxy_core.accounts import codex

    return codex


def _oauth() -> ModuleType:
    """The OAuth refresh machinery (accounts/oauth.py), imported only where an OAuth provider is configured."""
    from ccproxy_core.accounts import oauth

    return oauth


def _accounts_path(provider: ProviderConfig) -> Path:
    return Path(provider.accounts_path).expanduser() if provider.accounts_path else accounts.default_accounts_path()


class ProviderPool:
    """One provider's credentials and the machinery that keeps them fresh."""

    def __init__(self, provider: ProviderConfig, config: Config, key_style: AuthHeader) -> None:
        self.name = provider.name
        self.key_style = key_style
        self.oauth = provider.auth == "oauth"
        self.codex = self.oauth and _codex().is_codex(config, provider.name)  # ChatGPT accounts
        self.accounts_path = _accounts_path(provider) if self.oauth else None
        self._keys = provider.keys
        self._config = config
        self._saved: bytes | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.scheduler: oauth.RefreshScheduler | None = None
        self.watcher: AccountsWatcher | None = None
        self.shared: SharedState = MEMORY  # set by State when a shared backend is in use
        self._told: dict[str, CredentialEntry] = {}  # what the other instances last heard (or told us)
        rotation = config.rotation
        self.sticky = StickyTable(ttl=rotation.sticky_ttl)  # conversation -> credential
        settings = PoolSettings(
            exhausted_cooldown_seconds=rotation.default_cooldown,
            rate_limit_cooldown_seconds=rotation.rate_limit_cooldown,
            max_retry_after_seconds=rotation.max_retry_after,
            auth_reprobe_seconds=rotation.auth_reprobe,
        )
        if self.oauth:
            self.pool: CredentialPool | None = CredentialPool(
                self._load_accounts(), provider=self.name, settings=settings, source=str(self.accounts_path)
            )
        elif self._keys:
            self.pool = CredentialPool(api_key_credentials(self._keys), provider=self.name, settings=settings)
        else:
            self.pool = None
        if self.pool is not None:
            data, warning = accounts.read_state(self.state_file)
            for problem in ([warning] if warning else []) + (self.pool.load_state(data, time.time()) if data else []):
                log.warning("%s", problem)

    @property
    def state_file(self) -> Path:
        if self.accounts_path is not None:
            return accounts.state_path(self.accounts_path)
        return dirs.state_dir() / f"pool-{self.name}.state.json"

    def _load_accounts(self) -> list[PoolCredential]:
        assert self.accounts_path is not None
        warning = accounts.check_permissions(self.accounts_path)
        if warning:
            log.warning("%s", warning)
        try:
            creds, problems = accounts.load_accounts(self.accounts_path)
        except accounts.AccountsFileMissing:
            where, how = self.accounts_path, self.login_hint()
            log.warning("provider %s: %s does not exist yet; add accounts with %s", self.name, where, how)
            return []
        except accounts.AccountsError as exc:
            log.error("provider %s: %s", self.name, exc)
            return []
        for problem in problems:
            log.warning("%s", problem)
        return creds

    def login_hint(self, account: str | None = None) -> str:
        """The commands that (re)add an account to this provider's file."""
        who = f"--name {account}" if account else f"--provider {self.name}"
        if self.codex:
            return f"`ccproxy auth login-openai {who}` (or `ccproxy auth import --codex {who}`)"
        return f"`ccproxy auth login {who}` (or `ccproxy auth import {who}`)"

    def same_source(self, provider: ProviderConfig) -> bool:
        """Whether a new config for this provider keeps the same credentials (keep state)."""
        return (
            (provider.auth == "oauth") == self.oauth
            and provider.keys == self._keys
            and (not self.oauth or _accounts_path(provider) == self.accounts_path)
        )

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.pool is None:
            return
        self._tasks.append(asyncio.get_running_loop().create_task(self._save_loop(), name=f"pool-save-{self.name}"))
        if not self.oauth:
            return
        assert self.accounts_path is not None
        rotation = self._config.rotation
        self._session = aiohttp.ClientSession()
        self.scheduler = _oauth().RefreshScheduler(
            self.pool,
            self._session,
            self._config.oauth,
            self.accounts_path,
            refresh_buffer_seconds=rotation.refresh_buffer_seconds,
            refresher=_codex().refresher_for(self._config, self.name),
            coordinator=self._refresh_once,
        )
        self.scheduler.start()
        if rotation.hot_reload:
            self.watcher = AccountsWatcher(self.accounts_path, self._reloaded)
            self.watcher.start()

    async def _refresh_once(self, cred: PoolCredential, fetch: oauth.Fetch) -> PoolCredential:
        """Refresh through the shared backend: one refresh per account across instances."""
        return await self.shared.refresh(self.name, cred, fetch)

    # --- what other instances learn and tell -------------------------------------------------------

    def changed(self, name: str) -> None:
        """Tell the other instances about `name` if its shared state moved (cheap when it did not)."""
        if self.pool is None or self.shared is MEMORY or self.pool.get(name) is None:
            return
        entry = entry_of(self.pool.state(name), time.time())
        if entry != self._told.get(name):
            self._told[name] = entry
            self.shared.credential_changed(self.name, name, entry)

    def learn(self, name: str, entry: CredentialEntry, now: float) -> None:
        """Another instance's word on `name`."""
        if self.pool is not None and self.pool.get(name) is not None:
            merge_entry(self.pool.state(name), entry, now)
            self._told[name] = entry_of(self.pool.state(name), now)

    async def adopt_tokens(self, name: str, doc: Any) -> None:
        """Tokens another instance's refresh got: used here, and written to the file we share."""
        cred = self.pool.get(name) if self.pool is not None else None
        if cred is None or self.scheduler is None:
            return
        new = shared_tokens(cred, doc)
        if new is not None:
            await self.scheduler.adopt(cred, new)

    async def _reloaded(self, reload: Reload) -> None:
        if reload.error is not None or reload.credentials is None:
            log.error("provider %s: %s; keeping the last good set of accounts", self.name, reload.error)
            return
        assert self.pool is not None
        for warning in (*reload.warnings, *self.pool.replace_credentials(list(reload.credentials))):
            log.warning("%s", warning)
        log.info("provider %s: accounts reloaded (%d)", self.name, len(self.pool))
        if self.scheduler is not None:
            self.scheduler.poke()

    async def _save_loop(self) -> None:
        while True:
            await asyncio.sleep(SAVE_INTERVAL)
            self.save_state()

    def save_state(self) -> None:
        if self.pool is None:
            return
        data = orjson.dumps(self.pool.to_state(time.time()))
        if data != self._saved:
            try:
                accounts.save_state(self.state_file, orjson.loads(data))
                self._saved = data
            except OSError as exc:
                log.warning("provider %s: cannot save pool state to %s: %s", self.name, self.state_file, exc)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.watcher is not None:
            await self.watcher.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self._session is not None:
            await self._session.close()
        self.save_state()

    # --- per request ------------------------------------------------------------------------------

    def usable(self, now: float) -> bool:
        return self.pool is None or self.pool.has_usable(now)

    def attempts(self, pin: str | None, session: str | None = None) -> CredentialAttempts:
        return CredentialAttempts(self, pin, session)

    def sessions(self, now: float) -> dict[str, int]:
        """Live sticky conversations per credential name."""
        return dict(self.sticky.sessions(now))

    def wire(self, cred: PoolCredential) -> WireCredential:
        return WireCredential(cred.name, cred.secret, "oauth" if cred.kind == "oauth" else self.key_style, cred)

    async def refresh(self, name: str, stale_token: str | None = None) -> None:
        if self.scheduler is None:
            raise ServiceUnavailable(f"provider '{self.name}' has no OAuth accounts to refresh")
        await self.scheduler.refresh_now(name, stale_token=stale_token)


class CredentialAttempts:
    """The credential attempts of one request against one provider, driven by the call loop.

        attempts = owner.attempts(pin)
        credential = attempts.first()             # AttemptFailed when none is usable
        while True:
            answer = await send(credential)       # exactly one upstream call per attempt
            if ok: attempts.succeeded(headers); break
            step = attempts.failed(outcome, headers)
            if step is Step.REFRESH: await attempts.refresh()
            if step is Step.RELAY: give the error up
            credential = attempts.next()

    The policy (which credential, when to move on) is the pool's pure `FailoverPlan`; this
    class adds the clock, the OAuth refresh and the wire form of each credential. A provider
    without a pool of its own is transparent: one attempt, with the client's own credential.
    """

    def __init__(self, owner: ProviderPool, pin: str | None, session: str | None = None) -> None:
        self._owner = owner
        self._pin = pin
        self._session = session
        now = time.time()
        prefer = owner.sticky.get(session, now) if session is not None and owner.pool is not None else None
        self._plan = FailoverPlan(owner.pool, pin=pin, now=now, prefer=prefer) if owner.pool is not None else None
        self._current: WireCredential = CLIENT_OWN

    def first(self) -> WireCredential:
        return CLIENT_OWN if self._plan is None else self.next()

    def next(self) -> WireCredential:
        assert self._plan is not None
        try:
            self._current = self._owner.wire(self._plan.next(time.time()))
        except (RateLimited, ServiceUnavailable, CredentialsRejected) as exc:
            if self._pin is not None:
                raise  # the client asked for this account: its state is the answer
            # Every credential of this provider is limited or unusable: another provider may serve.
            raise AttemptFailed(exc) from exc
        return self._current

    def succeeded(self, headers: Mapping[str, str]) -> None:
        if self._plan is not None:
            now = time.time()
            owner, name = self._owner, self._current.name
            pool = owner.pool
            # Only a shared backend needs to hear that a rejected key's re-probe went through.
            rejected = (
                owner.shared is not MEMORY
                and pool is not None
                and pool.get(name) is not None
                and pool.state(name).auth_error
            )
            self._plan.report(OK, headers, now)
            if rejected:  # a re-probe went through: the key is back everywhere
                owner.changed(name)
            if self._session is not None and self._pin is None and owner.sticky.put(self._session, name, now):
                owner.shared.sticky_bound(owner.name, self._session, name)  # new or moved here

    def failed(self, outcome: Outcome, headers: Mapping[str, str]) -> Step:
        """Record an error answer; what the call loop does next."""
        if self._plan is None:
            return Step.RELAY
        step = self._plan.report(outcome, headers, time.time())
        self._owner.changed(self._current.name)
        if step is not Step.RELAY:
            log.info(
                "provider %s: %s got %s (%s); trying %s",
                self._owner.name,
                self._current.name,
                outcome.status,
                outcome.kind.value,
                "after a token refresh" if step is Step.REFRESH else "the next credential",
            )
        return step

    async def refresh(self) -> None:
        """Refresh the current OAuth credential's token (joined if already under way)."""
        credential = self._current
        try:
            await self._owner.refresh(credential.name, stale_token=credential.secret)
        except (_oauth().OAuthError, ProxyError) as exc:
            log.warning("provider %s: refreshing %s failed: %s", self._owner.name, credential.name, exc)

    def rejection(self, outcome: Outcome) -> ProxyError | None:
        """When the provider refused a credential and none is left: the error naming them all."""
        pool = self._owner.pool
        if pool is None or outcome.kind is not OutcomeKind.AUTH or self._pin is not None:
            return None
        now = time.time()
        return None if pool.has_usable(now) else pool.rejection(now)


def health(owner: ProviderPool, now: float) -> dict[str, Any]:
    if owner.pool is None:
        return {"credentials": "client's own"}
    snap = owner.pool.snapshot(now)
    return {
        "credentials": snap["totalAccounts"],
        "available": snap["availableAccounts"],
        "rate_limited": snap["rateLimitedAccounts"],
    }
