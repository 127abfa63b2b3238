"""Pick the (provider, model) pair for one request: a pure function of values.

The shell builds a `RequestView` (the few facts routing needs, read once from the body and
headers), keeps a `RoutingTable` built from config, asks the circuit breakers which providers
are `unavailable` right now, and calls `route`. Nothing here reads files, env or clocks, and
the request body is never touched: the model rewrite is the caller's job, using `Route.model`.

Rules, first match wins:

    1. explicit      X-Provider header, `provider,model`, or `model@provider`
    2. model route   a route keyed by the exact model name, else the longest matching glob
    3. longContext   token estimate above `router.long_context_threshold`
    4. webSearch     any tool whose `type` starts with `web_search`
    5. background    a haiku-class model (substring test, so `claude-haiku-4-5` counts)
    6. think         the client asks to think hard (`thinks_hard`, below)
    7. big/small     `router.big_model` / `router.small_model` (npm claude-code-proxy style)
    8. default       the `default` route; without one, the preferred or first provider with
                     the model unchanged (the zero-config transparent proxy)

"Thinking hard" is what a user asks for beyond Claude Code's defaults, since Claude Code sends
thinking on every main request (adaptive with `output_config.effort: "high"`, or a budget of
31999 for models without adaptive thinking): an explicit `budget_tokens` at or above
`router.think_budget_threshold` (32000), an `output_config.effort` at or above
`router.think_effort` ("xhigh"; the order is `EFFORTS`), or the boolean `thinking: true` that
Go ccproxy's clients send. Plain thinking at the defaults goes to `default`.

Background is checked before think on purpose: Claude Code sends its haiku requests with
`thinking: {"type": "enabled", "budget_tokens": 31999}` (tests/fixtures/claude-code/
model-haiku-0001.json), so a think-first order would send every background request to the
expensive think model. webSearch stays ahead of both because the server tool needs a provider
that can run it.

A rule whose provider is unavailable (circuit open) or not an enabled provider is skipped
and the next rule is tried; when every rule is exhausted the first skipped route's fallback
chain supplies the answer. Explicit choices are never rerouted: the client asked for exactly
that pair, so a broken provider is reported rather than silently replaced.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from attrs import field, frozen, validators

from ccproxy_core.core.errors import InvalidRequest, NotFound, ServiceUnavailable
from ccproxy_core.core.headers import X_PROVIDER

SCENARIOS = ("default", "background", "longContext", "think", "webSearch")
# Anthropic's `output_config.effort` levels, least first.
EFFORTS = ("low", "medium", "high", "xhigh", "max")
_GLOB_CHARS = frozenset("*?[")


@frozen
class RouteTarget:
    provider: str
    model: str


def _frozen_map(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@frozen
class RoutingTable:
    """Everything routing needs from config, in a form that cannot change under a request."""

    providers: tuple[str, ...]
    provider_models: Mapping[str, tuple[str, ...]] = field(factory=dict, converter=_frozen_map)
    routes: Mapping[str, RouteTarget] = field(factory=dict, converter=_frozen_map)
    long_context_threshold: int = 60000
    fallback: Mapping[str, tuple[str, ...]] = field(factory=dict, converter=_frozen_map)
    big_model: str = ""
    small_model: str = ""
    preferred_provider: str = ""
    think_budget_threshold: int = 32000
    think_effort: str = field(default="xhigh", validator=validators.in_(EFFORTS))
    # Glob keys, most specific (longest) first; config order breaks ties (sorted is stable).
    globs: tuple[tuple[str, RouteTarget], ...] = field(init=False)

    @globs.default
    def _globs(self) -> tuple[tuple[str, RouteTarget], ...]:
        found = [(k, t) for k, t in self.routes.items() if k not in SCENARIOS and _GLOB_CHARS & set(k)]
        return tuple(sorted(found, key=lambda kt: -len(kt[0])))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RoutingTable:
        """Build the table from the native config dict (see config.py for its shape)."""
        enabled = [p for p in config.get("providers") or () if p.get("enabled", True)]
        router = config.get("router") or {}
        routes = {
            str(key): RouteTarget(str(val.get("provider", "")), str(val.get("model") or ""))
            for key, val in (config.get("routes") or {}).items()
        }
        return cls(
            providers=tuple(str(p["name"]) for p in enabled),
            provider_models={str(p["name"]): tuple(p.get("models") or ()) for p in enabled},
            routes=routes,
            long_context_threshold=int(router.get("long_context_threshold", 60000)),
            fallback={str(k): tuple(v) for k, v in (router.get("fallback") or {}).items()},
            big_model=str(router.get("big_model") or ""),
            small_model=str(router.get("small_model") or ""),
            preferred_provider=str(router.get("preferred_provider") or ""),
            think_budget_threshold=int(router.get("think_budget_threshold", 32000)),
            think_effort=str(router.get("think_effort") or "xhigh"),
        )

    def find_provider(self, name: str) -> str | None:
        """The configured spelling of an enabled provider, matched case-insensitively."""
        if name in self.providers:
            return name
        folded = name.casefold()
        return next((p for p in self.providers if p.casefold() == folded), None)


@frozen
class RequestView:
    """The facts of one request that routing looks at."""

    model: str
    provider_header: str | None = None
    token_estimate: int = 0
    thinking_budget: int = 0  # `budget_tokens` of enabled thinking; 0 without one
    effort: str = ""  # `output_config.effort` while thinking is on; "" otherwise
    think_flag: bool = False  # `thinking: true`, the form Go ccproxy's clients send
    has_web_search: bool = False

    @classmethod
    def from_anthropic(cls, body: Mapping[str, Any], headers: Mapping[str, str], token_estimate: int) -> RequestView:
        # `dict`, not `Mapping`: the body is parsed JSON, and an ABC's isinstance costs ~10x more
        thinking = body.get("thinking")
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        budget = thinking.get("budget_tokens") if isinstance(thinking, dict) and kind == "enabled" else None
        output = body.get("output_config")
        effort = output.get("effort") if isinstance(output, dict) and kind in ("enabled", "adaptive") else None
        tools = body.get("tools")
        return cls(
            model=str(body.get("model") or ""),
            provider_header=_header(headers, X_PROVIDER) or None,
            token_estimate=token_estimate,
            thinking_budget=budget if isinstance(budget, int) and not isinstance(budget, bool) else 0,
            effort=effort if isinstance(effort, str) else "",
            think_flag=thinking is True,
            has_web_search=isinstance(tools, list)
            and any(isinstance(t, dict) and str(t.get("type") or "").startswith("web_search") for t in tools),
        )


def thinks_hard(view: RequestView, table: RoutingTable) -> str | None:
    """Why the request asks to think hard (the `think` rule's reason), or None."""
    if view.think_flag:
        return "thinking: true"
    if view.thinking_budget and view.thinking_budget >= table.think_budget_threshold:
        return f"budget_tokens {view.thinking_budget} >= {table.think_budget_threshold}"
    if view.effort in EFFORTS and EFFORTS.index(view.effort) >= EFFORTS.index(table.think_effort):
        return f"effort {view.effort} >= {table.think_effort}"
    return None


@frozen
class Route:
    provider: str
    model: str
    reason: str
    scenario: str


def _header(headers: Mapping[str, str], name: str) -> str:
    # aiohttp's headers are case-insensitive already; a plain dict (from tests or other shells)
    # is not, so only there is a header that is not found by its name searched for.
    value = headers.get(name)
    if value is None and isinstance(headers, dict):
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return (value or "").strip()


def _split_explicit(model: str) -> tuple[str, str, str] | None:
    """`provider,model` or `model@provider` -> (provider, model, form); None for plain names."""
    if "," in model:
        provider, _, rest = model.partition(",")
        return provider.strip(), rest.strip(), "provider,model"
    if "@" in model:
        rest, _, provider = model.rpartition("@")
        # Vertex names carry a version after `@` (`claude-3-5-sonnet@20240620`): not a provider.
        if rest and provider and not provider[0].isdigit():
            return provider.strip(), rest.strip(), "model@provider"
    return None


def _explicit(view: RequestView, table: RoutingTable) -> Route | None:
    split = _split_explicit(view.model)
    if view.provider_header is None and split is None:
        return None
    model = split[1] if split else view.model
    if not model:
        raise InvalidRequest(f"model {view.model!r} names a provider but no model; write provider,model")
    if view.provider_header is not None:
        wanted, form = view.provider_header, "X-Provider header"
    else:
        assert split is not None
        wanted, form = split[0], split[2]
    provider = table.find_provider(wanted)
    if provider is None:
        known = ", ".join(table.providers) or "(none)"
        raise NotFound(f"provider {wanted!r} is not configured or not enabled; configured providers: {known}")
    return Route(provider, model, f"explicit {form}", "explicit")


def _target_route(target: RouteTarget, view: RequestView, reason: str, scenario: str) -> Route:
    # An empty model in a route means "keep the model the client asked for".
    return Route(target.provider, target.model or view.model, reason, scenario)


def _home(table: RoutingTable) -> str | None:
    """Where a request goes when nothing names a provider: the preferred one, else the first."""
    preferred = table.find_provider(table.preferred_provider) if table.preferred_provider else None
    return preferred or (table.providers[0] if table.providers else None)


def _mapped(spec: str, table: RoutingTable) -> tuple[str, str]:
    """A big/small model spec (`model`, `model@provider` or `provider,model`) as (provider, model)."""
    split = _split_explicit(spec)
    if split is not None:
        return table.find_provider(split[0]) or split[0], split[1]
    return _home(table) or "", spec


def _candidates(view: RequestView, table: RoutingTable) -> Iterator[Route]:
    """Rules 2-8 in order; each yields the route it would choose."""
    routes = table.routes
    if view.model and view.model not in SCENARIOS and view.model in routes:
        yield _target_route(routes[view.model], view, f"route {view.model}", view.model)
    for pattern, target in table.globs:
        if fnmatch.fnmatchcase(view.model, pattern):
            yield _target_route(target, view, f"route {pattern}", pattern)
            break
    if view.token_estimate > table.long_context_threshold and "longContext" in routes:
        reason = f"longContext: ~{view.token_estimate} tokens > {table.long_context_threshold}"
        yield _target_route(routes["longContext"], view, reason, "longContext")
    if view.has_web_search and "webSearch" in routes:
        yield _target_route(routes["webSearch"], view, "webSearch: web_search tool", "webSearch")
    lowered = view.model.lower()
    if "haiku" in lowered and "background" in routes:
        yield _target_route(routes["background"], view, "background: haiku model", "background")
    if "think" in routes and (why := thinks_hard(view, table)) is not None:
        yield _target_route(routes["think"], view, f"think: {why}", "think")
    if "haiku" in lowered and table.small_model:
        yield Route(*_mapped(table.small_model, table), "small_model: haiku-class", "background")
    if ("sonnet" in lowered or "opus" in lowered) and table.big_model:
        yield Route(*_mapped(table.big_model, table), "big_model: sonnet/opus-class", "default")
    if "default" in routes:
        yield _target_route(routes["default"], view, "default", "default")
    elif (home := _home(table)) is not None:
        yield Route(home, view.model, "passthrough: no default route", "default")


def route(view: RequestView, table: RoutingTable, unavailable: frozenset[str] = frozenset()) -> Route:
    """The route for one request.

    Raises `NotFound` (404) for an unknown explicit provider, `InvalidRequest` (400) for an
    explicit provider without a model, `ServiceUnavailable` (503) when no provider is enabled.
    """
    explicit = _explicit(view, table)
    if explicit is not None:
        return explicit
    skipped: list[Route] = []
    for candidate in _candidates(view, table):
        if candidate.provider in table.providers and candidate.provider not in unavailable:
            if skipped:
                note = ", ".join(sorted({s.provider for s in skipped}))
                return Route(
                    candidate.provider, candidate.model, f"{candidate.reason} ({note} unavailable)", candidate.scenario
                )
            return candidate
        skipped.append(candidate)
    if not skipped:
        raise ServiceUnavailable("no enabled provider is configured; add one under `providers`")
    primary = skipped[0]
    chain = fallback_chain(primary, table, unavailable)
    if chain:
        fb = chain[0]
        return Route(
            fb.provider,
            fb.model,
            f"{primary.reason}; {primary.provider} unavailable -> fallback {fb.provider}",
            primary.scenario,
        )
    # Nothing usable: answer with the primary so the shell reports its breaker state
    # (and a retry-after) instead of inventing a destination.
    return Route(primary.provider, primary.model, f"{primary.reason} (all candidates unavailable)", primary.scenario)


def _fallback_entries(route_: Route, table: RoutingTable) -> Iterable[str]:
    if route_.scenario in table.fallback:
        return table.fallback[route_.scenario]
    # An explicit pin asked for one provider; only an `explicit` list may move it elsewhere.
    if route_.scenario == "explicit":
        return ()
    return table.fallback.get("default", ())


def fallback_chain(route: Route, table: RoutingTable, unavailable: frozenset[str] = frozenset()) -> list[Route]:
    """Where to retry `route` after a pre-stream failure, in order.

    Each fallback entry is a provider name, or `provider,model` as claude-code-router writes
    it. A bare provider gets the model of its own route for the same scenario, else its first
    listed model, else the primary's model.
    """
    chain: list[Route] = []
    seen = {route.provider}
    for entry in _fallback_entries(route, table):
        split = _split_explicit(entry)
        provider = table.find_provider(split[0] if split else entry)
        if provider is None or provider in seen or provider in unavailable:
            continue
        seen.add(provider)
        if split is not None and split[1]:
            model = split[1]
        else:
            own = table.routes.get(route.scenario)
            if own is not None and own.provider == provider and own.model:
                model = own.model
            elif table.provider_models.get(provider):
                model = table.provider_models[provider][0]
            else:
                model = route.model
        chain.append(Route(provider, model, f"fallback for {route.scenario}", route.scenario))
    return chain
