"""core.headers: what of the provider's response headers reaches the client."""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from ccproxy_core.core.headers import RESPONSE_DROP, client_response_headers


def proxy(pairs: list[tuple[str, str]]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def test_end_to_end_headers_pass_as_sent_in_order_spelling_and_repeats() -> None:
    """Request ids and rate-limit headers pass; a name given twice passes twice, in its place."""
    sent = [
        ("Content-Type", "application/json"),
        ("request-id", "req_1"),
        ("Link", "<a>; rel=x"),
        ("anthropic-ratelimit-requests-remaining", "9"),
        ("Link", "<b>; rel=y"),
    ]
    assert list(client_response_headers(proxy(sent)).items()) == sent


def test_hop_by_hop_framing_and_connection_listed_headers_are_dropped() -> None:
    """Every RESPONSE_DROP name in any spelling goes, and so does each header `Connection` names."""
    sent = [(name.title(), "x") for name in sorted(RESPONSE_DROP)]
    sent += [("Connection", "keep-alive, X-Hop"), ("x-hop", "1"), ("connection", "x-other"), ("X-Other", "2")]
    sent += [("x-kept", "3")]
    assert list(client_response_headers(proxy(sent)).items()) == [("x-kept", "3")]


def test_a_header_set_over_them_replaces_the_providers_whatever_its_spelling() -> None:
    """The stream's own Content-Type replaces a provider's `Content-Type`, not joins it."""
    headers = client_response_headers(proxy([("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]))
    headers.update({"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"})
    assert headers.getall("content-type") == ["text/event-stream; charset=utf-8"]
    assert headers.getall("cache-control") == ["no-cache"]


def test_the_providers_headers_are_not_changed() -> None:
    """The answer's own headers stay as they came (an error path may still read them)."""
    upstream = proxy([("Connection", "close"), ("request-id", "req_1")])
    client_response_headers(upstream)
    assert list(upstream.items()) == [("Connection", "close"), ("request-id", "req_1")]
