"""Where a request goes, and trying the next place when one fails before the client saw a byte.

`plan` asks the pure router for the primary route and its fallback chain; `run` tries each
candidate in turn. An attempt that fails before the client received anything raises
`AttemptFailed` with what the client should get if no candidate is left; anything after the first byte is the
attempt's own business (it reports the error in-stream), so a retry can never duplicate output.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from attrs import frozen

from . import routing
from .errors import ProxyError, RateLimited
from .headers import X_ROUTE
from .providers.calls import AttemptFailed
from .state import ProviderRuntime, Runtime, State

log = logging.getLogger("ccproxy.route")


@frozen
class Candidate:
    provider: ProviderRuntime
    model: str
    reason: str

    @property
    def route_header(self) -> dict[str, str]:
        return {X_ROUTE: f"{self.provider.name},{self.model}; {self.reason}"}


def plan(state: State, runtime: Runtime, view: routing.RequestView) -> list[Candidate]:
    now = time.monotonic()
    unavailable = state.unavailable(now)
    primary = routing.route(view, runtime.table, unavailable)
    chain = [primary, *routing.fallback_chain(primary, runtime.table, unavailable)]
    candidates = [Candidate(runtime.providers[r.provider], r.model, r.reason)
                  for r in chain if r.provider in runtime.providers]
    log.info("route %s -> %s,%s (%s)%s", view.model or "-", primary.provider, primary.model, primary.reason,
             f"; fallback {', '.join(c.provider.name for c in candidates[1:])}" if len(candidates) > 1 else "")
    return candidates


Attempt = Callable[[Candidate], Awaitable[web.StreamResponse]]


async def run(state: State, candidates: list[Candidate], attempt: Attempt) -> web.StreamResponse:
    failure: AttemptFailed | None = None
    for candidate in candidates:
        name = candidate.provider.name
        try:
            state.admit_provider(name)
            response = await attempt(candidate)
        except AttemptFailed as exc:
            state.record_outcome(name, success=not exc.retryable)
            failure = exc
            if not exc.retryable:
                break
            log.warning("provider %s failed before the first byte: %s", name, exc.error.message)
            continue
        except RateLimited as exc:  # this provider's own bucket: another may have room
            failure = AttemptFailed(exc, retryable=True)
            continue
        except ProxyError as exc:
            if exc.http_status >= 500:
                state.record_outcome(name, success=False)
            raise
        state.record_outcome(name, success=response.status < 500)
        return response
    assert failure is not None, "plan() always yields at least one candidate"
    if failure.reply is not None:
        return failure.reply
    raise failure.error
