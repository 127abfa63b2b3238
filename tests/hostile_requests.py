"""Hostile HTTP requests for the fuzz test: hypothesis strategies for every endpoint, and their bytes.

A `Plan` says what one request is (endpoint, headers, body, content coding, whether it carries
the proxy key, and at most one framing mutation); `render` turns it into the bytes a raw socket
sends, including framing no HTTP library would produce. Weights lean towards requests that get
far into the proxy (valid bodies for the endpoint, the right key), with hostile parts mixed in.
"""

from __future__ import annotations

import gzip
import zlib
from urllib.parse import quote

import orjson
from attrs import frozen
from hypothesis import strategies as st

from ccproxy_core.server.replies import openai_dialect

KEY = "fuzz-key"

# (method, path) for every route; `{name}` is filled with a generated name (never a real provider's).
ENDPOINTS = [
    ("POST", "/v1/messages"),
    ("POST", "/api/v1/messages"),
    ("POST", "/v1/messages/count_tokens"),
    ("POST", "/api/v1/messages/count_tokens"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/api/v1/chat/completions"),
    ("POST", "/v1/responses"),
    ("POST", "/api/codex/responses"),
    ("GET", "/v1/models"),
    ("GET", "/api/v1/models"),
    ("GET", "/api/codex/v1/models"),
    ("GET", "/health"),
    ("GET", "/status"),
    ("GET", "/status/accounts"),
    ("GET", "/status/accounts/{name}"),
    ("POST", "/status/accounts/{name}/refresh"),
    ("POST", "/status/accounts/{name}/disable"),
    ("GET", "/providers"),
    ("GET", "/providers/{name}"),
    ("POST", "/providers"),
    ("PUT", "/providers/{name}"),
    ("PATCH", "/providers/{name}/toggle"),
    ("DELETE", "/providers/{name}"),
    ("GET", "/usage"),
    ("GET", "/usage/requests"),
    ("GET", "/metrics"),
    ("GET", "/dashboard"),
    ("HEAD", "/"),
    ("GET", "/"),
    ("POST", "/claude/v1/messages"),
    ("POST", "/sdk/v1/chat/completions"),
    ("GET", "/claude/v1/models"),
]
PROXIED = [e for e in ENDPOINTS if e[0] == "POST" and e[1].startswith(("/v1/", "/api/v1/", "/api/codex/"))]
ODD = [("OPTIONS", "/v1/messages"), ("PUT", "/v1/chat/completions"), ("GET", "/%ff"), ("POST", "/v1//messages")]
MODELS = ["claude-sonnet-4-6", "alias", "to-openai", "gpt-4.1", "anthropic,claude-x", "x@openai", "nope,x", ""]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
content = st.one_of(
    st.text(max_size=30),
    json_values,
    st.lists(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "image", "tool_use", "tool_result", "thinking", "bogus"])},
            optional={"text": json_values, "id": st.text(max_size=5), "input": json_values, "content": json_values},
        ),
        max_size=3,
    ),
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", "developer", "bogus"]), "content": content},
    optional={"tool_calls": json_values, "tool_call_id": st.text(max_size=5), "name": json_values},
)
model_request = st.fixed_dictionaries(
    {"model": st.sampled_from(MODELS) | json_values, "messages": st.lists(message, max_size=3) | json_values},
    optional={
        "max_tokens": st.sampled_from([1, 64, 0, -1, 10**12]) | json_values,
        "stream": st.booleans() | json_values,
        "system": content,
        "tools": json_values,
        "tool_choice": json_values,
        "thinking": st.sampled_from([{"type": "enabled", "budget_tokens": 2048}, {"type": "adaptive"}]) | json_values,
        "metadata": json_values,
        "input": content,  # the Responses API's field
        "stop": json_values,
        "temperature": json_values,
    },
)


# Requests each endpoint serves, with optional parts (and one arbitrary extra key) drawn in.
texts = st.text(max_size=40)
anthropic_valid = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["claude-sonnet-4-6", "alias", "to-openai", "claude-haiku-4-5"]),
        "max_tokens": st.integers(1, 4096),
        "messages": st.lists(
            st.fixed_dictionaries(
                {
                    "role": st.just("user"),
                    "content": texts
                    | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": texts}), min_size=1, max_size=2),
                }
            ),
            min_size=1,
            max_size=2,
        ),
    },
    optional={
        "stream": st.booleans(),
        "system": texts,
        "tools": st.just([{"name": "f", "description": "d", "input_schema": {"type": "object", "properties": {}}}]),
        "thinking": st.sampled_from([{"type": "enabled", "budget_tokens": 1024}, {"type": "adaptive"}]),
        "metadata": st.fixed_dictionaries({"user_id": texts}),
        "temperature": st.floats(0, 1),
        "extra": json_values,
    },
)
chat_valid = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["gpt-4.1", "alias", "to-openai", "claude-sonnet-4-6"]),
        "messages": st.lists(
            st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]), "content": texts}),
            min_size=1,
            max_size=3,
        ),
    },
    optional={
        "stream": st.booleans(),
        "max_tokens": st.integers(1, 4096),
        "stream_options": st.just({"include_usage": True}),
        "tools": st.just([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]),
        "reasoning_effort": st.sampled_from(["low", "high"]),
        "extra": json_values,
    },
)
responses_valid = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["gpt-4.1", "alias", "claude-sonnet-4-6"]),
        "input": texts | st.just([{"role": "user", "content": "hi"}]),
    },
    optional={"stream": st.booleans(), "instructions": texts, "max_output_tokens": st.integers(16, 4096)},
)


def valid_body(path: str) -> st.SearchStrategy[bytes]:
    if path.endswith("/chat/completions"):
        return chat_valid.map(orjson.dumps)
    if path.endswith("/responses"):
        return responses_valid.map(orjson.dumps)
    return anthropic_valid.map(orjson.dumps)


def deep_json(levels: int, opener: bytes) -> bytes:
    closer = b"]" if opener == b"[" else b"}"
    inner = b'"x"' if opener == b"[" else b"1"
    if opener == b"{":
        return b'{"a":' * levels + inner + closer * levels
    return opener * levels + inner + closer * levels


bodies = st.one_of(
    model_request.map(orjson.dumps),
    model_request.map(orjson.dumps),
    json_values.map(orjson.dumps),
    st.tuples(model_request, st.integers(100, 1100), st.sampled_from([b"[", b"{"])).map(
        lambda t: orjson.dumps(t[0])[:-1] + (b"," if len(t[0]) else b"") + b'"deep":' + deep_json(t[1], t[2]) + b"}"
    ),
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"",
            b'{"model":"alias","max_tokens":123456789012345678901234567890,"messages":[]}',
            b'{"model":"alias","max_tokens":1e400,"messages":[{"role":"user","content":"\\ud800"}]}',
            b'{"model":"alias","messages":[{"role":"user","content":"hi"}],"max_tokens":1,"model":"to-openai"}',
            b'{"model":"to-openai","max_tokens":8,"messages":[{"role":"user","content":"\xff\xfe"}]}',
            b"\xef\xbb\xbf{}",
        ]
    ),
)
names = st.sampled_from(["nope", "x%20y", "%FF", "..", "a%2Fb", "claude-max", "ü"]) | st.text(
    "abcxyz-_.~", min_size=1, max_size=12
).filter(lambda n: n not in ("anthropic", "openai"))
printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20).map(str.encode)
usual_values = printable | st.sampled_from([b"anthropic", b"openai", b"2023-06-01", b"Bearer " + KEY.encode(), b"gzip"])
hostile_values = st.one_of(
    st.sampled_from([b"caf\xc3\xa9", b"\xff\xfe", b"a\x00b", b"\t x \t"]),
    st.binary(max_size=12).filter(lambda b: b"\r" not in b and b"\n" not in b),
)
header_names = st.sampled_from(
    [
        b"anthropic-version",
        b"anthropic-beta",
        b"x-provider",
        b"x-account-name",
        b"content-type",
        b"accept",
        b"user-agent",
        b"x-stainless-lang",
        b"x-api-key",
        b"authorization",
        b"accept-encoding",
    ]
)
optional_headers = st.one_of(
    st.dictionaries(header_names, usual_values, max_size=3),
    st.dictionaries(header_names, usual_values, max_size=3),
    st.dictionaries(header_names, usual_values | hostile_values, max_size=3),
)
MUTATIONS = [
    "bad-content-length",
    "two-content-lengths",
    "chunked-and-length",
    "bad-chunk",
    "no-host",
    "huge-header",
    "bad-header-name",
    "garbage-request-line",
    "long-request-line",
    "cut-short",
    "expect-unknown",
    "expect-continue",
    "http10",
]


@frozen
class Plan:
    method: str
    path: str
    headers: dict[bytes, bytes]
    body: bytes
    coding: str  # "", gzip, deflate, br, bogus, gzip-broken
    auth: str  # good, bad, none
    chunked: bool
    mutation: str | None

    def openai(self) -> bool:
        """Whether the endpoint asked for speaks OpenAI (what its errors must look like)."""
        return openai_dialect(self.path.split("?")[0], b"anthropic-version" in self.headers)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    method, route = draw(st.sampled_from([*ENDPOINTS, *PROXIED * 4, *ODD]))
    path = route.replace("{name}", quote(draw(names), safe="%"))
    if draw(st.integers(0, 3)) == 0:
        path += "?" + draw(st.sampled_from(["beta=true", "x=%ff", "a&b=c", "=="]))
    with_body = method in ("POST", "PUT", "PATCH") or draw(st.integers(0, 9)) == 0
    return Plan(
        method=method,
        path=path,
        headers=draw(optional_headers),
        body=draw(valid_body(route) | bodies) if with_body else b"",
        coding=draw(st.sampled_from(["", "", "", "", "", "gzip", "deflate", "br", "zstd", "bogus", "gzip-broken"])),
        auth=draw(st.sampled_from(["good", "good", "good", "good", "bad", "none"])),
        chunked=draw(st.integers(0, 4)) == 0,
        mutation=draw(st.sampled_from(MUTATIONS)) if draw(st.integers(0, 5)) == 0 else None,
    )


def encode_body(plan: Plan) -> bytes:
    if plan.coding in ("gzip", "gzip-broken"):
        packed = gzip.compress(plan.body)
        return packed[: len(packed) // 2] + b"\x00junk" if plan.coding == "gzip-broken" else packed
    if plan.coding == "deflate":
        return zlib.compress(plan.body)
    if plan.coding in ("br", "zstd", "bogus"):
        return b"\x8b\x00\x80" + plan.body
    return plan.body


def render(plan: Plan) -> tuple[bytes, bool]:
    """The request's bytes, and whether the client gives up after sending them (half-close)."""
    body = encode_body(plan)
    version = b"HTTP/1.0" if plan.mutation == "http10" else b"HTTP/1.1"
    lines = [plan.method.encode() + b" " + plan.path.encode() + b" " + version]
    if plan.mutation == "garbage-request-line":
        lines = [b"\x16\x03\x01 \xff\xfe GET"]
    elif plan.mutation == "long-request-line":
        lines = [plan.method.encode() + b" " + plan.path.encode() + b"?" + b"q" * 9000 + b" HTTP/1.1"]
    if plan.mutation != "no-host":
        lines.append(b"Host: 127.0.0.1")
    headers = dict(plan.headers)
    if plan.auth == "good":
        headers[b"x-api-key"] = KEY.encode()
    elif plan.auth == "bad":
        headers[b"x-api-key"] = b"wrong"
    if plan.coding:
        headers[b"content-encoding"] = b"gzip" if plan.coding == "gzip-broken" else plan.coding.encode()
    lines += [name + b": " + value for name, value in headers.items()]
    if plan.mutation == "huge-header":
        lines.append(b"X-Huge: " + b"h" * 70_000)
    if plan.mutation == "bad-header-name":
        lines.append(b"Bad Name\x01: 1")
    if plan.mutation == "expect-unknown":
        lines.append(b"Expect: teapot")
    if plan.mutation == "expect-continue":
        lines.append(b"Expect: 100-continue")
    framed = body
    if plan.chunked or plan.mutation in ("chunked-and-length", "bad-chunk"):
        lines.append(b"Transfer-Encoding: chunked")
        size = b"zz" if plan.mutation == "bad-chunk" else b"%x" % len(body)
        framed = (size + b"\r\n" + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    if not (plan.chunked or plan.mutation == "bad-chunk") or plan.mutation == "chunked-and-length":
        length = len(body) + (40 if plan.mutation == "cut-short" else 0)
        lines.append(b"Content-Length: " + (b"1x" if plan.mutation == "bad-content-length" else b"%d" % length))
        if plan.mutation == "two-content-lengths":
            lines.append(b"Content-Length: %d" % (length + 1))
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + framed, plan.mutation == "cut-short"
