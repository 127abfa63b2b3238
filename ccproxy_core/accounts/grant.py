"""What every OAuth token endpoint ccproxy logs in and refreshes at has in common.

Claude's (accounts/oauth.py) and ChatGPT's (accounts/codex.py) endpoints differ in their URLs,
client ids, body encodings, refresh fields and error bodies, and those stay with each of them.
What is the same is here, once: the PKCE pair and state of a login, the code the user pastes
back (`parse_pasted_code`), the code grant's fields, posting a grant and reading the answer
(`post_grant`), the refresh token an answer leaves in use, and what a refusal means (`refusal`):

    OAuthError                  the token endpoint refused, for a reason not listed below
    ├── InvalidGrant            the refresh token is dead (used, revoked): re-login needed
    └── TransientRefreshError   5xx, 408, 429, timeout, connection failure: retry later

`Refresher` is how the one `RefreshScheduler` (accounts/oauth.py) gets new tokens for either kind
of account.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Container
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson
from attrs import field, frozen

from ccproxy_core.config.model import OAuthSettings, OpenAIOAuthSettings
from ccproxy_core.core.redaction import redact, scrub

Clock = Callable[[], float]
Endpoint = OAuthSettings | OpenAIOAuthSettings


@frozen
class TokenSet:
    access_token: str = field(repr=redact)
    refresh_token: str | None = field(repr=redact)
    expires_at: float  # epoch seconds
    scope: str | None = None


class OAuthError(Exception):
    pass


class InvalidGrant(OAuthError):
    pass


class TransientRefreshError(OAuthError):
    pass


@frozen
class Refresher:
    """How one kind of account gets new tokens: the HTTP grant (Claude's by default; ChatGPT's in
    accounts/codex.py), and the command that logs an account in anew when its refresh token is dead."""

    grant: Callable[[aiohttp.ClientSession, str, Clock], Awaitable[TokenSet]]
    relogin: str = "ccproxy auth login --name {name}"


# --- login ------------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_pkce() -> tuple[str, str]:
    """(verifier, S256 challenge): 32 random bytes, base64url without padding."""
    verifier = _b64url(secrets.token_bytes(32))
    return verifier, _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def make_state() -> str:
    return secrets.token_urlsafe(32)


def parse_pasted_code(text: str) -> tuple[str, str | None]:
    """(code, state) from what the user pasted: `code#state`, a bare code, or the callback URL."""
    text = text.strip()
    if "?" in text and "code=" in text:
        query = parse_qs(urlsplit(text).query)
        code = query.get("code", [""])[0]
        state = query.get("state", [None])[0]
    else:
        code, _, rest = text.partition("#")
        state = rest or None
    if not code:
        raise ValueError("no code found: paste the value shown after login (it looks like `abc…#xyz…`)")
    return code, state


def code_grant(settings: Endpoint, code: str, verifier: str) -> dict[str, str]:
    """The fields of an authorization-code grant (RFC 6749 4.1.3 with PKCE), in the order sent."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": settings.redirect_uri,
        "client_id": settings.client_id,
        "code_verifier": verifier,
    }


# --- the token call ---------------------------------------------------------------------------


async def post_grant(
    session: aiohttp.ClientSession, settings: Endpoint, body: bytes, content_type: str
) -> tuple[int, Any, bytes]:
    """POST one grant to the token endpoint: (status, the answer's JSON or None, its bytes).

    An endpoint that cannot be reached, or does not answer in time, is a `TransientRefreshError`."""
    headers = {"content-type": content_type, "accept": "application/json", "user-agent": settings.user_agent}
    try:
        async with session.post(
            settings.token_url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=settings.timeout_seconds),
        ) as resp:
            status, raw = resp.status, await resp.read()
    except (aiohttp.ClientError, TimeoutError) as e:
        raise TransientRefreshError(f"token endpoint unreachable: {type(e).__name__}: {e}") from e
    try:
        doc: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = None
    return status, doc, raw


def expires_in(doc: dict[str, Any]) -> float | None:
    """The answer's `expires_in` in seconds, when it is a number."""
    value = doc.get("expires_in")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def next_refresh(doc: dict[str, Any], used: str | None) -> str | None:
    """The refresh token to keep: the one the answer issues, else the one the grant used."""
    issued = doc.get("refresh_token")
    return issued if isinstance(issued, str) and issued else used


def oauth_error(doc: Any, raw: bytes) -> tuple[str, str]:
    """(error code, message) from an RFC 6749 body or an Anthropic-style error body."""
    if isinstance(doc, dict):
        err = doc.get("error")
        if isinstance(err, dict):  # {"type":"error","error":{"type":..,"message":..}}
            return str(err.get("type") or ""), scrub(str(err.get("message") or ""))
        desc = doc.get("error_description") or ""
        return str(err or ""), scrub(f"{err} {desc}".strip() if err else str(desc))
    return "", scrub(raw[:200].decode("utf-8", "replace").strip())


def refusal(endpoint: str, status: int, code: str, message: str, *, dead: Container[str]) -> OAuthError:
    """The error for an answer without tokens from `endpoint` (its name in the message); a `code`
    in `dead` means the refresh token is spent."""
    what = f"{endpoint} answered HTTP {status}" + (f": {message}" if message else "")
    if code in dead:
        return InvalidGrant(what)
    if status >= 500 or status in (408, 429):
        # Claude's token host sits behind bot protection; its 429 is not the account's quota.
        return TransientRefreshError(what)
    if status == 200:
        return TransientRefreshError(f"{endpoint} answered 200 without an access_token")
    return OAuthError(what)
