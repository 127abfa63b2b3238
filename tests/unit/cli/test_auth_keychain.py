"""`auth import` on macOS: Claude Code's login from the Keychain when ~/.claude/.credentials.json is absent."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import orjson
import pytest

from ccproxy_core.accounts.store import AccountsError, load_accounts
from ccproxy_core.cli.auth import auth_import, keychain_login

LOGIN = {
    "claudeAiOauth": {
        "accessToken": "sk-ant-oat01-kc",
        "refreshToken": "sk-ant-ort01-kc",
        "expiresAt": 1_800_028_800_000,
        "subscriptionType": "pro",
    }
}


@pytest.fixture
def security(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in `security` on PATH: answers `find-generic-password -s "Claude Code-credentials" -w` only."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    item = tmp_path / "keychain-item.json"
    item.write_bytes(orjson.dumps(LOGIN))
    (bin_dir / "security").write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        echo "$@" >> "{tmp_path}/security-calls"
        if [ "$1 $2 $3 $4" = "find-generic-password -s Claude Code-credentials -w" ] && [ -f "{item}" ]; then
            cat "{item}"; echo; exit 0
        fi
        echo "security: SecKeychainSearchCopyNext: The specified item could not be found in the keychain." >&2
        exit 44
    """)
    )
    (bin_dir / "security").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return item


@pytest.mark.slow
def test_the_keychain_login_is_imported_when_the_file_is_absent(tmp_path: Path, security: Path) -> None:
    """No credentials file: the Keychain item's JSON becomes the account, and the message names the Keychain."""
    accounts = tmp_path / "accounts.json"
    message = auth_import(accounts, tmp_path / "absent.json", None, lambda: keychain_login("darwin"))
    assert message.startswith(f"added account 'default' (pro) in {accounts}")
    (cred,) = load_accounts(accounts)[0]
    assert (cred.secret, cred.refresh_token) == ("sk-ant-oat01-kc", "sk-ant-ort01-kc")
    assert (tmp_path / "security-calls").read_text() == "find-generic-password -s Claude Code-credentials -w\n"


@pytest.mark.slow
def test_the_file_wins_over_the_keychain(tmp_path: Path, security: Path) -> None:
    """With ~/.claude/.credentials.json present the Keychain is not asked."""
    file_login = tmp_path / "cc.json"
    file_login.write_bytes(orjson.dumps({"claudeAiOauth": {**LOGIN["claudeAiOauth"], "accessToken": "from-file"}}))
    auth_import(tmp_path / "accounts.json", file_login, None, lambda: keychain_login("darwin"))
    assert load_accounts(tmp_path / "accounts.json")[0][0].secret == "from-file"
    assert not (tmp_path / "security-calls").exists()


@pytest.mark.slow
def test_no_keychain_item_is_the_usual_error(tmp_path: Path, security: Path) -> None:
    """`security` exiting 44 (no such item) ends in the usual advice to log in with `claude`."""
    security.unlink()
    with pytest.raises(AccountsError, match="run `claude` and log in"):
        auth_import(tmp_path / "accounts.json", tmp_path / "absent.json", None, lambda: keychain_login("darwin"))


@pytest.mark.slow
def test_the_keychain_is_only_asked_on_macos(security: Path) -> None:
    """Off macOS there is no Keychain to ask, even with a `security` command on PATH."""
    assert keychain_login("linux") is None
    assert keychain_login("darwin") == orjson.dumps(LOGIN)
