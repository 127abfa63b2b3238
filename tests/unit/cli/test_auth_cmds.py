"""`ccproxy auth import|login|status`, called as the functions the CLI calls."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from ccproxy_core.accounts.store import AccountsError, load_accounts, save_accounts, save_state, state_path
from ccproxy_core.cli.auth import auth_import, auth_login, auth_status
from ccproxy_core.config.model import OAuthSettings
from ccproxy_core.core.credential import Credential
from tests.fakes import FakeTokenEndpoint

T0 = 1_800_000_000.0


def claude_login(path: Path, refresh: str = "sk-ant-ort01-cc", **extra: Any) -> Path:
    path.write_bytes(
        orjson.dumps(
            {
                "claudeAiOauth": {
                    "accessToken": "sk-ant-oat01-cc-access",
                    "refreshToken": refresh,
                    "expiresAt": 1_800_028_800_000,
                    "scopes": ["user:inference"],
                    **extra,
                }
            }
        )
    )
    return path


# --- import -----------------------------------------------------------------------------------


def test_import_adds_the_claude_code_login(tmp_path: Path) -> None:
    """The Claude Code login becomes account 'default', with a warning about sharing it."""
    accounts = tmp_path / "accounts.json"
    message = auth_import(accounts, claude_login(tmp_path / "cc.json", subscriptionType="max"), None)
    assert message.startswith(f"added account 'default' (max) in {accounts}; token expires 2027-01-15T16:00:00Z")
    assert "logs the other out" in message
    assert "sk-ant" not in message
    assert load_accounts(accounts)[0] == [
        Credential("default", "oauth", "sk-ant-oat01-cc-access", "sk-ant-ort01-cc", 1_800_028_800.0)
    ]


def test_reimport_updates_the_same_account_and_a_new_login_gets_a_new_name(tmp_path: Path) -> None:
    """Importing the same login again updates it; a different login is added as account-2."""
    accounts = tmp_path / "accounts.json"
    auth_import(accounts, claude_login(tmp_path / "cc.json"), None)
    assert auth_import(accounts, claude_login(tmp_path / "cc.json"), None).startswith("updated account 'default'")
    assert auth_import(accounts, claude_login(tmp_path / "cc2.json", "sk-ant-ort01-other"), None).startswith(
        "added account 'account-2'"
    )
    assert auth_import(accounts, claude_login(tmp_path / "cc3.json", "sk-ant-ort01-3"), "work").startswith(
        "added account 'work'"
    )
    assert [c.name for c in load_accounts(accounts)[0]] == ["default", "account-2", "work"]


@pytest.mark.parametrize(
    ("source", "name", "message"),
    [
        (None, None, r"no Claude Code login at .*missing\.json: run `claude` and log in"),
        ({"apiKey": "x"}, None, r"has no 'claudeAiOauth' login"),
        ({"claudeAiOauth": {"accessToken": "a"}}, None, r"needs accessToken, refreshToken and expiresAt"),
        (
            {"claudeAiOauth": {"accessToken": "a", "refreshToken": "r", "expiresAt": 1}},
            "Bad Name",
            r"invalid account name 'Bad Name'",
        ),
    ],
)
def test_import_errors_say_what_to_fix(tmp_path: Path, source: Any, name: str | None, message: str) -> None:
    """A missing or unusable credentials file, or a bad name, is refused with what to do."""
    path = tmp_path / "missing.json"
    if source is not None:
        path.write_bytes(orjson.dumps(source))
    with pytest.raises(AccountsError, match=message):
        auth_import(tmp_path / "accounts.json", path, name)


def test_import_never_overwrites_a_broken_accounts_file(tmp_path: Path) -> None:
    """A hand-edited accounts.json that does not parse is left as it is."""
    accounts = tmp_path / "accounts.json"
    accounts.write_bytes(b'{"version": 1, "accounts": {')
    with pytest.raises(AccountsError, match="invalid JSON"):
        auth_import(accounts, claude_login(tmp_path / "cc.json"), None)
    assert accounts.read_bytes() == b'{"version": 1, "accounts": {'


# --- login ------------------------------------------------------------------------------------


class Terminal:
    """Captures what login prints and pastes back the code for the state in the printed URL."""

    def __init__(self, code: str = "good-code", state: str | None = None) -> None:
        self.lines: list[str] = []
        self.code, self.state = code, state

    def input(self, prompt: str) -> str:
        url = next(w for line in self.lines for w in line.split() if w.startswith("https://"))
        state = self.state or parse_qs(urlsplit(url).query)["state"][0]
        return f"{self.code}#{state}"

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


async def login(accounts: Path, name: str | None, token_endpoint: FakeTokenEndpoint, term: Terminal) -> int:
    # auth_login runs its own event loop (it is called from the synchronous CLI).
    return await asyncio.to_thread(
        auth_login, accounts, name, OAuthSettings(token_url=token_endpoint.url), term.input, term.lines.append
    )


async def test_login_exchanges_the_pasted_code_and_saves(tmp_path: Path, token_endpoint: FakeTokenEndpoint) -> None:
    """The printed URL leads to a code; the pasted code#state is exchanged and the account saved."""
    accounts, term = tmp_path / "accounts.json", Terminal()
    assert await login(accounts, "work", token_endpoint, term) == 0
    assert "https://claude.ai/oauth/authorize?code=true&" in term.text
    assert f"saved account 'work' in {accounts}" in term.text
    assert "sk-ant" not in term.text
    [saved] = load_accounts(accounts)[0]
    assert (saved.name, saved.secret, saved.refresh_token) == ("work", "sk-ant-oat01-a1", "sk-ant-ort01-r1")
    assert token_endpoint.requests[0]["state"] in term.text


@pytest.mark.parametrize(
    ("term", "name", "says"),
    [
        (Terminal(state="someone-elses-state"), "work", "state mismatch"),
        (Terminal(code="bad-code"), "work", "login failed: token endpoint answered HTTP 400: invalid_grant"),
        (Terminal(), "Bad Name", "invalid account name"),
    ],
)
async def test_login_failures_save_nothing(
    tmp_path: Path, token_endpoint: FakeTokenEndpoint, term: Terminal, name: str, says: str
) -> None:
    """A mismatched state, a refused code or a bad name exits 1 with the reason and saves nothing."""
    accounts = tmp_path / "accounts.json"
    assert await login(accounts, name, token_endpoint, term) == 1
    assert says in term.text
    assert not accounts.exists()


# --- status -----------------------------------------------------------------------------------


def test_status_table(tmp_path: Path) -> None:
    """Name, state (ok, expired, disabled, rate_limited until) and expiry per account; never a token."""
    accounts = tmp_path / "accounts.json"
    save_accounts(
        accounts,
        [
            Credential("work", "oauth", "sk-ant-oat01-w", "sk-ant-ort01-w", T0 + 3 * 3600 + 120),
            Credential("home", "oauth", "sk-ant-oat01-h", "sk-ant-ort01-h", T0 - 600),
            Credential("spare", "oauth", "sk-ant-oat01-s", "sk-ant-ort01-s", T0 + 86400 * 2),
            Credential("busy", "oauth", "sk-ant-oat01-b", "sk-ant-ort01-b", T0 + 60),
        ],
    )
    save_state(
        state_path(accounts),
        {"version": 1, "accounts": {"spare": {"disabled": True}, "busy": {"rateLimitedUntil": T0 + 900}}},
    )
    table = auth_status(accounts, T0)
    assert "sk-ant" not in table
    header = table.splitlines()[:2]
    assert header[0] == f"{accounts}: 4 account(s)"
    assert header[1].split() == ["NAME", "STATE", "TOKEN", "EXPIRES"]
    rows = {line.split()[0]: line for line in table.splitlines()[2:]}
    assert rows["work"].split()[1:] == ["ok", "2027-01-15T11:02:00Z", "(in", "3h", "2m)"]
    assert rows["home"].split()[1] == "expired"
    assert rows["home"].endswith("(10m ago)")
    assert rows["spare"].split()[1:] == ["disabled", "2027-01-17T08:00:00Z", "(in", "2d", "0h)"]
    assert "rate_limited until 2027-01-15T08:15:00Z" in rows["busy"]


def test_status_without_a_file_says_how_to_add_one(tmp_path: Path) -> None:
    """No accounts file yet: the answer names the commands that create one."""
    assert "ccproxy auth login --name NAME" in auth_status(tmp_path / "accounts.json", T0)


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_status_warns_about_readable_files(tmp_path: Path) -> None:
    """A group- or world-readable accounts file is flagged under the table."""
    accounts = tmp_path / "accounts.json"
    save_accounts(accounts, [Credential("a", "oauth", "sk-ant-oat01-a", "sk-ant-ort01-a", T0)])
    accounts.chmod(0o644)
    assert "warning:" in auth_status(accounts, T0).splitlines()[-1]


def test_the_config_oauth_section_is_the_oauth_settings(tmp_path: Path) -> None:
    """The config's `oauth` section builds OAuthSettings; CCPROXY_OAUTH_TOKEN_URL beats the file."""
    from ccproxy_core.config.load import load
    from ccproxy_core.config.model import structure

    settings = structure({"oauth": {"client_id": "cid", "scopes": "user:inference"}}).oauth
    assert isinstance(settings, OAuthSettings)
    assert (settings.client_id, settings.scopes, settings.authorize_url) == (
        "cid",
        "user:inference",
        OAuthSettings().authorize_url,
    )
    env = {"CCPROXY_OAUTH_TOKEN_URL": "http://127.0.0.1:9/token"}
    assert load(env=env, cwd=tmp_path, user_paths=[]).config.oauth.token_url == "http://127.0.0.1:9/token"
