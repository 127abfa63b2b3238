"""What the running server holds, and the one place that turns config into live objects.

`State.runtime` is an immutable snapshot (config, routing table, providers with their preset
and endpoint URLs) that a request reads once at its start; a config change builds a new
snapshot and swaps the reference, so requests in flight finish on the snapshot they began
with. What must outlive a swap is kept by provider name: upstream sessions (pooled
connections), circuit breakers, rate-limit buckets and credential pools.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from aiohttp import web
from attrs import Factory, field, frozen

from ccproxy_core.config.model import Config, LimitsConfig, ProviderConfig, unstructure
from ccproxy_core.core.breaker import BreakerBoard
from ccproxy_core.core.errors import Overloaded, RateLimited
from ccproxy_core.core.headers import X_ACCOUNT_NAME
from ccproxy_core.core.outcome import Outcome
from ccproxy_core.core.ratelimit import BucketSet
from ccproxy_core.core.redaction import Redactor
from ccproxy_core.core.routing import RoutingTable
from ccproxy_core.providers import presets, rules
from ccproxy_core.server.credentials import CredentialAttempts, ProviderPool
from ccproxy_core.server.credentials import health as pool_health
from ccproxy_core.server.shared import MEMORY, SharedState, backend_for
from ccproxy_core.server.upstream import Http1Upstream, Upstream

UpstreamFactory = Callable[[str, str, LimitsConfig], Upstream]
"""Builds a provider's `Upstream` from (name, base URL, limits): aiohttp in the server, in memory in tests."""


@frozen
class ProviderRuntime:
    config: ProviderConfig
    preset: rules.Preset
    upstream: Upstream
    urls: Mapping[str, str]  # path kind ("messages", "count_tokens", "chat", "responses", ...) -> full URL
    # No credential of its own: the client's own credentials are forwarded. Asked on every request
    # (a fact of the config, so made once with it, not from the key list each time).
    transparent: bool = field(
        init=False, default=Factory(lambda self: not self.config.keys and self.config.auth != "oauth", takes_self=True)
    )

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def kind(self) -> str:
        """What the provider speaks: "anthropic" (Messages), "openai" (Chat Completions), "responses"
        (the OpenAI Responses API) or "codex" (Responses, ChatGPT accounts, Responses clients only)."""
        return self.preset.kind

    def url(self, kind: str) -> str:
        return self.urls[kind]


@frozen
class Runtime:
    config: Config
    table: RoutingTable
    providers: Mapping[str, ProviderRuntime]


def _urls(preset: rules.Preset, base: str) -> dict[str, str]:
    urls: dict[str, str] = {}
    kinds: tuple[presets.PathKind, ...] = ("messages", "count_tokens", "chat", "models", "responses")
    for kind in kinds:
        try:
            urls[kind] = presets.upstream_url(preset, base, kind)
        except ValueError:
            continue  # this kind of provider has no such endpoint
    return urls


class State:
    def __init__(
        self,
        config: Config,
        *,
        config_files: tuple[str, ...] = (),
        redactor: Redactor | None = None,
        upstreams: UpstreamFactory = Http1Upstream,
    ) -> None:
        self._new_upstream = upstreams
        self.started_at = time.time()
        self.config_files = config_files
        self.write_lock = asyncio.Lock()
        self._upstreams: dict[tuple[str, str], Upstream] = {}
        self.breakers = BreakerBoard(config.breaker)
        self._provider_buckets: dict[str, BucketSet] = {}
        self.pools: dict[str, ProviderPool] = {}
        self._retired: list[ProviderPool] = []
        self._running: list[ProviderPool] = []
        self._started = False
        self.shared: SharedState = MEMORY  # the configured backend, connected by `start`
        self.runtime = self._build(config)
        self.client_buckets = BucketSet(config.limits.requests_per_minute, config.limits.burst)
        # Every secret this server knows, read at each scrub: config keys, and pool tokens as they rotate.
        self.redactor = redactor if redactor is not None else Redactor()
        self._config_secrets: tuple[Config | None, tuple[str, ...]] = (None, ())
        self.redactor.track(self.secrets)

    @property
    def config(self) -> Config:
        return self.runtime.config

    def secrets(self) -> Iterator[str]:
        """The configured secrets and every credential each pool holds now (keys, OAuth tokens)."""
        config = self.runtime.config
        if self._config_secrets[0] is not config:  # asked at every log line: once per config
            self._config_secrets = (config, config.secrets())
        yield from self._config_secrets[1]
        for owner in list(self.pools.values()):  # a copy: a log line on another thread may ask
            for cred in owner.pool.credentials() if owner.pool is not None else ():
                yield cred.secret
                if cred.refresh_token:
                    yield cred.refresh_token

    def _build(self, config: Config) -> Runtime:
        native = unstructure(config)
        providers = {}
        for p, raw in zip(config.providers, native["providers"], strict=True):
            preset = presets.preset_for_provider(raw)
            base = p.api_base_url or preset.default_base_url
            key = (p.name, base)
            upstream = self._upstreams.get(key)
            if upstream is None or upstream.limits != config.limits:
                upstream = self._upstreams[key] = self._new_upstream(p.name, base.rstrip("/"), config.limits)
            providers[p.name] = ProviderRuntime(p, preset, upstream, _urls(preset, base))
            bucket = self._provider_buckets.get(p.name)
            if bucket is None or (bucket.rate_per_minute, bucket.burst) != (p.requests_per_minute, p.burst):
                self._provider_buckets[p.name] = BucketSet(p.requests_per_minute, p.burst)
            pool = self.pools.get(p.name)
            if pool is None or not pool.same_source(p):
                if pool is not None:
                    self._retired.append(pool)
                self.pools[p.name] = ProviderPool(p, config, preset.auth_header)
                self.pools[p.name].shared = self.shared
        for name in [n for n in self.pools if n not in providers]:  # a provider deleted by a write
            self._retired.append(self.pools.pop(name))
            self._provider_buckets.pop(name, None)
        return Runtime(config, RoutingTable.from_config(native), providers)

    async def reconfigure(self, config: Config) -> None:
        """Swap in a new configuration; new pools start, replaced ones stop after the swap."""
        self.runtime = self._build(config)
        if self._started:
            for name, pool in self.pools.items():
                if name in self.runtime.providers and pool not in self._running:
                    await pool.start()
                    self._running.append(pool)
        retired, self._retired = self._retired, []
        for pool in retired:
            if pool in self._running:
                self._running.remove(pool)
                await pool.close()

    # --- per request ------------------------------------------------------------------------------

    def unavailable(self, now: float) -> frozenset[str]:
        return self.breakers.unavailable(now) if self.breakers.settings.enabled else frozenset()

    def allow(self, provider: str) -> bool:
        """Whether the provider's circuit lets this request through (and counts it if half-open)."""
        return not self.breakers.settings.enabled or self.breakers.get(provider).allow(time.monotonic())

    def record_outcome(self, provider: str, outcome: Outcome) -> None:
        """What one attempt on a provider came to, as its circuit breaker counts it."""
        if self.breakers.settings.enabled:
            breaker, now = self.breakers.get(provider), time.monotonic()
            if self.shared is MEMORY:  # nobody to tell
                breaker.record(not outcome.breaker_failure, now)
                return
            was_open = breaker.open_for(now) is not None
            breaker.record(not outcome.breaker_failure, now)
            open_for = breaker.open_for(now)
            if (open_for is not None) != was_open or (was_open and breaker.state(now) == "closed"):
                self.shared.breaker_changed(provider, open_for)

    def breaker_elsewhere(self, provider: str, open_for: float | None) -> None:
        """Another instance's circuit for `provider` opened (for `open_for` s) or closed."""
        if self.breakers.settings.enabled:
            breaker, now = self.breakers.get(provider), time.monotonic()
            if open_for is None:
                breaker.closed_elsewhere(now)
            else:
                breaker.opened_elsewhere(float(open_for), now)

    def circuit_error(self, provider: str) -> Overloaded:
        wait = self.breakers.get(provider).retry_after(time.monotonic())
        return Overloaded(
            f"provider {provider!r} is failing repeatedly and is paused (circuit open); "
            f"it is tried again in {wait:.0f} s",
            headers={"retry-after": str(max(1, round(wait)))},
        )

    async def admit_client(self, key: str) -> None:
        """The per-client token bucket; raises `RateLimited` when the client is over its rate."""
        wait = await self.shared.take(f"client:{key}", self.client_buckets)
        if wait > 0:
            raise RateLimited(
                f"this client is over its rate limit ({self.config.limits.requests_per_minute:g} "
                "requests per minute, limits.requests_per_minute)",
                retry_after=wait,
            )

    async def admit_provider(self, provider: str) -> None:
        bucket = self._provider_buckets.get(provider)
        if bucket is None or not bucket.enabled:
            return
        wait = await self.shared.take(f"provider:{provider}", bucket)
        if wait > 0:
            raise RateLimited(
                f"provider {provider!r} is over its configured rate limit (providers[].requests_per_minute)",
                retry_after=wait,
            )

    def attempts(
        self, provider: ProviderRuntime, headers: Mapping[str, str], session: str | None = None
    ) -> CredentialAttempts:
        """One request's credential attempts; `session` keeps a conversation on its sticky credential."""
        return self.pools[provider.name].attempts(headers.get(X_ACCOUNT_NAME) or None, session)

    def provider_health(self, provider: ProviderRuntime, now: float) -> dict[str, Any]:
        circuit = self.breakers.get(provider.name).state(now) if self.breakers.settings.enabled else "closed"
        pool = self.pools[provider.name]
        return {
            "name": provider.name,
            "kind": provider.kind,
            "preset": provider.preset.name,
            "enabled": provider.config.enabled,
            "circuit": circuit.replace("_", "-"),
            "usable": circuit != "open" and pool.usable(time.time()),
            **pool_health(pool, time.time()),
        }

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self.shared = backend_for(self.config.state)
        for owner in self.pools.values():
            owner.shared = self.shared
        await self.shared.start(self)
        for pool in self.pools.values():
            await pool.start()
            self._running.append(pool)
        self._started = True

    async def close(self) -> None:
        for pool in self._running:
            await pool.close()
        await self.shared.close()
        for upstream in self._upstreams.values():
            await upstream.close()


STATE = web.AppKey("state", State)
