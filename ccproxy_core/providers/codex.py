"""The scope rule of a `kind: "codex"` provider (ChatGPT subscription accounts), as one fact.

A codex provider serves OpenAI Responses requests only, passed through as the client sent them
with the account's credential added (Authorization: Bearer, chatgpt-account-id) and nothing
else: ccproxy neither injects Codex's instructions nor imitates its headers, so a Messages or
Chat Completions request has nothing it could honestly send there. Such a request is refused
with a 400 that says why and which kinds can serve it; a fallback provider that can is tried
first (the handlers raise `refusal` inside `AttemptFailed`).
"""

from __future__ import annotations

from typing import Literal

from ccproxy_core.core.errors import InvalidRequest

ClientDialect = Literal["messages", "chat"]

_CLIENT = {
    "messages": "an Anthropic Messages request (/v1/messages)",
    "chat": "a Chat Completions request (/v1/chat/completions)",
}
# The kinds that take each client dialect, translated or not.
SERVED_BY = {"messages": "anthropic, openai or responses", "chat": "anthropic, openai or responses"}


def refusal(provider: str, client: ClientDialect) -> InvalidRequest:
    """The 400 for a Messages or Chat client routed to codex provider `provider`."""
    return InvalidRequest(
        f"provider {provider!r} is kind 'codex' (ChatGPT accounts), which serves only OpenAI Responses "
        f"requests (POST /v1/responses, as Codex CLI sends them) passed through unchanged; {_CLIENT[client]} "
        f"cannot be sent there. Route this model to a provider of kind {SERVED_BY[client]}, or use a "
        "Responses client."
    )
