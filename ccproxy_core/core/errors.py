"""One exception tree for every error ccproxy answers with.

    ProxyError                    500 api_error
    ├── InvalidRequest            400 invalid_request_error
    ├── AuthenticationFailed      401 authentication_error
    ├── PermissionDenied          403 permission_error
    │   └── CredentialsRejected   403 permission_error      (the provider refused every credential)
    ├── NotFound                  404 not_found_error
    ├── RequestTooLarge           413 request_too_large
    ├── RateLimited               429 rate_limit_error      (carries retry_after)
    ├── UpstreamUnreachable       502 api_error             (connect/DNS/TLS failure)
    ├── ServiceUnavailable        503 api_error             (no usable credential)
    ├── UpstreamTimeout           504 timeout_error
    ├── Overloaded                529 overloaded_error
    └── UpstreamError             any status                (an error answer from a provider)

`AttemptFailed` is not an answer but a control-flow signal: one provider could not serve a
request before anything reached the client, carrying what the client should get if no other
provider can.

Each class knows its HTTP status (`http_status`) and its Anthropic error type (`type`); a
subclass sets the class-level defaults `_status` and `_type`. The two wire dialects are
rendered here and nowhere else (`anthropic_body`, `openai_status_and_body`). Overload is one
fact with two spellings, 529 for Anthropic clients and 503 for OpenAI ones:
`status_for_dialect` is the only place that maps one to the other. Foreign exceptions
(aiohttp, asyncio timeouts) are mapped to these at the upstream boundary with
``raise ... from``, so a handler never needs to know about them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from ccproxy_core.core.wire import JSON

if TYPE_CHECKING:
    from aiohttp import web

    from ccproxy_core.core.outcome import Outcome


# Anthropic error types by HTTP status (docs.claude.com/en/api/errors); other 4xx are
# invalid_request_error, other 5xx api_error.
_ANTHROPIC_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

# The reverse, for errors that arrive with a type and no status (an in-band stream `error`);
# 503 and 529 both say overloaded, and `status_for_dialect` picks the Anthropic one.
_STATUS_BY_ANTHROPIC_TYPE: dict[str, int] = {t: s for s, t in _ANTHROPIC_TYPE_BY_STATUS.items()}

# What an OpenAI client gets for each Anthropic error type: (type, code).
_OPENAI_BY_TYPE: dict[str, tuple[str, str | None]] = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("invalid_request_error", "invalid_api_key"),
    "billing_error": ("insufficient_quota", "insufficient_quota"),
    "permission_error": ("permission_error", None),
    "not_found_error": ("invalid_request_error", "not_found"),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit_error": ("rate_limit_error", "rate_limit_exceeded"),
    "api_error": ("server_error", None),
    "timeout_error": ("server_error", "timeout"),
    "overloaded_error": ("server_error", "overloaded"),
}

Dialect = Literal["anthropic", "openai"]


def status_for_dialect(status: int, dialect: Dialect) -> int:
    """The status a client of `dialect` knows for `status`: overload is 529 for Anthropic
    clients (what makes Claude Code retry) and 503 for OpenAI ones (which do not know 529)."""
    if dialect == "openai":
        return 503 if status == 529 else status
    return 529 if status == 503 else status


def anthropic_type_for_status(status: int) -> str:
    """The Anthropic error type that goes with an HTTP status."""
    if status in _ANTHROPIC_TYPE_BY_STATUS:
        return _ANTHROPIC_TYPE_BY_STATUS[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def status_for_anthropic_type(error_type: str) -> int:
    """The HTTP status an Anthropic error type stands for (500 for a type this code does not know)."""
    return status_for_dialect(_STATUS_BY_ANTHROPIC_TYPE.get(error_type, 500), "anthropic")


class ProxyError(Exception):
    """Base of every error ccproxy reports to a client."""

    _status: int = 500  # class-level defaults; UpstreamError sets them per instance
    _type: str = "api_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def http_status(self) -> int:
        return self._status

    @property
    def type(self) -> str:
        return self._type


class InvalidRequest(ProxyError):
    _status = 400
    _type = "invalid_request_error"


class UnsupportedEncoding(InvalidRequest):
    """A request body in a content coding ccproxy cannot read (HTTP 415)."""

    _status = 415


class ExpectationFailed(InvalidRequest):
    """An `Expect` header other than `100-continue` (HTTP 417)."""

    _status = 417


class AuthenticationFailed(ProxyError):
    _status = 401
    _type = "authentication_error"


class PermissionDenied(ProxyError):
    _status = 403
    _type = "permission_error"


class CredentialsRejected(PermissionDenied):
    """The provider refused every credential ccproxy holds for it: an operator must act."""


class NotFound(ProxyError):
    _status = 404
    _type = "not_found_error"


class RequestTooLarge(ProxyError):
    _status = 413
    _type = "request_too_large"


class RateLimited(ProxyError):
    _status = 429
    _type = "rate_limit_error"

    def __init__(
        self, message: str, *, retry_after: float | None = None, headers: dict[str, str] | None = None
    ) -> None:
        merged = dict(headers or {})
        if retry_after is not None:
            merged["retry-after"] = str(max(1, int(retry_after + 0.999)))
        super().__init__(message, headers=merged)
        self.retry_after = retry_after


class UpstreamUnreachable(ProxyError):
    _status = 502
    _type = "api_error"


class ServiceUnavailable(ProxyError):
    _status = 503
    _type = "api_error"


class UpstreamTimeout(ProxyError):
    _status = 504
    _type = "timeout_error"


class Overloaded(ProxyError):
    _status = 529
    _type = "overloaded_error"


class UpstreamError(ProxyError):
    """An error answer from a provider, kept with the provider's own status and type."""

    def __init__(self, status: int, error_type: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, headers=headers)
        self._status = status
        self._type = error_type

    @classmethod
    def from_anthropic(cls, status: int, body: Any, headers: dict[str, str] | None = None) -> UpstreamError:
        """Read an Anthropic error body (`{"type":"error","error":{type,message}}`)."""
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            etype = str(err.get("type") or anthropic_type_for_status(status))
            message = str(err.get("message") or etype)
        else:
            etype, message = anthropic_type_for_status(status), _text_of(body, status)
        return cls(status, etype, message, headers=headers)

    @classmethod
    def from_openai(cls, status: int, body: Any, headers: dict[str, str] | None = None) -> UpstreamError:
        """Read an OpenAI-style error body (`{"error":{message,type,code}}`) into Anthropic terms."""
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("code") or err.get("type") or "error")
        elif isinstance(err, str):
            message = err
        else:
            message = _text_of(body, status)
        etype = anthropic_type_for_status(status)
        return cls(status_for_dialect(status, "anthropic"), etype, message, headers=headers)


def _text_of(body: Any, status: int) -> str:
    if isinstance(body, (bytes, bytearray)):
        text = bytes(body[:500]).decode("utf-8", "replace").strip()
    elif isinstance(body, str):
        text = body[:500].strip()
    else:
        text = ""
    return text or f"upstream answered HTTP {status}"


class AttemptFailed(Exception):
    """A provider could not serve this request and nothing reached the client yet.

    `outcome` is what the provider's last answer meant (None when no call was made: circuit
    open, bucket empty, no usable credential); the breaker reads it, and unless `retryable` is
    given, so does the provider failover (`Outcome.next_provider`)."""

    def __init__(
        self,
        error: ProxyError,
        *,
        outcome: Outcome | None = None,
        reply: web.StreamResponse | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.outcome = outcome
        self.reply = reply  # the provider's own answer (a web.Response), passed on if nothing else works
        self.retryable = retryable if retryable is not None else outcome is None or outcome.next_provider


def anthropic_body(err: ProxyError, request_id: str | None = None) -> JSON:
    """The error as an Anthropic client expects it."""
    body: JSON = {"type": "error", "error": {"type": err.type, "message": err.message}}
    if request_id:
        body["request_id"] = request_id
    return body


def openai_status_and_body(err: ProxyError) -> tuple[int, JSON]:
    """The error as an OpenAI client expects it: status and `{"error":{message,type,param,code}}`."""
    otype, code = _OPENAI_BY_TYPE.get(err.type, ("server_error", None))
    # overload is 503 to an OpenAI client whatever status carried it (a stalled stream is 504)
    status = status_for_dialect(529 if err.type == "overloaded_error" else err.http_status, "openai")
    return status, {"error": {"message": err.message, "type": otype, "param": None, "code": code}}
