"""The model names Claude Code accepts for `--model`, as listed by `GET /claude/v1/models`.

The aliases are the CLI's own (`claude --help`: "an alias for the latest model ... or a
model's full name"); the CLI resolves them to the newest model of each family for the
account in use. The full names are those the CLI version tested here (2.1.332) knows;
any other full name is passed to the CLI as well, which answers for itself.
"""

from __future__ import annotations

from ccproxy_core.core.wire import JSON

ALIASES: tuple[str, ...] = ("default", "sonnet", "opus", "haiku", "fable", "best", "sonnet[1m]", "opus[1m]", "opusplan")
FULL_NAMES: tuple[str, ...] = (
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "claude-fable-5-2",
    "claude-opus-4-8",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "claude-opus-4-1",
    "claude-sonnet-4-5",
)
OWNER = "claude-code"


def model_ids() -> tuple[str, ...]:
    return ALIASES + FULL_NAMES


def cli_model(requested: str) -> str | None:
    """The `--model` value for a requested model: None lets the CLI pick its default."""
    return None if requested in ("", "default") else requested


def anthropic_list() -> JSON:
    data: list[JSON] = [
        {"type": "model", "id": mid, "display_name": mid, "created_at": "2025-01-01T00:00:00Z"} for mid in model_ids()
    ]
    return {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}


def openai_list(created: int) -> JSON:
    return {
        "object": "list",
        "data": [{"id": mid, "object": "model", "created": created, "owned_by": OWNER} for mid in model_ids()],
    }
