"""ChatGPT (Codex) subscription accounts: PKCE login, token refresh, and the Codex CLI's login.

A `kind: "codex"` provider pools ChatGPT accounts exactly like Claude ones: the same accounts
file (store.py; each entry also holds its `accountId`), the same `CredentialPool`, the same
single-flight `RefreshScheduler` and single writer. Only the token calls differ, and they are
here (what they share with Claude's is accounts/grant.py's); the scheduler takes them as its
`refresher` (`refresher_for`).

Facts (the Codex CLI's own login, codex-rs/login; every URL is `OpenAIOAuthSettings`):

- authorize at auth.openai.com/oauth/authorize with PKCE S256, `id_token_add_organizations`
  and `codex_cli_simplified_flow`; the browser then lands on the registered redirect
  (localhost:1455/auth/callback), whose address carries `code` and `state`.
- the code exchange is a form post (application/x-www-form-urlencoded); the refresh is JSON
  with `scope`. Both answer `id_token`, `access_token`, `refresh_token`, maybe `expires_in`.
- the account id is the `chatgpt_account_id` claim under `https://api.openai.com/auth` in the
  id token (else the access token); expiry is `expires_in`, else the access token's `exp`.
  Tokens are read, never verified: ccproxy is not their audience.
- the Codex CLI keeps its login in ~/.codex/auth.json:
      {"OPENAI_API_KEY": null, "tokens": {"id_token": "...", "access_token": "...",
       "refresh_token": "...", "account_id": "..."}, "last_refresh": "2025-01-01T00:00:00Z"}
"""

from __future__ import annotations

import base64
import binascii
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from attrs import frozen

from ccproxy_core.accounts import grant
from ccproxy_core.accounts.grant import Clock, Refresher, TokenSet
from ccproxy_core.accounts.store import AccountsError
from ccproxy_core.config.model import Config, OpenAIOAuthSettings, converter
from ccproxy_core.core.credential import Credential
from ccproxy_core.core.redaction import scrub

AUTH_CLAIM = "https://api.openai.com/auth"
# The Codex CLI refreshes a login this often; a login whose token shows no expiry is taken to
# last that long after its `last_refresh` (its access tokens last longer).
CODEX_REFRESH_INTERVAL = 8 * 24 * 3600.0
RELOGIN = "ccproxy auth login-openai {name}"


def default_codex_auth_path() -> Path:
    return Path.home() / ".codex" / "auth.json"


def default_accounts_path() -> Path:
    """Where a codex provider without `accounts_path` keeps its ChatGPT accounts."""
    return Path.home() / ".ccproxy" / "codex-accounts.json"


# --- reading tokens ---------------------------------------------------------------------------


def jwt_claims(token: str | None) -> dict[str, Any]:
    """The payload of a JWT, unverified; {} for anything that is not one."""
    parts = (token or "").split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def account_id_of(*tokens: str | None) -> str | None:
    """The ChatGPT account id the first of `tokens` that names one carries."""
    for token in tokens:
        auth = jwt_claims(token).get(AUTH_CLAIM)
        found = auth.get("chatgpt_account_id") if isinstance(auth, dict) else None
        if isinstance(found, str) and found:
            return found
    return None


def expiry_of(access_token: str) -> float | None:
    exp = jwt_claims(access_token).get("exp")
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


# --- login and refresh ------------------------------------------------------------------------


@frozen
class Login:
    """What a code exchange gave: the tokens and the account they belong to."""

    tokens: TokenSet
    account_id: str | None


def authorize_url(settings: OpenAIOAuthSettings, challenge: str, state: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.client_id,
            "redirect_uri": settings.redirect_uri,
            "scope": settings.scopes,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "id_token_add_organizations": "true",
            "codex_cli_simplified_flow": "true",
            "state": state,
        }
    )
    return f"{settings.authorize_url}?{query}"


async def exchange_code(
    session: aiohttp.ClientSession,
    settings: OpenAIOAuthSettings,
    code: str,
    verifier: str,
    *,
    clock: Clock = time.time,
) -> Login:
    body = urlencode(grant.code_grant(settings, code, verifier)).encode("ascii")
    tokens, doc = await _token_call(session, settings, body, "application/x-www-form-urlencoded", None, clock)
    id_token = doc.get("id_token") if isinstance(doc.get("id_token"), str) else None
    return Login(tokens, account_id_of(id_token, tokens.access_token))


async def refresh(
    session: aiohttp.ClientSession, settings: OpenAIOAuthSettings, refresh_token: str, *, clock: Clock = time.time
) -> TokenSet:
    """New tokens for `refresh_token` (single use: the answer carries the next one)."""
    body = orjson.dumps(
        {
            "client_id": settings.client_id,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "scope": settings.refresh_scope,
        }
    )
    tokens, _ = await _token_call(session, settings, body, "application/json", refresh_token, clock)
    return tokens


def refresher(settings: OpenAIOAuthSettings) -> Refresher:
    """The `RefreshScheduler` strategy for ChatGPT accounts."""

    async def refresh_grant(session: aiohttp.ClientSession, refresh_token: str, clock: Clock) -> TokenSet:
        return await refresh(session, settings, refresh_token, clock=clock)

    return Refresher(refresh_grant, relogin=RELOGIN)


def is_codex(config: Config, provider: str) -> bool:
    """Whether the configured provider named `provider` is of kind codex (by its preset)."""
    from ccproxy_core.providers.presets import preset_for_provider

    found = config.provider(provider)
    return found is not None and preset_for_provider(converter.unstructure(found)).kind == "codex"


def refresher_for(config: Config, provider: str) -> Refresher | None:
    """The refresher a provider's `RefreshScheduler` takes: ChatGPT's for a codex provider,
    None (Claude's, the default) for any other."""
    return refresher(config.openai_oauth) if is_codex(config, provider) else None


async def _token_call(
    session: aiohttp.ClientSession,
    settings: OpenAIOAuthSettings,
    body: bytes,
    content_type: str,
    old_refresh: str | None,
    clock: Clock,
) -> tuple[TokenSet, dict[str, Any]]:
    status, doc, raw = await grant.post_grant(session, settings, body, content_type)
    if status == 200 and isinstance(doc, dict) and isinstance(doc.get("access_token"), str) and doc["access_token"]:
        access = doc["access_token"]
        lasts = grant.expires_in(doc)
        if lasts is not None:
            expires_at = clock() + lasts
        else:
            expires_at = expiry_of(access) or clock() + float(settings.default_expires_in)
        tokens = TokenSet(
            access_token=access,
            refresh_token=grant.next_refresh(doc, old_refresh),
            expires_at=expires_at,
            scope=doc.get("scope") if isinstance(doc.get("scope"), str) else None,
        )
        return tokens, doc
    raise grant.refusal("ChatGPT token endpoint", status, *_error_of(doc, raw), dead=_DEAD_GRANT)


# The refresh token is spent, expired or revoked: only a new login helps (codex-rs reads the same codes).
_DEAD_GRANT = frozenset({"invalid_grant", "refresh_token_expired", "refresh_token_reused", "refresh_token_invalidated"})


def _error_of(doc: Any, raw: bytes) -> tuple[str, str]:
    """(error code, message) from an RFC 6749 body or an OpenAI one (`{"error": {"code", "message"}}`)."""
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        code = err.get("code") or err.get("type") or ""
        return str(code), scrub(f"{code} {err.get('message') or ''}".strip())
    return grant.oauth_error(doc, raw)


# --- the Codex CLI's login --------------------------------------------------------------------


def read_codex_login(path: Path, name: str, now: float) -> Credential:
    """The ChatGPT login of the Codex CLI's auth.json as an account named `name`.

    Raises `AccountsError` saying what is missing (an API-key login has no tokens to pool)."""
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise AccountsError(f"no Codex CLI login at {path}: run `codex login`, or pass the file's path") from None
    except OSError as e:
        raise AccountsError(f"cannot read {path}: {e.strerror}") from None
    except orjson.JSONDecodeError as e:
        raise AccountsError(f"{path}: invalid JSON ({e.msg})") from None
    tokens = doc.get("tokens") if isinstance(doc, dict) else None
    if not isinstance(tokens, dict):
        raise AccountsError(
            f"{path} holds no ChatGPT login ('tokens'); an API-key login cannot be pooled: "
            "run `codex login` with a ChatGPT account"
        )
    access, refresh_token, id_token = (tokens.get(k) for k in ("access_token", "refresh_token", "id_token"))
    if not (isinstance(access, str) and access and isinstance(refresh_token, str) and refresh_token):
        raise AccountsError(f"{path}: tokens needs access_token and refresh_token")
    account_id = tokens.get("account_id")
    if not isinstance(account_id, str) or not account_id:
        account_id = account_id_of(id_token if isinstance(id_token, str) else None, access)
    if account_id is None:
        raise AccountsError(
            f"{path}: no ChatGPT account id (tokens.account_id, or the id token's chatgpt_account_id); "
            "run `codex login` again"
        )
    return Credential(
        name=name,
        kind="oauth",
        secret=access,
        refresh_token=refresh_token,
        expires_at=expiry_of(access) or _last_refresh(doc.get("last_refresh"), now) + CODEX_REFRESH_INTERVAL,
        account_id=account_id,
    )


def _last_refresh(value: Any, now: float) -> float:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return now
