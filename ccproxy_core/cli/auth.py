"""What `ccproxy auth import|login|login-openai|status` do, as plain functions the CLI calls.

Each takes paths and I/O callables and returns a message or an exit code, so tests call them
directly. Nothing here prints a token: accounts are shown by name, state and expiry.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import orjson

from ccproxy_core.accounts import codex
from ccproxy_core.accounts.grant import OAuthError, make_pkce, make_state, parse_pasted_code
from ccproxy_core.accounts.oauth import authorize_url, exchange_code
from ccproxy_core.accounts.store import (
    NAME_RE,
    AccountsError,
    AccountsFileMissing,
    check_permissions,
    default_accounts_path,
    load_accounts,
    read_state,
    state_path,
    upsert_account,
)
from ccproxy_core.config.model import Config, OAuthSettings, OpenAIOAuthSettings
from ccproxy_core.core.credential import Credential, iso


def _existing(accounts_path: Path) -> list[Credential]:
    """The accounts already saved; a broken file is refused rather than overwritten."""
    try:
        return load_accounts(accounts_path)[0]
    except AccountsFileMissing:
        return []


def _free_name(existing: list[Credential]) -> str:
    taken = {c.name for c in existing}
    if "default" not in taken:
        return "default"
    return next(f"account-{i}" for i in range(2, len(taken) + 3) if f"account-{i}" not in taken)


def _check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise AccountsError(f"invalid account name {name!r}: use 1-32 characters of a-z, 0-9, '_' and '-'")


KEYCHAIN_SERVICE = "Claude Code-credentials"


def keychain_login(platform: str = sys.platform) -> bytes | None:
    """Claude Code's login where macOS keeps it: the Keychain item "Claude Code-credentials",
    the same JSON as `.credentials.json`. None off macOS, without `security`, or without the item."""
    security = shutil.which("security") if platform == "darwin" else None
    if security is None:
        return None
    try:
        found = subprocess.run(
            [security, "find-generic-password", "-s", KEYCHAIN_SERVICE, "-w"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found.stdout.strip() or None if found.returncode == 0 else None


def auth_import(
    accounts_path: Path, from_path: Path, name: str | None, fallback: Callable[[], bytes | None] | None = None
) -> str:
    """Copy Claude Code's login (`claudeAiOauth` in `.credentials.json`) into accounts.json.
    When that file is absent, `fallback` may supply the same JSON (the macOS Keychain).
    Without a name, an account holding the same refresh token is updated, else a new one is
    added ("default", then "account-2", ...). Raises `AccountsError` with what to fix."""
    try:
        data = from_path.read_bytes()
    except FileNotFoundError:
        found = fallback() if fallback is not None else None
        if found is None:
            raise AccountsError(
                f"no Claude Code login at {from_path}"
                + (" nor in the macOS Keychain" if fallback is not None and sys.platform == "darwin" else "")
                + ": run `claude` and log in, or pass --from FILE"
            ) from None
        data, from_path = found, Path(f"the macOS Keychain item {KEYCHAIN_SERVICE!r}")
    except OSError as e:
        raise AccountsError(f"cannot read {from_path}: {e}") from None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise AccountsError(f"cannot read {from_path}: {e}") from None
    oauth = doc.get("claudeAiOauth") if isinstance(doc, dict) else None
    if not isinstance(oauth, dict):
        raise AccountsError(f"{from_path} has no 'claudeAiOauth' login (API-key logins cannot be imported)")
    access, refresh, expires = (oauth.get(k) for k in ("accessToken", "refreshToken", "expiresAt"))
    if not (
        isinstance(access, str)
        and access
        and isinstance(refresh, str)
        and refresh
        and isinstance(expires, (int, float))
        and not isinstance(expires, bool)
    ):
        raise AccountsError(f"{from_path}: claudeAiOauth needs accessToken, refreshToken and expiresAt")
    existing = _existing(accounts_path)
    if name is None:
        same = next((c for c in existing if c.refresh_token == refresh), None)
        name = same.name if same is not None else _free_name(existing)
    _check_name(name)
    verb = "updated" if any(c.name == name for c in existing) else "added"
    cred = Credential(name=name, kind="oauth", secret=access, refresh_token=refresh, expires_at=expires / 1000.0)
    upsert_account(accounts_path, cred)
    plan = oauth.get("subscriptionType")
    lines = [
        f"{verb} account '{name}'"
        + (f" ({plan})" if isinstance(plan, str) else "")
        + f" in {accounts_path}; token expires {_when(cred.expires_at, None)}",
        "note: Claude Code keeps refreshing its own copy of this login, and a refresh token "
        "works once: whichever refreshes first logs the other out. `ccproxy auth login` "
        "gives ccproxy a session of its own.",
    ]
    return "\n".join(lines)


def auth_login(
    accounts_path: Path,
    name: str | None,
    settings: OAuthSettings,
    input_fn: Callable[[str], str],
    print_fn: Callable[[str], None],
) -> int:
    """Log in in a browser, paste the code shown, save the account. Returns an exit code.
    Runs its own event loop: call it from synchronous code (the CLI)."""

    async def exchange(name: str, code: str, verifier: str, state: str) -> Credential:
        async with aiohttp.ClientSession() as session:
            tokens = await exchange_code(session, settings, code, verifier, state)
        return Credential(name, "oauth", tokens.access_token, tokens.refresh_token, tokens.expires_at)

    flow = _PasteLogin(
        instructions=lambda challenge, state: (
            "Open this URL in a browser, log in, then paste the code shown on the page:\n\n"
            f"  {authorize_url(settings, challenge, state)}\n"
        ),
        prompt="Code: ",
        pasted="code",
        saved="account",
        exchange=exchange,
    )
    return flow.run(accounts_path, name, input_fn, print_fn)


def auth_import_codex(accounts_path: Path, from_path: Path, name: str | None, now: float) -> str:
    """Copy the Codex CLI's ChatGPT login (~/.codex/auth.json) into a codex provider's accounts
    file. Without a name, the account already holding that ChatGPT account (or refresh token) is
    updated, else a new one is added. Raises `AccountsError` with what to fix."""
    found = codex.read_codex_login(from_path, name or "default", now)
    existing = _existing(accounts_path)
    if name is None:
        same = next(
            (c for c in existing if c.account_id == found.account_id or c.refresh_token == found.refresh_token), None
        )
        name = same.name if same is not None else _free_name(existing)
    _check_name(name)
    verb = "updated" if any(c.name == name for c in existing) else "added"
    cred = attrs.evolve(found, name=name)
    upsert_account(accounts_path, cred)
    return "\n".join(
        [
            f"{verb} ChatGPT account '{name}' in {accounts_path}; token expires {_when(cred.expires_at, None)}",
            "note: the Codex CLI keeps refreshing its own copy of this login, and a refresh token "
            "works once: whichever refreshes first logs the other out. `ccproxy auth login-openai` "
            "gives ccproxy a session of its own.",
        ]
    )


def auth_login_openai(
    accounts_path: Path,
    name: str | None,
    settings: OpenAIOAuthSettings,
    input_fn: Callable[[str], str],
    print_fn: Callable[[str], None],
) -> int:
    """Log in to ChatGPT in a browser, paste the address it ends on, save the account.
    Returns an exit code. Runs its own event loop: call it from synchronous code (the CLI)."""

    async def exchange(name: str, code: str, verifier: str, state: str) -> Credential:
        async with aiohttp.ClientSession() as session:
            login = await codex.exchange_code(session, settings, code, verifier)
        tokens = login.tokens
        return Credential(
            name, "oauth", tokens.access_token, tokens.refresh_token, tokens.expires_at, account_id=login.account_id
        )

    flow = _PasteLogin(
        instructions=lambda challenge, state: (
            "Open this URL in a browser and log in with your ChatGPT account:\n\n"
            f"  {codex.authorize_url(settings, challenge, state)}\n\n"
            f"The browser then goes to {settings.redirect_uri}?code=... (the page may fail to load;\n"
            "that is expected). Copy that whole address from the address bar and paste it here.\n"
        ),
        prompt="Address or code: ",
        pasted="address",
        saved="ChatGPT account",
        exchange=exchange,
        account_id_required=True,
    )
    return flow.run(accounts_path, name, input_fn, print_fn)


@attrs.frozen
class _PasteLogin:
    """The paste-the-code login (PKCE): one flow, for Claude and for ChatGPT accounts."""

    instructions: Callable[[str, str], str]  # (PKCE challenge, state) -> what to open and paste
    prompt: str
    pasted: str  # what the user pastes, in messages: "code" or "address"
    saved: str  # what is saved, in messages: "account" or "ChatGPT account"
    exchange: Callable[[str, str, str, str], Coroutine[Any, Any, Credential]]  # (name, code, verifier, state)
    account_id_required: bool = False

    def run(
        self, accounts_path: Path, name: str | None, input_fn: Callable[[str], str], print_fn: Callable[[str], None]
    ) -> int:
        try:
            existing = _existing(accounts_path)  # a broken file is said before the login, not after
            name = name or _free_name(existing)
            _check_name(name)
        except AccountsError as e:
            print_fn(f"ccproxy: {e}")
            return 1
        verifier, challenge = make_pkce()
        state = make_state()
        print_fn(self.instructions(challenge, state))
        try:
            code, pasted_state = parse_pasted_code(input_fn(self.prompt))
        except EOFError:
            print_fn("ccproxy: no code entered")
            return 1
        except ValueError as e:
            print_fn(f"ccproxy: {e}")
            return 1
        if pasted_state is not None and pasted_state != state:
            print_fn(f"ccproxy: that {self.pasted} belongs to another login attempt (state mismatch); start again")
            return 1
        try:
            cred = asyncio.run(self.exchange(name, code, verifier, state))
        except OAuthError as e:
            print_fn(f"ccproxy: login failed: {e}")
            return 1
        if not cred.refresh_token:
            print_fn("ccproxy: login failed: the token endpoint issued no refresh token")
            return 1
        if self.account_id_required and cred.account_id is None:
            print_fn("ccproxy: login failed: the tokens name no ChatGPT account (chatgpt_account_id)")
            return 1
        try:
            upsert_account(accounts_path, cred)
        except (AccountsError, OSError) as e:
            print_fn(f"ccproxy: logged in, but could not save {accounts_path}: {e}")
            return 1
        print_fn(f"saved {self.saved} '{name}' in {accounts_path}; token expires {_when(cred.expires_at, None)}")
        return 0


def auth_status(accounts_path: Path, now: float) -> str:
    """A table of accounts: name, state, token expiry. Never a token.

    A broken file raises `AccountsError` (the CLI shows it as one line and exits 1)."""
    try:
        creds, warnings = load_accounts(accounts_path)
    except AccountsFileMissing:
        return (
            f"no accounts file at {accounts_path}; add an account with "
            "`ccproxy auth login --name NAME` or `ccproxy auth import`"
        )
    saved, state_warning = read_state(state_path(accounts_path))
    runtime = saved.get("accounts", {}) if isinstance(saved, dict) else {}
    rows = [("NAME", "STATE", "TOKEN EXPIRES")]
    for cred in creds:
        entry = runtime.get(cred.name) if isinstance(runtime, dict) else None
        entry = entry if isinstance(entry, dict) else {}
        until = entry.get("rateLimitedUntil")
        if entry.get("disabled") is True:
            state = "disabled"
        elif isinstance(until, (int, float)) and until > now:
            state = f"rate_limited until {iso(until)}"
        elif cred.expired(now):
            state = "expired (refreshed when ccproxy runs)"
        else:
            state = "ok"
        rows.append((cred.name, state, _when(cred.expires_at, now)))
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{accounts_path}: {len(creds)} account(s)"]
    lines += [f"  {r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}".rstrip() for r in rows]
    notes = [*warnings, state_warning, check_permissions(accounts_path)]
    lines += [f"warning: {n}" for n in notes if n]
    return "\n".join(lines)


def _when(ts: float | None, now: float | None) -> str:
    if ts is None:
        return "unknown"
    if now is None:
        return str(iso(ts))
    delta = ts - now
    return f"{iso(ts)} ({'in ' + _span(delta) if delta >= 0 else _span(-delta) + ' ago'})"


def _span(seconds: float) -> str:
    s = math.floor(seconds)
    days, hours, minutes = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{s}s"


def accounts_path(
    explicit: str | None, provider: str | None, config: Config | None = None, *, chatgpt: bool = False
) -> tuple[Path, str]:
    """The accounts file the auth commands work on, and a note when the choice needs saying.

    `--accounts` wins; else the configured OAuth provider's `accounts_path` (the one named by
    `--provider`, or the first), so `auth import` writes where the proxy reads; else the
    multi-account fork's `~/.claude/accounts.json`. With `chatgpt`, the same among the codex
    providers (ChatGPT accounts), defaulting to `~/.ccproxy/codex-accounts.json`.
    """
    if explicit:
        return Path(explicit).expanduser(), ""
    if config is None:
        from ccproxy_core.config.load import load
        from ccproxy_core.config.model import ConfigError

        try:
            config = load().config
        except ConfigError as exc:
            return default_accounts_path(), (
                f"the config does not load ({exc.problems[0]}); using {default_accounts_path()}"
            )
    what = "codex" if chatgpt else "OAuth"
    default = codex.default_accounts_path() if chatgpt else default_accounts_path()
    oauth = [p for p in config.providers if p.auth == "oauth" and codex.is_codex(config, p.name) == chatgpt]
    if provider is not None:
        chosen = next((p for p in oauth if p.name == provider), None)
        if chosen is None:
            names = ", ".join(p.name for p in oauth) or "none"
            raise AccountsError(f"no {what} provider named {provider!r} in the config ({what} providers: {names})")
        oauth = [chosen]
    if not oauth:
        return default, ""
    path = Path(oauth[0].accounts_path).expanduser() if oauth[0].accounts_path else default
    note = ""
    if len(oauth) > 1:
        others = ", ".join(p.name for p in oauth[1:])
        note = f"using provider {oauth[0].name}'s {path} (also {what}: {others}; choose with --provider)"
    return path, note
