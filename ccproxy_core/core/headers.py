"""Every fact about HTTP headers that ccproxy relies on, in one place.

What goes upstream: every end-to-end header the client sent (`anthropic-version`,
`anthropic-beta`, `user-agent`, `x-stainless-*`, ...) unchanged, minus hop-by-hop headers,
minus ccproxy's own control headers, minus the client's credentials when the provider has its
own. What comes back: the provider's headers (request ids, rate-limit headers) minus
hop-by-hop and framing headers, which aiohttp sets for the response it writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from multidict import CIMultiDict, CIMultiDictProxy, istr

# RFC 9110 §7.6.1 connection-specific headers, plus the framing headers that the proxy
# recomputes for the message it sends.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)

# Headers the client uses to authenticate (to the proxy or, in transparent mode, upstream).
CREDENTIAL_HEADERS = frozenset({"x-api-key", "authorization"})

# Headers addressed to ccproxy itself; never forwarded.
X_PROVIDER = "x-provider"
X_ACCOUNT_NAME = "x-account-name"
CONTROL_HEADERS = frozenset({X_PROVIDER, X_ACCOUNT_NAME})

# Set on every response that went through the router.
X_ROUTE = "x-ccproxy-route"
# Names the hosted tools (web_search, ...) a Responses request carried that no provider here can run.
X_DROPPED_TOOLS = "x-ccproxy-dropped-tools"

# A compressed upstream stream would have to be decoded before an event could be forwarded.
ACCEPT_ENCODING = "accept-encoding"
CONTENT_ENCODING = "content-encoding"
IDENTITY = "identity"

# What a client must not receive from upstream verbatim: aiohttp frames the response itself,
# and the upstream session decodes any content-encoding, so the body no longer has one.
RESPONSE_DROP = HOP_BY_HOP | {CONTENT_ENCODING, "date", "server"}
# The same names as multidict keys that carry their folded form, so a lookup folds nothing.
_RESPONSE_DROP_NAMES = tuple(istr(name) for name in sorted(RESPONSE_DROP))
CONNECTION = istr("connection")

STREAM_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}

ANTHROPIC_VERSION = "anthropic-version"
ANTHROPIC_VERSION_DEFAULT = "2023-06-01"
ANTHROPIC_BETA = "anthropic-beta"
OAUTH_BETA = "oauth-2025-04-20"
# A ChatGPT account (kind codex) goes upstream as its bearer token and this header.
CHATGPT_ACCOUNT_ID = "chatgpt-account-id"


def connection_tokens(value: str) -> set[str]:
    """The options a `Connection` header value lists, lower-case (`close`, `keep-alive`, header names)."""
    return {token.strip().lower() for token in value.split(",")}


def _connection_listed(headers: Iterable[tuple[str, str]]) -> frozenset[str]:
    listed: set[str] = set()
    for name, value in headers:
        if len(name) == 10 and name.lower() == "connection":  # one length test per header on the happy path
            listed |= connection_tokens(value)
    return frozenset(listed)


# What never goes upstream from a passthrough client, precomputed for either credential rule.
# The body goes upstream as read_json left it, already inflated: its coding no longer applies.
_REQUEST_DROP = HOP_BY_HOP | CONTROL_HEADERS | {ACCEPT_ENCODING, CONTENT_ENCODING}
_REQUEST_DROP_CREDENTIALS = _REQUEST_DROP | CREDENTIAL_HEADERS


def upstream_request_headers(client: Iterable[tuple[str, str]], *, keep_credentials: bool) -> dict[str, str]:
    """The client's end-to-end headers, as they go to an Anthropic-speaking provider."""
    items = client if isinstance(client, (list, tuple)) else list(client)
    drop = _REQUEST_DROP if keep_credentials else _REQUEST_DROP_CREDENTIALS
    listed = _connection_listed(items)
    if listed:
        drop = drop | listed
    out: dict[str, str] = {}
    for name, value in items:
        low = name.lower()
        if low in drop:
            continue
        out[low] = f"{out[low]}, {value}" if low in out else value
    out[ACCEPT_ENCODING] = IDENTITY
    return out


def client_response_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The provider's response headers as they go back to the client: as sent (spelling, order,
    repeats), minus hop-by-hop and framing headers and those its `Connection` header names.

    A case-insensitive multidict, so a header ccproxy then sets (`update`: the stream's
    Content-Type, the route) replaces the provider's whatever its spelling, instead of going out
    next to it: a provider that writes `Content-Type` would otherwise get a second one. Copied in
    C and pruned by precomputed names, it costs a quarter of a filter in Python, and aiohttp
    copies it on as it is (one more dict would have every name folded to lower case again).
    """
    headers = upstream.copy()
    for name in _RESPONSE_DROP_NAMES:
        headers.popall(name, None)
    if CONNECTION in upstream:
        for listed in connection_tokens(",".join(upstream.getall(CONNECTION))):
            headers.popall(listed, None)
    return headers


# What an error answer keeps of the provider's headers when ccproxy re-renders it.
ERROR_HEADERS = frozenset({"retry-after", "retry-after-ms", "x-should-retry", "request-id", "x-request-id"})


def error_headers(upstream: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The provider's retry advice and request id, for an error ccproxy writes itself."""
    return {
        name.lower(): value
        for name, value in upstream
        if name.lower() in ERROR_HEADERS or name.lower().startswith("anthropic-ratelimit-")
    }


def merge_beta(existing: str | None, *required: str) -> str:
    """The client's `anthropic-beta` tags with the required ones added once, order kept."""
    tags = [t.strip() for t in (existing or "").split(",") if t.strip()]
    for tag in required:
        if tag not in tags:
            tags.append(tag)
    return ",".join(tags)


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer` header (the scheme word is case-insensitive)."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
