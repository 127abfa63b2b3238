"""Where a request goes, and trying the next place when one fails before the client saw a byte.

`plan` asks the pure router for the primary route and its fallback chain; `run` tries each
candidate in turn. An attempt that fails before the client received anything raises
`AttemptFailed` with what the client should get if no candidate is left; anything after the first byte is the
attempt's own business (it reports the error in-stream), so a retry can never duplicate output.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from attrs import frozen

from ccproxy_core.core import routing
from ccproxy_core.core.errors import AttemptFailed, RateLimited
from ccproxy_core.core.headers import X_ROUTE
from ccproxy_core.core.outcome import OK
from ccproxy_core.core.tokens import estimate_tokens
from ccproxy_core.core.wire import JSON
from ccproxy_core.server import keyguard, reqlog
from ccproxy_core.server.state import ProviderRuntime, Runtime, State

log = logging.getLogger("ccproxy.route")

_NO_CONTROL = dict.fromkeys(range(32), " ") | {127: " "}


@frozen
class Candidate:
    provider: ProviderRuntime
    model: str
    reason: str

    @property
    def route_header(self) -> dict[str, str]:
        # The model comes from the client: never let it smuggle a line break into a header.
        value = f"{self.provider.name},{self.model}; {self.reason}"
        return {X_ROUTE: value if value.isprintable() else value.translate(_NO_CONTROL)}


def plan_request(state: State, runtime: Runtime, body: JSON, headers: Mapping[str, str]) -> list[Candidate]:
    """Route an Anthropic-shaped request body.

    The input-token estimate matters to routing only through the `longContext` route, and costs
    a few hundred microseconds on a Claude Code body, so it is made only when that route exists.
    """
    tokens = estimate_tokens(body) if "longContext" in runtime.table.routes else 0
    return plan(state, runtime, routing.RequestView.from_anthropic(body, headers, tokens))


def plan(state: State, runtime: Runtime, view: routing.RequestView) -> list[Candidate]:
    now = time.monotonic()
    unavailable = state.unavailable(now)
    primary = routing.route(view, runtime.table, unavailable)
    chain = [primary, *routing.fallback_chain(primary, runtime.table, unavailable)]
    candidates = [
        Candidate(runtime.providers[r.provider], r.model, r.reason) for r in chain if r.provider in runtime.providers
    ]
    candidates = keyguard.filter_candidates(candidates)  # a client key's provider list
    log.debug(  # the access log's one line per request carries the route; this adds the fallback chain
        "route %s -> %s,%s (%s)%s",
        view.model or "-",
        primary.provider,
        primary.model,
        primary.reason,
        f"; fallback {', '.join(c.provider.name for c in candidates[1:])}" if len(candidates) > 1 else "",
    )
    return candidates


Attempt = Callable[[Candidate], Awaitable[web.StreamResponse]]


async def run(state: State, candidates: list[Candidate], attempt: Attempt) -> web.StreamResponse:
    """Try each candidate in turn until one answers; the breaker counts what each attempt came to.

    Whether the next candidate may do better is the `Outcome` of the failed attempt
    (`AttemptFailed.retryable`); an error that is not an upstream answer (a bad request, a pinned
    account that is not usable) is the client's answer at once and counts against no provider."""
    failure: AttemptFailed | None = None
    for candidate in candidates:
        name = candidate.provider.name
        if not state.allow(name):  # circuit open, or its half-open probes are all out
            failure = failure or AttemptFailed(state.circuit_error(name))
            continue
        try:
            await state.admit_provider(name)
            reqlog.routed(name, candidate.model, candidate.reason)
            response = await attempt(candidate)
        except AttemptFailed as exc:
            if exc.outcome is not None:
                state.record_outcome(name, exc.outcome)
            failure = exc
            if not exc.retryable:
                break
            log.warning("provider %s failed before the first byte: %s", name, exc.error.message)
            continue
        except RateLimited as exc:  # this provider's own bucket is empty: another may have room
            failure = AttemptFailed(exc)
            continue
        state.record_outcome(name, OK)
        return response
    assert failure is not None, "plan() always yields at least one candidate"
    if failure.reply is not None:
        return failure.reply
    raise failure.error
