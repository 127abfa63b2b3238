"""ChatGPT token handling (accounts/codex.py): claims read from the tokens, what each token-endpoint
answer means, and the Codex CLI's login file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ccproxy_core.accounts import codex
from ccproxy_core.accounts.grant import InvalidGrant, OAuthError, TransientRefreshError
from ccproxy_core.accounts.store import AccountsError, load_accounts, upsert_account
from ccproxy_core.cli.auth import auth_status
from ccproxy_core.config.model import OpenAIOAuthSettings, structure
from ccproxy_core.core.credential import Credential
from tests.chatgpt_fakes import id_token, make_jwt


def test_account_id_and_expiry_come_from_the_token_claims() -> None:
    """The id token's chatgpt_account_id wins, then the access token's; exp is the expiry; non-JWTs give nothing."""
    access = make_jwt({"exp": 1800000000, "https://api.openai.com/auth": {"chatgpt_account_id": "from-access"}})
    assert codex.account_id_of(id_token("from-id"), access) == "from-id"
    assert codex.account_id_of("not-a-jwt", access) == "from-access"
    assert codex.account_id_of(None, "a.b.c") is None
    assert codex.expiry_of(access) == 1800000000.0
    assert codex.expiry_of(make_jwt({"exp": True})) is None
    assert codex.jwt_claims("x.%%%.y") == {}


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, {"error": "invalid_grant", "error_description": "already used"}, InvalidGrant),
        (401, {"error": {"code": "refresh_token_reused", "message": "reused"}}, InvalidGrant),
        (400, {"error": "refresh_token_expired"}, InvalidGrant),
        (503, {"error": "server_error"}, TransientRefreshError),
        (429, {"error": "slow_down"}, TransientRefreshError),
        (200, {"token_type": "Bearer"}, TransientRefreshError),
        (403, {"error": "unauthorized_client"}, OAuthError),
    ],
)
async def test_each_token_endpoint_refusal_means_one_thing(
    aiohttp_server: Any, status: int, body: Any, error: type[Exception]
) -> None:
    """A spent refresh token is InvalidGrant (re-login), 5xx/429 transient (retry later), the rest OAuthError."""

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_post("/oauth/token", answer)
    server = await aiohttp_server(app)
    settings = OpenAIOAuthSettings(token_url=str(server.make_url("/oauth/token")))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(error) as caught:
            await codex.refresh(session, settings, "rt_x")
    assert type(caught.value) is error
    assert "ChatGPT token endpoint" in str(caught.value)


def test_accounts_file_keeps_the_account_id(tmp_path: Path) -> None:
    """accountId is written and read back; a Claude entry beside it has none."""
    path = tmp_path / "accounts.json"
    upsert_account(path, Credential("gpt", "oauth", "at", "rt", 1800000000.0, account_id="acct-1"))
    upsert_account(path, Credential("claude", "oauth", "sk-ant-oat", "sk-ant-ort", 1800000000.0))
    saved = json.loads(path.read_text())["accounts"]
    assert saved["gpt"]["accountId"] == "acct-1" and "accountId" not in saved["claude"]
    creds = {c.name: c for c in load_accounts(path)[0]}
    assert (creds["gpt"].account_id, creds["claude"].account_id) == ("acct-1", None)


def test_codex_login_without_exp_lasts_the_cli_refresh_interval_from_last_refresh(tmp_path: Path) -> None:
    """A token that shows no expiry is taken to last 8 days from the file's last_refresh."""
    path = tmp_path / "auth.json"
    doc = {
        "tokens": {"access_token": "opaque", "refresh_token": "rt", "account_id": "acct"},
        "last_refresh": "2026-11-01T00:00:00Z",
    }
    path.write_text(json.dumps(doc))
    cred = codex.read_codex_login(path, "work", now=0.0)
    assert cred.expires_at == 1793491200.0 + 8 * 86400
    with pytest.raises(AccountsError, match="no Codex CLI login at"):
        codex.read_codex_login(tmp_path / "missing.json", "work", now=0.0)


def test_status_lists_chatgpt_accounts_without_tokens(tmp_path: Path) -> None:
    """`auth status` reads a codex accounts file like any other; no token is printed."""
    path = tmp_path / "codex-accounts.json"
    upsert_account(path, Credential("work", "oauth", "eyJsecret", "rt_secret", 1800000000.0, account_id="acct-1"))
    table = auth_status(path, 1700000000.0)
    assert "work" in table and "ok" in table
    assert "eyJsecret" not in table and "rt_secret" not in table


def test_refresher_is_chatgpts_for_codex_providers_only(tmp_path: Path) -> None:
    """The scheduler's grant is ChatGPT's for a codex provider and Claude's (None: the default) otherwise."""
    config = structure(
        {
            "providers": [
                {"name": "gpt", "kind": "codex", "auth": "oauth", "accounts_path": str(tmp_path / "c.json")},
                {"name": "claude", "kind": "anthropic", "auth": "oauth"},
            ]
        }
    )
    found = codex.refresher_for(config, "gpt")
    assert found is not None and found.relogin.format(name="a") == "ccproxy auth login-openai a"
    assert codex.refresher_for(config, "claude") is None
