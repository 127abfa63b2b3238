"""One request's view of a provider's credentials: which one to send, and what a failure means.

A provider with no credential of its own is transparent: the client's own `x-api-key` /
`Authorization` header goes upstream (the zero-config default). Otherwise the provider's pool
chooses: `attempts()` yields the credential to use, and yields the next one only when
`failed()` said the last one was limited or stale, never more than the pool allows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from attrs import frozen

from ..headers import ANTHROPIC_BETA, OAUTH_BETA, merge_beta


@frozen
class Credential:
    name: str
    secret: str  # an API key or an OAuth access token; "" for the client's own
    style: str  # "x-api-key" | "authorization-bearer" | "oauth" | "none"

    def headers(self, base: Mapping[str, str]) -> dict[str, str]:
        if not self.secret or self.style == "none":
            return {}
        if self.style == "x-api-key":
            return {"x-api-key": self.secret}
        if self.style == "oauth":
            # The credential needs its beta tag; every tag the client sent stays as it was.
            return {"authorization": f"Bearer {self.secret}",
                    ANTHROPIC_BETA: merge_beta(base.get(ANTHROPIC_BETA), OAUTH_BETA)}
        return {"authorization": f"Bearer {self.secret}"}


CLIENT_OWN = Credential(name="client", secret="", style="none")


class Credentials:
    """The attempts of one request against one provider."""

    def __init__(self, candidates: list[Credential]) -> None:
        self._candidates = candidates or [CLIENT_OWN]
        self._retry = False

    async def attempts(self) -> AsyncIterator[Credential]:
        for credential in self._candidates:
            self._retry = False
            yield credential
            if not self._retry:
                return

    def succeeded(self, credential: Credential, headers: Mapping[str, str]) -> None:
        pass

    def failed(self, credential: Credential, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether the next credential should be tried (the answer is otherwise final)."""
        self._retry = status == 429 and credential is not self._candidates[-1]
        return self._retry
