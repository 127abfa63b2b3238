"""What every token endpoint shares (accounts/grant.py): reading a grant's answer and what a refusal means."""

from __future__ import annotations

from typing import Any

import pytest

from ccproxy_core.accounts.grant import (
    InvalidGrant,
    OAuthError,
    TransientRefreshError,
    code_grant,
    expires_in,
    next_refresh,
    oauth_error,
    refusal,
)
from ccproxy_core.config.model import OAuthSettings, OpenAIOAuthSettings

DEAD = frozenset({"invalid_grant", "refresh_token_reused"})


@pytest.mark.parametrize(
    ("status", "code", "message", "error", "text"),
    [
        (400, "invalid_grant", "gone", InvalidGrant, "E answered HTTP 400: gone"),
        (401, "refresh_token_reused", "", InvalidGrant, "E answered HTTP 401"),
        (503, "invalid_grant", "", InvalidGrant, "E answered HTTP 503"),  # a dead grant wins over the status
        (500, "server_error", "boom", TransientRefreshError, "E answered HTTP 500: boom"),
        (408, "", "", TransientRefreshError, "E answered HTTP 408"),
        (429, "slow_down", "", TransientRefreshError, "E answered HTTP 429"),
        (200, "", "", TransientRefreshError, "E answered 200 without an access_token"),
        (403, "unauthorized_client", "no", OAuthError, "E answered HTTP 403: no"),
    ],
)
def test_a_refusal_means_one_thing(status: int, code: str, message: str, error: type[Exception], text: str) -> None:
    """A dead code is InvalidGrant, 5xx/408/429 and a 200 without tokens transient, the rest OAuthError."""
    found = refusal("E", status, code, message, dead=DEAD)
    assert type(found) is error
    assert str(found) == text


@pytest.mark.parametrize(
    ("doc", "seconds"),
    [({"expires_in": 3600}, 3600.0), ({"expires_in": 1.5}, 1.5), ({"expires_in": 0}, 0.0)]
    + [({"expires_in": v}, None) for v in (True, "3600", None)]
    + [({}, None)],
)
def test_expires_in_is_read_only_as_a_number(doc: dict[str, Any], seconds: float | None) -> None:
    """expires_in counts when it is a number (0 too), never as a bool or a string."""
    assert expires_in(doc) == seconds


@pytest.mark.parametrize(
    ("doc", "kept"),
    [({"refresh_token": "new"}, "new"), ({"refresh_token": ""}, "used"), ({"refresh_token": 7}, "used"), ({}, "used")],
)
def test_the_refresh_token_issued_replaces_the_one_used(doc: dict[str, Any], kept: str) -> None:
    """A refresh token in the answer is kept; without one (or an empty one) the one used stays."""
    assert next_refresh(doc, "used") == kept


@pytest.mark.parametrize(
    ("doc", "raw", "found"),
    [
        (
            {"error": "invalid_grant", "error_description": "already used"},
            b"",
            ("invalid_grant", "invalid_grant already used"),
        ),
        ({"error_description": "just this"}, b"", ("", "just this")),
        (
            {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}},
            b"",
            ("rate_limit_error", "slow"),
        ),
        (None, b"  <html>Bad gateway</html> ", ("", "<html>Bad gateway</html>")),
    ],
)
def test_oauth_error_reads_rfc6749_and_anthropic_bodies(doc: Any, raw: bytes, found: tuple[str, str]) -> None:
    """The code and message come from an RFC 6749 body, an Anthropic-style one, or the raw text."""
    assert oauth_error(doc, raw) == found


@pytest.mark.parametrize("settings", [OAuthSettings(), OpenAIOAuthSettings()])
def test_code_grant_carries_the_settings_client(settings: OAuthSettings | OpenAIOAuthSettings) -> None:
    """The code grant names the client and redirect of the endpoint's own settings, in the order sent."""
    assert list(code_grant(settings, "c", "v").items()) == [
        ("grant_type", "authorization_code"),
        ("code", "c"),
        ("redirect_uri", settings.redirect_uri),
        ("client_id", settings.client_id),
        ("code_verifier", "v"),
    ]
