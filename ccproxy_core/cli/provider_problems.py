"""Why a provider is unusable, said where the user looks: `ccproxy status`.

The server's /health says *that* a provider is unusable (its circuit, its credential counts);
the reasons worth acting on are mostly about files on this machine: an accounts file that does
not exist, that others can read, that does not parse or holds no valid account. `ccproxy
status` runs on the same machine as the daemon, so it reads the running configuration and
those files itself and puts each reason under its provider. Nothing here prints a secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ccproxy_core.accounts.store import (
    AccountsError,
    AccountsFileMissing,
    check_permissions,
    default_accounts_path,
    load_accounts,
)


def accounts_problems(path: Path, provider: str) -> list[str]:
    """What is wrong with an OAuth provider's accounts file (empty when nothing is)."""
    found: list[str] = []
    try:
        creds, skipped = load_accounts(path)
    except AccountsFileMissing:
        return [
            f"{path} does not exist; add an account with `ccproxy auth import --provider {provider}` "
            f"or `ccproxy auth login --provider {provider}`"
        ]
    except AccountsError as exc:
        return [f"{exc}; fix the file (or log in again with `ccproxy auth login --provider {provider}`)"]
    mode = check_permissions(path)
    if mode:
        found.append(mode)
    if not creds:
        found.append(f"{path} holds no usable account" + (f" ({'; '.join(skipped)})" if skipped else ""))
    else:
        found += skipped
    return found


def health_problems(health: Mapping[str, Any]) -> list[str]:
    """Reasons readable from a provider's /health entry alone."""
    found = []
    if health.get("circuit") == "open":
        found.append("circuit open after repeated failures; it is tried again after `breaker.open_seconds`")
    total, available, limited = health.get("credentials"), health.get("available"), health.get("rate_limited")
    if isinstance(total, int) and total and available == 0:
        if limited:
            found.append(f"all {total} credentials are rate limited (`ccproxy auth status` shows until when)")
        else:
            found.append(f"none of its {total} credentials is usable (`ccproxy auth status` shows each one's state)")
    return found


def problems(providers: Sequence[Mapping[str, Any]], config: Any | None) -> dict[str, list[str]]:
    """Provider name -> the reasons it is or may become unusable (only providers with some)."""
    by_name = {p.name: p for p in config.providers} if config is not None else {}
    out: dict[str, list[str]] = {}
    for health in providers:
        name = str(health.get("name"))
        found = health_problems(health)
        configured = by_name.get(name)
        if configured is not None and configured.auth == "oauth":
            path = Path(configured.accounts_path).expanduser() if configured.accounts_path else default_accounts_path()
            found += [p for p in accounts_problems(path, name) if p not in found]
        if found:
            out[name] = found
    return out
