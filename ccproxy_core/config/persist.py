"""Where the live provider API's changes go, and how they are written without losing the user's text.

The target is the highest-precedence config file that sets `providers` (the one whose list is in
effect); when no file sets them, the highest-precedence config file; when ccproxy started with no
config file at all, nowhere: the change is live only and the log says so.

A write keeps what the person wrote. The new list is edited into the file's text by `jsonc`
(only changed providers, and in them only changed members, are rewritten), so comments and
`$VAR` references stay, and a value that came from the environment is never written: edits
start from the file's own list, not from the expanded configuration. The previous text is kept
beside the file as `NAME.bak`. Files that ccproxy does not write are refused with the reason:
TOML (no comment-preserving editor here), and files in another program's format (the npm
proxy's `settings.json`, claude-code-router's `config.json`), which that program still reads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from attrs import frozen

from ccproxy_core.config import jsonc
from ccproxy_core.config.load import LoadedConfig, parse_text, read_text
from ccproxy_core.core.wire import JSON
from ccproxy_core.files import atomic_write


class NotWritable(Exception):
    """The providers live in a file ccproxy does not rewrite; the message says what to do."""


@frozen
class ProvidersFile:
    path: Path
    text: str
    providers: tuple[JSON, ...]  # the file's own list, before `$VAR` expansion
    has_list: bool

    def edited(self, new: Sequence[JSON]) -> str:
        """The file's text with its `providers` list turned into `new`."""
        if not self.has_list:
            return jsonc.set_member(self.text, ["providers"], list(new))
        return jsonc.edit_named_list(self.text, "providers", list(self.providers), list(new))

    def write(self, text: str) -> Path:
        """Keep the old text as `NAME.bak`, then replace the file atomically; the backup's path."""
        backup = self.path.with_name(self.path.name + ".bak")
        mode = _mode(self.path)
        atomic_write(backup, self.text.encode(), mode=mode)
        atomic_write(self.path, text.encode(), mode=mode)
        return backup


def _mode(path: Path) -> int:
    try:
        return os.stat(path).st_mode & 0o777 & ~0o077 or 0o600  # never wider than the owner's
    except OSError:
        return 0o600


def locate(loaded: LoadedConfig) -> ProvidersFile | None:
    """The file that API-made provider changes go to, read now; None when there is no config file."""
    path = loaded.providers_file or (loaded.files[-1] if loaded.files else None)
    if path is None:
        return None
    if path.suffix == ".toml":
        raise NotWritable(
            f"providers come from {path}, a TOML file that ccproxy does not rewrite (it would lose its "
            "comments); edit it by hand, or move the providers to a JSON config"
        )
    text = read_text(path)
    raw = parse_text(path, text)
    providers = raw.get("providers")
    from ccproxy_core.config import ccr

    if ccr.is_ccr(raw) or isinstance(providers, dict):
        owner = "claude-code-router" if ccr.is_ccr(raw) else "the npm claude-code-proxy"
        raise NotWritable(
            f"providers come from {path}, written for {owner}, which still reads it; ccproxy does not "
            "rewrite another program's file: edit it by hand, or move the providers to ccproxy's own "
            "config (`ccproxy init --scope project`)"
        )
    if providers is not None and not isinstance(providers, list):
        raise NotWritable(f"{path}: providers: expected a list; fix the file first")
    listed = tuple(p for p in providers or () if isinstance(p, dict))
    return ProvidersFile(path=path, text=text, providers=listed, has_list=providers is not None)
