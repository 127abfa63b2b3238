"""The failover policy of one request, written once and driven by the I/O shell.

`FailoverPlan` decides, after each upstream answer, whether to send it on (`DONE`, `RELAY`),
drop it and try another credential (`NEXT`), or refresh an OAuth token and retry the same
account (`REFRESH`). It does no I/O and holds no clock: the shell passes `now` and performs the
send and the refresh, much as httpx's `auth_flow` generator leaves the sending to the client.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from ccproxy_core.core.credential import Credential
from ccproxy_core.core.errors import ProxyError, ServiceUnavailable
from ccproxy_core.core.outcome import Outcome, OutcomeKind
from ccproxy_core.core.pool import CredentialPool


class Step(enum.Enum):
    DONE = "done"  # success: send this response to the client
    RELAY = "relay"  # give up: send this upstream error to the client as it is
    NEXT = "next"  # drop this response, call `next()` for another credential
    REFRESH = "refresh"  # drop it, refresh this credential's token, then `next()` retries it


class FailoverPlan:
    """The attempts of one request, driven by the I/O shell (httpx `auth_flow` style):

        plan = FailoverPlan(pool, pin=header, now=clock())
        cred = plan.next(clock())                 # raises NotFound / ServiceUnavailable / RateLimited
        while True:
            resp = await send(cred)               # exactly one upstream call per attempt
            step = plan.report(classify(...), resp.headers, clock())
            if step in (Step.DONE, Step.RELAY): return resp
            if step is Step.REFRESH: await scheduler.refresh_now(cred.name, stale_token=cred.secret)
            cred = plan.next(clock())

    At most one attempt per credential plus one retry after an OAuth refresh; a pinned
    request never moves to another credential. The plan records every outcome in the pool.
    """

    def __init__(self, pool: CredentialPool, *, pin: str | None = None, now: float, prefer: str | None = None) -> None:
        self.pool, self.pin, self.started_at = pool, pin, now
        self.prefer = prefer  # a sticky conversation's credential: the first choice while usable
        self.max_attempts = max(1, len(pool)) + 1
        self.tried: list[str] = []
        self.attempts = 0
        self._current: Credential | None = None
        self._refreshed = False
        self._retry_same: str | None = None

    def next(self, now: float) -> Credential:
        if self.attempts >= self.max_attempts:
            raise ServiceUnavailable(f"gave up after {self.attempts} attempts on provider '{self.pool.provider}'")
        cred = None
        if self._retry_same is not None:
            name, self._retry_same = self._retry_same, None
            try:
                cred = self.pool.select(now, pin=name)
            except ProxyError:
                if self.pin is not None:
                    raise  # the refresh did not bring the pinned account back
        if cred is None:
            cred = self.pool.select(now, pin=self.pin, exclude=set(self.tried), prefer=self.prefer)
        self.attempts += 1
        if cred.name not in self.tried:
            self.tried.append(cred.name)
        self._current = cred
        return cred

    def report(self, outcome: Outcome, headers: Mapping[str, str], now: float) -> Step:
        cred = self._current
        if cred is None:
            raise RuntimeError("report() before next()")
        self.pool.record(cred.name, outcome, headers, now, used=cred)
        if outcome.kind is OutcomeKind.OK:
            return Step.DONE
        if (
            outcome.kind is OutcomeKind.AUTH
            and cred.kind == "oauth"
            and cred.refresh_token
            and not self._refreshed
            and self.attempts < self.max_attempts
        ):
            self._refreshed = True
            self._retry_same = cred.name
            return Step.REFRESH
        if (
            not outcome.next_credential
            or self.pin is not None
            or self.attempts >= self.max_attempts
            or not self.pool.has_usable(now, exclude=set(self.tried))
        ):
            return Step.RELAY
        return Step.NEXT
