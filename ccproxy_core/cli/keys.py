"""`ccproxy keys`: create, list, show, update and revoke client keys.

With a server running (found through its pidfile, as `ccproxy status` finds it) the command goes
through its admin API, with the admin key from the server's config, so the server holds the
change from its next request; without one it writes the keys file itself (the server re-reads
the file when it changes anyway). `create` prints the new key once, on a line of its own; no
other command or output ever shows more than its masked prefix.

The command's flags are in cli/keys_args.py, which every `ccproxy` run loads to build its parser:
this module (the keys store, sqlite3, urllib) is loaded only when a `keys` command runs.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import orjson

from ccproxy_core.keys.model import KeySettingError, Limits, apply_changes, parse_budgets
from ccproxy_core.keys.store import KeyExists, KeyNotFound, KeyStore


class KeysError(Exception):
    """One line for the user."""


def changes_of(args: argparse.Namespace) -> dict[str, Any]:
    """The admin API's JSON fields for the flags given."""
    out: dict[str, Any] = {}
    if args.budget_usd:
        out["budget_usd"] = parse_budgets(args.budget_usd)
    for field in ("rpm", "tpm", "concurrency", "models", "providers", "expires"):
        value = getattr(args, field)
        if value is not None:
            out[field] = value
    return out


# --- through the server, or the file --------------------------------------------------------------


class Server:
    def __init__(self, url: str, apikey: str, timeout: float = 10.0) -> None:
        self.url, self.apikey, self.timeout = url.rstrip("/"), apikey, timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else orjson.dumps(body)
        headers = {"x-api-key": self.apikey, "content-type": "application/json"}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=self.timeout) as resp:
                return orjson.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                message = orjson.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {exc.code}"
            raise KeysError(f"the server at {self.url} refused: {message}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise KeysError(f"cannot reach the server at {self.url}: {exc}") from None


def via_server(server: Server, action: str, name: str | None, changes: dict[str, Any]) -> Any:
    path = "/admin/keys" if name is None else f"/admin/keys/{urllib.parse.quote(name, safe='')}"
    if action == "create":
        return server.call("POST", "/admin/keys", {"name": name, **changes})
    if action == "list":
        return server.call("GET", path)
    if action == "show":
        return server.call("GET", path)
    if action == "update":
        return server.call("PATCH", path, changes)
    return server.call("DELETE", path)


def via_file(store: KeyStore, action: str, name: str | None, changes: dict[str, Any]) -> Any:
    now = time.time()
    try:
        if action == "create":
            assert name is not None
            key, clear = store.create(name, apply_changes(Limits(), changes, now), now)
            return {"api_key": clear, **key.to_json(now)}
        if action == "list":
            return {"keys": [k.to_json(now) for k in store.list()]}
        assert name is not None
        if action == "show":
            return store.get(name).to_json(now)
        if action == "update":
            return store.update(name, apply_changes(store.get(name).limits, changes, now)).to_json(now)
        return store.revoke(name, now).to_json(now)
    except (KeyNotFound, KeyExists, KeySettingError) as exc:
        raise KeysError(str(exc).strip("'\"")) from None


def render(action: str, doc: Any) -> str:
    if action == "list":
        rows = [["NAME", "KEY", "STATE", "LIMITS"]]
        rows += [[k["name"], k["key"], k["state"], _limits_text(k)] for k in doc["keys"]]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)), r[3]]) for r in rows)
    lines = [f"{doc['name']}  {doc['key']}  {doc['state']}  {_limits_text(doc)}"]
    if "spent_usd" in doc:
        lines.append(f"spent: ${doc['spent_usd']['day']:.4f} today, ${doc['spent_usd']['month']:.4f} this month")
    if action == "create":
        lines.append("the key (shown once, keep it now):")
        lines.append(doc["api_key"])
    return "\n".join(lines)


def _limits_text(doc: dict[str, Any]) -> str:
    parts = [f"budget {w} ${v:g}" for w, v in doc["budget_usd"].items() if v is not None]
    parts += [f"{f} {doc[f]}" for f in ("rpm", "tpm", "concurrency") if doc[f] is not None]
    parts += [f"{f} {','.join(doc[f])}" for f in ("models", "providers") if doc[f]]
    if doc["expires"]:
        parts.append(f"expires {doc['expires']}")
    return "; ".join(parts) or "no limits"


def run(
    action: str, name: str | None, changes: dict[str, Any], *, as_json: bool, server: Server | None, store: KeyStore
) -> int:
    try:
        if server is not None:
            doc = via_server(server, action, name, changes)
        else:
            doc = via_file(store, action, name, changes)
    except KeysError as exc:
        print(f"ccproxy keys: {exc}", file=sys.stderr)
        return 1
    print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() if as_json else render(action, doc))
    return 0


def command(args: argparse.Namespace) -> int:
    """`ccproxy keys ACTION ...` as parsed by cli/keys_args.py."""
    from ccproxy_core.cli import daemon
    from ccproxy_core.config.load import load

    try:
        changes = changes_of(args) if args.action in ("create", "update") else {}
    except KeySettingError as exc:
        print(f"ccproxy keys: {exc}", file=sys.stderr)
        return 2
    info = daemon.running()
    server = None
    if info is not None:
        config = load(config_file=args.config).config if args.config else daemon.config_of(info)
        if not config.apikey:
            print(
                f"ccproxy keys: a server runs at {info.url} but its config has no apikey (the admin key); "
                "writing the keys file, which it re-reads within a second",
                file=sys.stderr,
            )
        else:
            server = Server(info.url, config.apikey)
    return run(args.action, getattr(args, "name", None), changes, as_json=args.json, server=server, store=KeyStore())
