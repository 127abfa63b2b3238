"""Claude OAuth: PKCE login pieces, the token calls, and a refresh scheduler that never races itself."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from ccproxy_core.accounts.grant import (
    InvalidGrant,
    OAuthError,
    TokenSet,
    TransientRefreshError,
    make_pkce,
    parse_pasted_code,
)
from ccproxy_core.accounts.oauth import (
    RefreshScheduler,
    authorize_url,
    backoff_delay,
    exchange_code,
    refresh,
    refresh_due_at,
)
from ccproxy_core.accounts.store import load_accounts, save_accounts
from ccproxy_core.config.model import OAuthSettings, Seconds
from ccproxy_core.core.credential import Credential, CredentialState
from ccproxy_core.core.outcome import Outcome, OutcomeKind
from ccproxy_core.core.pool import CredentialPool
from tests.fakes import FakeTokenEndpoint

T0 = 1_800_000_000.0


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


# --- login pieces -----------------------------------------------------------------------------


def test_pkce_pair() -> None:
    """The verifier is 32 random bytes base64url-encoded; the challenge is its S256 hash, unpadded."""
    verifier, challenge = make_pkce()
    assert len(verifier) == 43
    assert "=" not in verifier + challenge
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert make_pkce()[0] != verifier


def test_authorize_url_carries_every_setting() -> None:
    """The authorize URL has Claude's `code=true` flag and every configurable constant."""
    settings = OAuthSettings(
        authorize_url="https://auth.example/authorize",
        client_id="cid",
        redirect_uri="https://cb.example/x",
        scopes="user:inference user:profile",
    )
    url = urlsplit(authorize_url(settings, "chal", "st4te"))
    assert url._replace(query="").geturl() == "https://auth.example/authorize"
    assert parse_qs(url.query) == {
        "code": ["true"],
        "client_id": ["cid"],
        "response_type": ["code"],
        "redirect_uri": ["https://cb.example/x"],
        "scope": ["user:inference user:profile"],
        "code_challenge": ["chal"],
        "code_challenge_method": ["S256"],
        "state": ["st4te"],
    }


def test_default_settings_are_the_current_endpoints() -> None:
    """Defaults follow what current Claude Code uses (platform.claude.com)."""
    settings = OAuthSettings()
    assert settings.token_url == "https://platform.claude.com/v1/oauth/token"
    assert settings.redirect_uri == "https://platform.claude.com/oauth/code/callback"
    assert settings.client_id == "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
    assert settings.scopes == "user:profile user:inference user:sessions:claude_code"


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("abc#xyz", ("abc", "xyz")),
        ("  abc#xyz\n", ("abc", "xyz")),
        ("abc", ("abc", None)),
        ("https://platform.claude.com/oauth/code/callback?code=abc&state=xyz", ("abc", "xyz")),
    ],
)
def test_parse_pasted_code(pasted: str, expected: tuple[str, str | None]) -> None:
    """The pasted `code#state`, a bare code, or the whole callback URL."""
    assert parse_pasted_code(pasted) == expected


@pytest.mark.parametrize("pasted", ["", "   ", "#state-only"])
def test_parse_pasted_code_refuses_nothing(pasted: str) -> None:
    """An empty paste is an error that says what to paste."""
    with pytest.raises(ValueError, match="paste the value shown"):
        parse_pasted_code(pasted)


def test_token_set_repr_hides_tokens() -> None:
    """Tokens never show in a repr."""
    text = repr(TokenSet("sk-ant-oat01-secretsecret", "sk-ant-ort01-secretsecret", T0))
    assert "secret" not in text


# --- token calls ------------------------------------------------------------------------------


async def test_exchange_sends_json_with_state(
    token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """The code exchange is a JSON body with code, verifier, redirect, client id and state."""
    settings = OAuthSettings(token_url=token_endpoint.url)
    tokens = await exchange_code(session, settings, "good-code", "verif", "st4te", clock=lambda: T0)
    assert token_endpoint.requests == [
        {
            "grant_type": "authorization_code",
            "code": "good-code",
            "redirect_uri": settings.redirect_uri,
            "client_id": settings.client_id,
            "code_verifier": "verif",
            "state": "st4te",
        }
    ]
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_at) == (
        "sk-ant-oat01-a1",
        "sk-ant-ort01-r1",
        T0 + 28800,
    )


async def test_refresh_rotates_and_single_use_is_enforced(
    token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """A refresh returns a new pair; using the old refresh token again is invalid_grant."""
    settings = OAuthSettings(token_url=token_endpoint.url)
    old = token_endpoint.issue()
    tokens = await refresh(session, settings, old, clock=lambda: T0)
    assert tokens.refresh_token != old
    assert token_endpoint.requests[0] == {
        "grant_type": "refresh_token",
        "refresh_token": old,
        "client_id": settings.client_id,
    }
    with pytest.raises(InvalidGrant, match="Refresh token not found"):
        await refresh(session, settings, old)


async def test_refresh_keeps_the_old_refresh_token_when_none_is_issued(
    token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """A response without refresh_token keeps the one we have rather than losing the account."""
    token_endpoint.omit_refresh = True
    old = token_endpoint.issue()
    tokens = await refresh(session, OAuthSettings(token_url=token_endpoint.url), old)
    assert tokens.refresh_token == old


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, TransientRefreshError),
        (503, TransientRefreshError),
        (429, TransientRefreshError),
        (403, OAuthError),
    ],
)
async def test_refresh_failures_are_typed(
    token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession, status: int, error: type[Exception]
) -> None:
    """5xx and 429 (bot protection, not quota) are transient; other refusals are plain OAuthError."""
    token_endpoint.fail_with.append(status)
    with pytest.raises(error) as info:
        await refresh(session, OAuthSettings(token_url=token_endpoint.url), token_endpoint.issue())
    assert type(info.value) is error


async def test_unreachable_token_endpoint_is_transient(session: aiohttp.ClientSession) -> None:
    """A refused connection is a transient failure, not a dead account."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = OAuthSettings(token_url=f"http://127.0.0.1:{port}/v1/oauth/token", timeout_seconds=Seconds(2))
    with pytest.raises(TransientRefreshError, match="unreachable"):
        await refresh(session, settings, "sk-ant-ort01-whatever")


# --- scheduling decisions ---------------------------------------------------------------------


def oauth(
    name: str = "a",
    refresh_token: str = "sk-ant-ort01-x",
    expires_at: float = T0 + 3600,
    token: str = "sk-ant-oat01-a0",
) -> Credential:
    return Credential(name, "oauth", token, refresh_token, expires_at)


@pytest.mark.parametrize(
    ("cred", "state", "retry_at", "due"),
    [
        (oauth(expires_at=T0 + 3600), CredentialState(), None, T0 + 3000),
        (oauth(expires_at=T0 + 3600), CredentialState(), T0 + 3100, T0 + 3100),
        (oauth(expires_at=T0 + 3600), CredentialState(auth_error=True, needs_refresh=True), None, 0.0),
        (oauth(expires_at=T0 + 3600), CredentialState(auth_error=True, needs_refresh=True), T0 + 5, T0 + 5),
        (oauth(expires_at=T0 + 3600), CredentialState(auth_error=True), None, None),  # invalid_grant
        (oauth(expires_at=T0 + 3600), CredentialState(disabled=True), None, None),
        (oauth(expires_at=T0 + 3600), CredentialState(rate_limited_until=T0 + 9999), None, T0 + 3000),
        (oauth(expires_at=None), CredentialState(), None, None),  # type: ignore[arg-type]
        (Credential("k", "api_key", "sk-ant-api03-key"), CredentialState(), None, None),
    ],
)
def test_refresh_due_at(cred: Credential, state: CredentialState, retry_at: float | None, due: float | None) -> None:
    """Due a buffer before expiry, at once after a 401, never after invalid_grant or when disabled."""
    assert refresh_due_at(cred, state, 600.0, retry_at) == due


@pytest.mark.parametrize(
    ("failures", "jitter", "delay"),
    [
        (1, 0.0, 2.5),
        (1, 1.0, 5.0),
        (2, 1.0, 10.0),
        (4, 1.0, 40.0),
        (10, 1.0, 300.0),
        (10, 0.0, 150.0),
    ],
)
def test_backoff_grows_and_is_capped(failures: int, jitter: float, delay: float) -> None:
    """Exponential from 5 s, capped at 300 s, scaled by a jitter of 0.5 to 1."""
    assert backoff_delay(failures, jitter, 5.0, 300.0) == delay


# --- the scheduler ----------------------------------------------------------------------------


class Setup:
    def __init__(
        self,
        tmp_path: Path,
        token_endpoint: FakeTokenEndpoint,
        session: aiohttp.ClientSession,
        *,
        registered: bool = True,
        expires_at: float = T0 + 3600,
        **kw: Any,
    ) -> None:
        self.clock = Clock()
        refresh_token = token_endpoint.issue() if registered else "sk-ant-ort01-revoked"
        self.cred = oauth(refresh_token=refresh_token, expires_at=expires_at)
        self.other = oauth("b", refresh_token="sk-ant-ort01-b", token="sk-ant-oat01-b0", expires_at=T0 + 99999)
        self.path = tmp_path / "accounts.json"
        save_accounts(self.path, [self.cred, self.other])
        self.pool = CredentialPool([self.cred, self.other])
        self.scheduler = RefreshScheduler(
            self.pool,
            session,
            OAuthSettings(token_url=token_endpoint.url),
            self.path,
            clock=self.clock,
            rng=lambda: 1.0,
            **kw,
        )

    def on_disk(self, name: str = "a") -> Credential:
        return next(c for c in load_accounts(self.path)[0] if c.name == name)

    def state(self, name: str = "a") -> str:
        return str(self.pool.account_json(name, self.clock.now)["state"])


async def eventually(check: Any) -> None:
    """Wait, at most 2 s, until `check()` holds (the scheduler runs on the same loop)."""
    async with asyncio.timeout(2):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


async def test_fifty_concurrent_refreshes_make_one_token_request(
    tmp_path: Path, token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """Fifty callers asking at once share one refresh: one request, one new token for all."""
    token_endpoint.delay = 0.05
    s = Setup(tmp_path, token_endpoint, session)
    results = await asyncio.gather(*(s.scheduler.refresh_now("a") for _ in range(50)))
    assert len(token_endpoint.requests) == 1
    assert {r.secret for r in results} == {"sk-ant-oat01-a2"}
    assert s.pool.get("a") == s.on_disk() == results[0]
    assert s.on_disk("b") == s.other  # the other account in the file is untouched


async def test_new_tokens_are_on_disk_before_the_pool_uses_them(
    tmp_path: Path, token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the pool first sees the new tokens, accounts.json already holds them."""
    s = Setup(tmp_path, token_endpoint, session)
    seen_on_disk: list[Credential] = []
    original = s.pool.tokens_refreshed

    def spy(name: str, new: Credential, now: float) -> None:
        seen_on_disk.append(s.on_disk(name))
        original(name, new, now)

    monkeypatch.setattr(s.pool, "tokens_refreshed", spy)
    new = await s.scheduler.refresh_now("a")
    assert seen_on_disk == [new]
    assert s.pool.state("a").last_refresh_at == T0


async def test_transient_failure_keeps_the_account_and_retries(
    tmp_path: Path, token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """A 500 leaves the account usable on its old token (fork bug 3); the next try succeeds."""
    token_endpoint.fail_with.append(500)
    s = Setup(tmp_path, token_endpoint, session)
    with pytest.raises(TransientRefreshError):
        await s.scheduler.refresh_now("a")
    assert s.state() == "available"
    assert s.pool.get("a") == s.cred
    assert "token refresh failed (attempt 1, retrying in 5 s)" in str(s.pool.state("a").last_error)
    assert (await s.scheduler.refresh_now("a")).secret == "sk-ant-oat01-a2"
    assert len(token_endpoint.requests) == 2


async def test_background_loop_refreshes_before_expiry_with_backoff(
    tmp_path: Path, token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """The loop refreshes a token inside the buffer, backs off after a 500, then succeeds."""
    token_endpoint.fail_with.append(500)
    s = Setup(tmp_path, token_endpoint, session, expires_at=T0 + 300, refresh_buffer_seconds=600)
    s.scheduler.start()
    try:
        await eventually(lambda: len(token_endpoint.requests) == 1 and s.pool.state("a").last_error)
        assert s.state() == "available"
        assert s.scheduler.next_due(T0)[0] == []  # backing off, not hammering
        s.clock.now += 5
        s.scheduler.poke()
        await eventually(lambda: s.pool.get("a") != s.cred)
        assert s.on_disk() == s.pool.get("a")
        assert len(token_endpoint.requests) == 2  # "b" expires much later and was left alone
    finally:
        await s.scheduler.stop()


async def test_invalid_grant_marks_auth_error_and_stops_retrying(
    tmp_path: Path, token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """A refused refresh token puts the account in auth_error with a hint, and it is not retried."""
    s = Setup(tmp_path, token_endpoint, session, registered=False)
    with pytest.raises(InvalidGrant):
        await s.scheduler.refresh_now("a")
    assert s.state() == "auth_error"
    assert "ccproxy auth login --name a" in str(s.pool.state("a").last_error)
    assert "revoked" not in str(s.pool.state("a").last_error)
    assert s.scheduler.next_due(T0 + 10**6)[0] == [s.other]


async def test_refresh_never_clears_a_cooldown(
    tmp_path: Path, token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """A successful refresh leaves a rate-limited account rate limited (fork bug 4)."""
    s = Setup(tmp_path, token_endpoint, session)
    s.pool.record("a", Outcome(OutcomeKind.ACCOUNT_EXHAUSTED, 429), {"retry-after": "3600"}, T0)
    await s.scheduler.refresh_now("a")
    assert s.state() == "rate_limited"


async def test_401_path_refreshes_once_and_clears_auth_error(
    tmp_path: Path, token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """After an upstream 401, the refresh for that token brings the account back; a second caller
    holding the same stale token gets the new one without another request."""
    s = Setup(tmp_path, token_endpoint, session)
    s.pool.record("a", Outcome(OutcomeKind.AUTH, 401), {}, T0, used=s.cred)
    assert s.scheduler.next_due(T0)[0] == [s.cred]
    first = await s.scheduler.refresh_now("a", stale_token=s.cred.secret)
    second = await s.scheduler.refresh_now("a", stale_token=s.cred.secret)
    assert first == second
    assert len(token_endpoint.requests) == 1
    assert s.state() == "available"


async def test_newer_tokens_in_the_file_are_used_inside_the_lock(
    tmp_path: Path, token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """If the file holds a newer login than the pool, the refresh uses that refresh token."""
    s = Setup(tmp_path, token_endpoint, session, registered=False)
    relogin = oauth(refresh_token=token_endpoint.issue(), token="sk-ant-oat01-relogin", expires_at=T0 + 7200)
    save_accounts(s.path, [relogin, s.other])
    new = await s.scheduler.refresh_now("a")
    assert token_endpoint.requests == [
        {"grant_type": "refresh_token", "refresh_token": relogin.refresh_token, "client_id": OAuthSettings().client_id}
    ]
    assert s.pool.get("a") == new


async def test_unsaveable_tokens_are_still_used(
    tmp_path: Path, token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """If the file cannot be written, the spent refresh token is not resurrected: the new ones are
    used from memory and the problem is shown."""
    s = Setup(tmp_path, token_endpoint, session)
    (tmp_path / "blocker").write_text("a file where a directory should be")
    s.scheduler.accounts_path = tmp_path / "blocker" / "accounts.json"
    new = await s.scheduler.refresh_now("a")
    assert s.pool.get("a") == new
    assert "could not be saved" in str(s.pool.state("a").last_error)


async def test_stop_lets_an_in_flight_refresh_reach_the_file(
    tmp_path: Path, token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """Stopping the scheduler waits for a refresh in flight, so the rotated token is saved."""
    token_endpoint.delay = 0.1
    s = Setup(tmp_path, token_endpoint, session)
    s.scheduler.start()
    waiter = asyncio.ensure_future(s.scheduler.refresh_now("a"))
    await eventually(lambda: len(token_endpoint.requests) == 1)
    await s.scheduler.stop()
    assert s.on_disk().secret == "sk-ant-oat01-a2"
    assert (await waiter).secret == "sk-ant-oat01-a2"
    assert [t for t in asyncio.all_tasks() if "RefreshScheduler" in repr(t.get_coro())] == []


async def test_unknown_account_is_not_found(
    tmp_path: Path, token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """Refreshing a name the pool does not hold is a 404 for the status API."""
    from ccproxy_core.core.errors import NotFound

    s = Setup(tmp_path, token_endpoint, session)
    with pytest.raises(NotFound):
        await s.scheduler.refresh_now("zed")


async def test_a_poke_writes_newer_pool_tokens_back_over_a_stale_file(
    tmp_path: Path, token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """After a reload of a file older than the pool (an edit from a stale copy), the pool's tokens go back to disk."""
    s = Setup(tmp_path, token_endpoint, session)
    new = await s.scheduler.refresh_now("a")
    save_accounts(s.path, [s.cred, s.other])  # an editor saves the copy it read before the refresh
    s.scheduler.start()
    try:
        s.scheduler.poke()
        await eventually(lambda: s.on_disk() == new)
        assert s.on_disk("b") == s.other
    finally:
        await s.scheduler.stop()


async def test_retry_in_says_when_a_failed_refresh_is_tried_again(
    tmp_path: Path, token_endpoint: FakeTokenEndpoint, session: aiohttp.ClientSession
) -> None:
    """After a transient failure the scheduler's backoff is the wait a client is told."""
    token_endpoint.fail_with.append(503)
    s = Setup(tmp_path, token_endpoint, session)
    assert s.scheduler.retry_in("a", s.clock.now) == 0.0
    with pytest.raises(TransientRefreshError):
        await s.scheduler.refresh_now("a")
    assert s.scheduler.retry_in("a", s.clock.now) == pytest.approx(5.0)  # backoff base, full jitter
