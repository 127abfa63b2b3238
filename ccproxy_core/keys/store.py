"""The client keys file: SQLite in the state directory, keys kept only as keyed hashes.

`keys.sqlite3` (mode 0600) holds a random pepper (made with the file) and one row per key:
name, display prefix, HMAC-SHA256(pepper, key), limits as JSON, created and revoked times. A
clear key exists only in `create`'s return value; it cannot be read back from the file, and a
copy of the file without its pepper-bearing row reveals nothing to brute force.

The server reads the whole table into a `KeyIndex` (digest -> ClientKey) and reloads it when
the file changes; the CLI writes here directly when no server runs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from attrs import evolve, field, frozen

from ccproxy_core import dirs
from ccproxy_core.keys.model import KEY_PREFIX, ClientKey, KeySettingError, Limits, check_name

if TYPE_CHECKING:
    import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
    name TEXT PRIMARY KEY, prefix TEXT NOT NULL, digest TEXT NOT NULL UNIQUE,
    limits TEXT NOT NULL, created REAL NOT NULL, revoked REAL
);
"""
PREFIX_CHARS = 8  # `ccp-` and 8 characters: enough to tell keys apart, far too few to guess one


class KeyNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no client key named {name!r}; `ccproxy keys list` shows them")


class KeyExists(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a client key named {name!r} exists already; pick another name or update it")


def default_path() -> Path:
    return dirs.state_dir() / "keys.sqlite3"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest_of(pepper: bytes, key: str) -> str:
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


@frozen
class KeyIndex:
    """Every key of the file, by digest, with the pepper to hash a presented key."""

    pepper: bytes
    by_digest: dict[str, ClientKey]
    _mac: Any = field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        # Keyed once: each lookup copies the keyed state instead of keying HMAC again.
        object.__setattr__(self, "_mac", hmac.new(self.pepper, digestmod=hashlib.sha256))

    def lookup(self, presented: str) -> ClientKey | None:
        if not presented.startswith(KEY_PREFIX):
            return None
        mac = self._mac.copy()
        mac.update(presented.encode())
        return self.by_digest.get(mac.hexdigest())

    def __len__(self) -> int:
        return len(self.by_digest)


EMPTY_INDEX = KeyIndex(b"", {})


def _limits_json(limits: Limits) -> bytes:
    return orjson.dumps(
        {
            "budget_day_usd": limits.budget_day_usd,
            "budget_month_usd": limits.budget_month_usd,
            "rpm": limits.rpm,
            "tpm": limits.tpm,
            "concurrency": limits.concurrency,
            "models": list(limits.models),
            "providers": list(limits.providers),
            "expires_at": limits.expires_at,
        }
    )


def _limits_of(text: str) -> Limits:
    raw: dict[str, Any] = orjson.loads(text)
    raw["models"] = tuple(raw.get("models") or ())
    raw["providers"] = tuple(raw.get("providers") or ())
    known = {a.name for a in Limits.__attrs_attrs__}
    return Limits(**{k: v for k, v in raw.items() if k in known})


def _row(row: tuple[Any, ...]) -> ClientKey:
    name, prefix, digest, limits, created, revoked = row
    return ClientKey(name, prefix, digest, created, _limits_of(limits), revoked)


class KeyStore:
    """One keys file. Each call opens, does its work in one transaction, and closes."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()

    def exists(self) -> bool:
        return self.path.exists()

    def mtime(self) -> float | None:
        try:
            return os.stat(self.path).st_mtime_ns / 1e9
        except OSError:
            return None

    def _connect(self, create: bool) -> sqlite3.Connection:
        import sqlite3  # loaded once a keys file is opened: a server without keys never loads it

        if create and not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        if create:
            conn.executescript(SCHEMA)
            if conn.execute("SELECT 1 FROM meta WHERE name = 'pepper'").fetchone() is None:
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('pepper', ?)", (secrets.token_hex(32),))
        return conn

    def _pepper(self, conn: sqlite3.Connection) -> bytes:
        row = conn.execute("SELECT value FROM meta WHERE name = 'pepper'").fetchone()
        return bytes.fromhex(row[0])

    def index(self) -> KeyIndex:
        """Every key, for the server; an empty index when the file does not exist yet."""
        if not self.path.exists():
            return EMPTY_INDEX
        conn = self._connect(create=True)
        try:
            pepper = self._pepper(conn)
            rows = conn.execute("SELECT name, prefix, digest, limits, created, revoked FROM keys").fetchall()
        finally:
            conn.close()
        return KeyIndex(pepper, {k.digest: k for k in map(_row, rows)})

    def list(self) -> list[ClientKey]:
        return sorted(self.index().by_digest.values(), key=lambda k: k.name)

    def get(self, name: str) -> ClientKey:
        for key in self.index().by_digest.values():
            if key.name == name:
                return key
        raise KeyNotFound(name)

    def create(self, name: str, limits: Limits, now: float) -> tuple[ClientKey, str]:
        """A new key: the stored record and the clear key, which is never available again."""
        import sqlite3

        check_name(name)
        clear = new_key()
        conn = self._connect(create=True)
        try:
            pepper = self._pepper(conn)
            key = ClientKey(name, clear[: len(KEY_PREFIX) + PREFIX_CHARS], digest_of(pepper, clear), now, limits)
            try:
                conn.execute(
                    "INSERT INTO keys VALUES (?, ?, ?, ?, ?, NULL)",
                    (key.name, key.prefix, key.digest, _limits_json(limits).decode(), now),
                )
            except sqlite3.IntegrityError:
                raise KeyExists(name) from None
        finally:
            conn.close()
        return key, clear

    def update(self, name: str, limits: Limits) -> ClientKey:
        key = self.get(name)
        conn = self._connect(create=True)
        try:
            conn.execute("UPDATE keys SET limits = ? WHERE name = ?", (_limits_json(limits).decode(), name))
        finally:
            conn.close()
        return evolve(key, limits=limits)

    def revoke(self, name: str, now: float) -> ClientKey:
        """Revoked keys stay listed (their usage keeps its name) and answer 401 from then on."""
        key = self.get(name)
        if key.revoked_at is not None:
            return key
        conn = self._connect(create=True)
        try:
            conn.execute("UPDATE keys SET revoked = ? WHERE name = ?", (now, name))
        finally:
            conn.close()
        return evolve(key, revoked_at=now)


__all__ = ["EMPTY_INDEX", "KeyExists", "KeyIndex", "KeyNotFound", "KeySettingError", "KeyStore", "default_path"]
