"""accounts.json: the OAuth accounts of a subscription pool, read, written and watched.

    {"version": 1, "accounts": {"NAME": {"accessToken": "...", "refreshToken": "...",
                                         "expiresAt": 1759010400000}}}      # epoch milliseconds

A ChatGPT account (a `kind: "codex"` provider's file, accounts/codex.py) also has
`"accountId"`, sent upstream as `chatgpt-account-id`; every other rule is the same.

Names match `^[a-z0-9_-]{1,32}$`; an invalid entry is skipped with a warning, a broken file is
refused whole with its path and position. The file holds credentials only; runtime state
(cooldowns, disabled flags) goes to a state file beside it (`accounts.state.json`).

Writes are atomic and private: a unique temp file in the same directory, fsync, mode 0600,
`os.replace`, fsync of the directory. A crash at any moment leaves the old file or the new
one, never a torn one; a refresh token (single-use) is therefore never lost once written.

There is one writer per file. Every save (a refresh, `auth import`, `auth login`, a write-back
of newer tokens, the state file) goes through `update_accounts` under `filelock.locked`
(threads and processes): re-read the file, merge by account name, write atomically. A refresh
writes only its own account's tokens, so an account added or removed by hand is never undone.
An editor takes no lock; the file's identity (inode, mtime, size) is checked again just before
the rename and a changed file is merged anew, which narrows its window to a few microseconds;
tokens that an editor's stale copy puts back are replaced by `write_back_newer`.

Reloading on change is accounts/watch.py's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from ccproxy_core.accounts.filelock import locked
from ccproxy_core.core.credential import Credential
from ccproxy_core.core.wire import JSON
from ccproxy_core.files import atomic_write, swap_in

log = logging.getLogger("ccproxy.accounts")

NAME_RE = re.compile(r"^[a-z0-9_-]{1,32}$")


class AccountsError(ValueError):
    """accounts.json cannot be used; the message names the file and what is wrong."""


class AccountsFileMissing(AccountsError):
    pass


def default_accounts_path() -> Path:
    """`~/.claude/accounts.json`, where the multi-account fork keeps it (drop-in compatible)."""
    return Path.home() / ".claude" / "accounts.json"


# --- reading ----------------------------------------------------------------------------------


def load_accounts(path: Path) -> tuple[list[Credential], list[str]]:
    """The valid accounts of `path` and a warning for every entry skipped."""
    return parse_accounts(read_raw(path), path)


def parse_accounts(raw: bytes, path: Path) -> tuple[list[Credential], list[str]]:
    data = _decode(raw, path)
    warnings: list[str] = []
    version = data.get("version")
    if version is None:
        warnings.append(f"{path}: no 'version'; reading it as version 1")
    elif version != 1:
        raise AccountsError(f"{path}: unsupported version {version!r} (this ccproxy reads version 1)")
    accounts = data.get("accounts")
    if not isinstance(accounts, dict):
        raise AccountsError(f"{path}: 'accounts' must be an object mapping names to credentials")
    creds = []
    for name, entry in accounts.items():
        problem = _problem(name, entry)
        if problem:
            warnings.append(f"{path}: account {name!r} skipped: {problem}")
            continue
        creds.append(
            Credential(
                name=name,
                kind="oauth",
                secret=entry["accessToken"],
                refresh_token=entry["refreshToken"],
                expires_at=entry["expiresAt"] / 1000.0,
                account_id=entry.get("accountId") if isinstance(entry.get("accountId"), str) else None,
            )
        )
    return creds, warnings


def _problem(name: str, entry: Any) -> str | None:
    if not NAME_RE.match(name):
        return "names are 1-32 characters of a-z, 0-9, '_' and '-'"
    if not isinstance(entry, dict):
        return "expected an object with accessToken, refreshToken and expiresAt"
    for key in ("accessToken", "refreshToken"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            return f"'{key}' must be a non-empty string"
    expires = entry.get("expiresAt")
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        return "'expiresAt' must be a number (epoch milliseconds)"
    return None


def read_raw(path: Path) -> bytes:
    """The file's bytes, or AccountsFileMissing / AccountsError saying why not."""
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise AccountsFileMissing(f"{path}: file not found") from e
    except OSError as e:
        raise AccountsError(f"{path}: cannot read: {e.strerror}") from e


def _decode(raw: bytes, path: Path) -> JSON:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise AccountsError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from e
    if not isinstance(data, dict):
        raise AccountsError(f"{path}: expected a JSON object at the top level")
    return data


def check_permissions(path: Path) -> str | None:
    """A warning when the file is readable by group or others (POSIX only)."""
    if os.name == "nt":
        return None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if mode & 0o077:
        return f"{path} is readable by others (mode {mode:04o}); it holds tokens: chmod 600 {path}"
    return None


# --- writing: one writer per file -------------------------------------------------------------


def _entry(cred: Credential) -> JSON:
    entry: JSON = {
        "accessToken": cred.secret,
        "refreshToken": cred.refresh_token,
        "expiresAt": None if cred.expires_at is None else round(cred.expires_at * 1000),
    }
    if cred.account_id is not None:
        entry["accountId"] = cred.account_id
    return entry


def _dump(data: JSON) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"


_ATTEMPTS = 5  # re-reads when the file changes under us or is caught mid-edit
_EDIT_PAUSE = 0.02  # seconds between those re-reads

Change = Callable[[JSON], bool]  # mutates the "accounts" mapping; returns whether it changed it


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def update_accounts(
    path: Path, change: Change, *, fallback: Sequence[Credential] | None = None, create: bool = True
) -> list[str]:
    """The one write path of an accounts file: under its lock, re-read it, let `change` edit the
    `accounts` mapping in place, and write it atomically if anything changed. Other accounts
    and unknown fields stay as the file has them. A missing file is created only with `create`.
    A broken file is refused (`AccountsError`) unless `fallback` is given: then its bytes are kept
    in `NAME.broken` and it is rebuilt from `fallback` (a refreshed token must be saved)."""
    with locked(path):
        theirs: bytes | None = None  # an editor's save our exchange took out of place: merge into it
        expected = None  # the identity of the file our merge is based on
        for attempt in range(_ATTEMPTS):
            if theirs is None:
                expected = _identity(path)
            warnings: list[str] = []
            try:
                data = _decode(theirs if theirs is not None else read_raw(path), path)
                if not isinstance(data.get("accounts"), dict):
                    raise AccountsError(f"{path}: 'accounts' is not an object")
            except AccountsFileMissing:
                if not create:
                    return []
                data = {"version": 1, "accounts": {}}
            except AccountsError as e:
                if attempt < _ATTEMPTS - 1:
                    time.sleep(_EDIT_PAUSE)  # perhaps an editor caught mid-save
                    theirs = None
                    continue
                if fallback is None:
                    raise
                with contextlib.suppress(OSError):
                    atomic_write(path.with_name(path.name + ".broken"), path.read_bytes())
                warnings.append(f"{e}; rewrote it from the last good accounts (old bytes in {path.name}.broken)")
                data = {"version": 1, "accounts": {c.name: _entry(c) for c in fallback}}
            changed = change(data["accounts"]) or bool(warnings) or theirs is not None
            if not changed:
                return warnings
            if attempt == _ATTEMPTS - 1:  # the last attempt writes whatever happens: a refreshed token must be saved
                atomic_write(path, _dump(data))
                return warnings
            replaced = swap_in(path, _dump(data))
            if replaced is not None and replaced.identity != expected:
                # Saved by someone who takes no lock (an editor) between our read and our write: the
                # exchange kept their bytes, so their edit is merged in rather than lost.
                theirs, expected = replaced.data, _identity(path)
                continue
            return warnings
    raise AssertionError("unreachable")  # pragma: no cover


def save_accounts(path: Path, creds: Sequence[Credential]) -> None:
    """Write exactly `creds` (OAuth accounts) to `path`."""
    with locked(path):
        atomic_write(path, _dump({"version": 1, "accounts": {c.name: _entry(c) for c in creds}}))


def upsert_account(path: Path, cred: Credential, *, fallback: Sequence[Credential] | None = None) -> list[str]:
    """Add `cred` or replace its tokens (`auth import`, `auth login`), keeping its other fields."""

    def put(accounts: JSON) -> bool:
        current = accounts.get(cred.name)
        accounts[cred.name] = {**current, **_entry(cred)} if isinstance(current, dict) else _entry(cred)
        return True

    return update_accounts(path, put, fallback=fallback)


def save_refreshed(
    path: Path, cred: Credential, spent: str | None, *, fallback: Sequence[Credential] | None = None
) -> list[str]:
    """Write the tokens a refresh just got for `cred`, and nothing else. The file's entry is
    replaced when it holds the refresh token the refresh spent (`spent`) or older tokens; an
    account removed by hand is not brought back, and newer tokens (a fresh login) are kept."""
    warnings: list[str] = []

    def put(accounts: JSON) -> bool:
        warnings.clear()  # a second pass (the file changed under us) starts over
        current = accounts.get(cred.name)
        if not isinstance(current, dict):
            warnings.append(f"account '{cred.name}' is no longer in {path}; its new tokens are kept in memory only")
            return False
        if current.get("refreshToken") == cred.refresh_token:
            return False  # already there (another instance sharing this file wrote them)
        if current.get("refreshToken") != spent and not _older(current, cred):
            warnings.append(f"account '{cred.name}' got newer tokens in {path} while refreshing; the file's are kept")
            return False
        accounts[cred.name] = {**current, **_entry(cred)}
        return True

    return update_accounts(path, put, fallback=fallback, create=False) + warnings


def write_back_newer(path: Path, creds: Sequence[Credential]) -> list[str]:
    """Put the running proxy's tokens back where the file holds older ones (a hand edit or an
    editor's save from a stale copy); returns the names written. Accounts are never added."""
    written: list[str] = []

    def put(accounts: JSON) -> bool:
        written.clear()  # a second pass (the file changed under us) starts over
        for cred in creds:
            current = accounts.get(cred.name)
            if cred.kind == "oauth" and isinstance(current, dict) and _older(current, cred):
                accounts[cred.name] = {**current, **_entry(cred)}
                written.append(cred.name)
        return bool(written)

    update_accounts(path, put, create=False)
    return written


def _older(entry: JSON, cred: Credential) -> bool:
    """Whether a file entry holds other tokens than `cred` that expire sooner (so: older)."""
    if entry.get("refreshToken") == cred.refresh_token or cred.expires_at is None:
        return False
    expires = entry.get("expiresAt")
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        return True  # no usable expiry: the entry cannot be newer
    return expires < round(cred.expires_at * 1000)


# --- runtime state beside the accounts file ---------------------------------------------------


def state_path(accounts_path: Path) -> Path:
    return accounts_path.with_name(accounts_path.stem + ".state.json")


def read_state(path: Path) -> tuple[Any, str | None]:
    """The state document, or (None, warning) when it is missing or unreadable."""
    try:
        return orjson.loads(path.read_bytes()), None
    except FileNotFoundError:
        return None, None
    except (OSError, orjson.JSONDecodeError) as e:
        return None, f"{path}: ignored ({e})"


def save_state(path: Path, data: JSON) -> None:
    """Write the state file through its own writer lock (two servers may share one accounts file)."""
    with locked(path):
        atomic_write(path, orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
