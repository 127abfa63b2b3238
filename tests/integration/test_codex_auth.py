"""`ccproxy auth import --codex` and `ccproxy auth login-openai` against fakes of the Codex CLI's login
file and ChatGPT's token endpoint; both write the accounts file through its one writer, mode 0600."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ccproxy_core.accounts.store import load_accounts
from ccproxy_core.cli import auth as auth_cmds
from ccproxy_core.cli.main import main
from ccproxy_core.config.model import OpenAIOAuthSettings
from tests import chatgpt_fakes
from tests.chatgpt_fakes import FakeChatGPTAuth, make_jwt


@pytest.fixture
async def chatgpt(aiohttp_server: Any) -> FakeChatGPTAuth:
    auth, _ = await chatgpt_fakes.start(aiohttp_server)
    return auth


def codex_login(home: Path, account_id: str | None = "acct-1", **tokens: Any) -> Path:
    """A ~/.codex/auth.json as the Codex CLI writes it after a ChatGPT login."""
    path = home / ".codex" / "auth.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    exp = int(time.time()) + 10 * 86400
    doc = {
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": chatgpt_fakes.id_token(account_id or "acct-from-jwt"),
            "access_token": make_jwt({"exp": exp, "https://api.openai.com/auth": {"chatgpt_account_id": "x"}}),
            "refresh_token": "rt_codex_cli",
            **({"account_id": account_id} if account_id else {}),
            **tokens,
        },
        "last_refresh": "2026-11-29T18:00:00Z",
    }
    path.write_text(json.dumps(doc))
    return path


def test_import_codex_copies_the_codex_cli_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`auth import --codex` reads ~/.codex/auth.json by default and saves the account with its
    accountId and the access token's expiry, mode 0600, printing no token."""
    monkeypatch.setenv("HOME", str(tmp_path))
    source = codex_login(tmp_path)
    accounts = tmp_path / "codex-accounts.json"
    assert main(["auth", "import", "--codex", "--accounts", str(accounts)]) == 0
    out = capsys.readouterr().out
    assert f"added ChatGPT account 'default' in {accounts}" in out
    assert "eyJ" not in out and "rt_codex_cli" not in out
    [cred] = load_accounts(accounts)[0]
    tokens = json.loads(source.read_text())["tokens"]
    assert (cred.secret, cred.refresh_token, cred.account_id) == (tokens["access_token"], "rt_codex_cli", "acct-1")
    assert cred.expires_at is not None and cred.expires_at > time.time() + 9 * 86400  # the token's own exp
    assert accounts.stat().st_mode & 0o777 == 0o600


def test_reimport_updates_the_same_chatgpt_account(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same ChatGPT account imported again (new tokens) updates its entry; another one is added."""
    accounts = tmp_path / "codex-accounts.json"
    source = codex_login(tmp_path / "one")
    assert main(["auth", "import", "--codex", str(source), "--accounts", str(accounts)]) == 0
    source = codex_login(tmp_path / "one", refresh_token="rt_newer")
    assert main(["auth", "import", "--codex", str(source), "--accounts", str(accounts)]) == 0
    assert "updated ChatGPT account 'default'" in capsys.readouterr().out
    other = codex_login(tmp_path / "two", account_id=None)  # the id comes from the id token then
    assert main(["auth", "import", "--codex", str(other), "--accounts", str(accounts)]) == 0
    saved = {c.name: c for c in load_accounts(accounts)[0]}
    assert sorted(saved) == ["account-2", "default"]
    assert saved["default"].refresh_token == "rt_newer"
    assert saved["account-2"].account_id == "acct-from-jwt"


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"OPENAI_API_KEY": "sk-x"}, "holds no ChatGPT login ('tokens'); an API-key login cannot be pooled"),
        ({"tokens": {"access_token": "a"}}, "tokens needs access_token and refresh_token"),
        ({"tokens": {"access_token": "a", "refresh_token": "r"}}, "no ChatGPT account id"),
    ],
)
def test_import_codex_errors_say_what_to_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: Any, says: str
) -> None:
    """A login the pool cannot use is refused with the reason, and nothing is written."""
    source, accounts = tmp_path / "auth.json", tmp_path / "codex-accounts.json"
    source.write_text(json.dumps(doc))
    assert main(["auth", "import", "--codex", str(source), "--accounts", str(accounts)]) == 1
    assert says in capsys.readouterr().err
    assert not accounts.exists()


# --- login-openai -----------------------------------------------------------------------------


class Browser:
    """Plays the user: logs in at the printed URL (the fake hands out a code for an account) and
    pastes the address the browser ends on, `redirect_uri?code=...&state=...`."""

    def __init__(self, auth: FakeChatGPTAuth, account_id: str = "acct-login", state: str | None = None) -> None:
        self.auth, self.account_id, self.state = auth, account_id, state
        self.lines: list[str] = []

    def input(self, prompt: str) -> str:
        url = next(w for line in self.lines for w in line.split() if w.startswith("https://auth.openai.com/"))
        query = parse_qs(urlsplit(url).query)
        code = f"code-{len(self.auth.codes)}"
        self.auth.codes[code] = self.account_id
        return f"{query['redirect_uri'][0]}?code={code}&scope=openid&state={self.state or query['state'][0]}"

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


async def login(accounts: Path, name: str | None, auth: FakeChatGPTAuth, browser: Browser) -> int:
    settings = OpenAIOAuthSettings(token_url=auth.url)
    return await asyncio.to_thread(
        auth_cmds.auth_login_openai, accounts, name, settings, browser.input, browser.lines.append
    )


async def test_login_openai_exchanges_the_pasted_address_and_saves(tmp_path: Path, chatgpt: FakeChatGPTAuth) -> None:
    """The printed URL carries the Codex client's PKCE parameters; the pasted callback address is
    exchanged (a form post) and the account saved with its ChatGPT account id, mode 0600."""
    accounts, browser = tmp_path / "codex-accounts.json", Browser(chatgpt)
    assert await login(accounts, "work", chatgpt, browser) == 0
    url = next(w for w in browser.text.split() if w.startswith("https://auth.openai.com/oauth/authorize?"))
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == ["app_EMoamEEZ73f0CkXaXp7hrann"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == ["http://localhost:1455/auth/callback"]
    assert query["scope"] == ["openid profile email offline_access"]
    [(content_type, body)] = chatgpt.requests
    assert content_type == "application/x-www-form-urlencoded" and body["grant_type"] == "authorization_code"
    assert f"saved ChatGPT account 'work' in {accounts}" in browser.text and "eyJ" not in browser.text
    [cred] = load_accounts(accounts)[0]
    assert (cred.name, cred.account_id) == ("work", "acct-login")
    assert chatgpt.access[cred.secret] == "acct-login" and cred.refresh_token in chatgpt.refresh_tokens
    assert accounts.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("state", "name", "says"),
    [
        ("someone-elses-state", "work", "state mismatch"),
        (None, "Bad Name", "invalid account name"),
    ],
)
async def test_login_openai_failures_save_nothing(
    tmp_path: Path, chatgpt: FakeChatGPTAuth, state: str | None, name: str, says: str
) -> None:
    """A mismatched state or a bad name exits 1 with the reason and writes no file."""
    accounts, browser = tmp_path / "codex-accounts.json", Browser(chatgpt, state=state)
    assert await login(accounts, name, chatgpt, browser) == 1
    assert says in browser.text
    assert not accounts.exists()


@pytest.mark.slow
async def test_login_openai_command_reads_the_address_on_stdin(tmp_path: Path, chatgpt: FakeChatGPTAuth) -> None:
    """`ccproxy auth login-openai --provider chatgpt work` as a process: the URL on stdout, the
    address pasted on stdin, the account saved in the codex provider's accounts file."""
    accounts = tmp_path / "codex-accounts.json"
    config = tmp_path / "config.json"
    provider = {"name": "chatgpt", "kind": "codex", "auth": "oauth", "accounts_path": str(accounts)}
    config.write_text(json.dumps({"providers": [provider], "openai_oauth": {"token_url": chatgpt.url}}))
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CCPROXY_CONFIG": str(config)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ccproxy_core",
        "auth",
        "login-openai",
        "--provider",
        "chatgpt",
        "work",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,  # no project config of this checkout
    )
    assert proc.stdin is not None and proc.stdout is not None
    browser = Browser(chatgpt)
    try:
        for _ in range(20):  # the URL comes within the first lines
            line = (await proc.stdout.readline()).decode()
            browser.lines.append(line)
            if "https://auth.openai.com/" in line:
                break
        proc.stdin.write((browser.input("") + "\n").encode())
        await proc.stdin.drain()
        out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert f"saved ChatGPT account 'work' in {accounts}" in out.decode()
    [cred] = load_accounts(accounts)[0]
    assert (cred.name, cred.account_id) == ("work", "acct-login")
    assert accounts.stat().st_mode & 0o777 == 0o600
