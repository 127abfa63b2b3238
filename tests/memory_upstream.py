"""An in-memory `Upstream`: the provider side of failover, pool and breaker tests, without sockets.

Like httpx's `MockTransport`, it answers each `send` from a script: a `Canned` answer (status,
headers, body or a list of body chunks), or an exception to raise (the `ProxyError`s the real
`Http1Upstream` raises for transport failures). `MemoryUpstream.script` maps the credential
that was sent (x-api-key or bearer token) to its answers, consumed in order, the last one
repeated; `sent` records every call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from attrs import define, field, frozen
from multidict import CIMultiDict, CIMultiDictProxy

from ccproxy_core.config.model import LimitsConfig
from ccproxy_core.core.errors import ProxyError


@frozen
class Canned:
    status: int = 200
    body: bytes | list[bytes] = b"{}"
    headers: Mapping[str, str] = field(factory=dict)
    content_type: str = "application/json"


Script = Canned | ProxyError


@frozen
class Sent:
    url: str
    headers: Mapping[str, str]
    body: bytes
    stream: bool

    @property
    def credential(self) -> str:
        auth = self.headers.get("authorization", "")
        return self.headers.get("x-api-key") or auth.removeprefix("Bearer ")


class MemoryAnswer:
    def __init__(self, canned: Canned) -> None:
        self.status = canned.status
        headers = CIMultiDict(canned.headers)
        headers.setdefault("content-type", canned.content_type)
        self.headers: Mapping[str, str] = CIMultiDictProxy(headers)
        self.content_type = canned.content_type
        self._chunks = list(canned.body) if isinstance(canned.body, list) else [canned.body]
        self.closed = False

    async def read(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks = []
        return data

    async def readany(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""

    def close(self) -> None:
        self.closed = True

    def release(self) -> None:
        self.closed = True


@define
class MemoryUpstream:
    name: str
    base_url: str
    limits: LimitsConfig
    script: dict[str, list[Script]] = field(factory=dict)  # credential -> answers in order
    default: Script = field(factory=Canned)
    sent: list[Sent] = field(factory=list)
    answers: list[MemoryAnswer] = field(factory=list)

    async def send(self, url: str, headers: Mapping[str, str], body: bytes, *, stream: bool) -> MemoryAnswer:
        sent = Sent(url, dict(headers), body, stream)
        self.sent.append(sent)
        queue = self.script.get(sent.credential)
        step = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else self.default
        if isinstance(step, ProxyError):
            raise step
        answer = MemoryAnswer(step)
        self.answers.append(answer)
        return answer

    async def close(self) -> None:
        pass


class MemoryUpstreams:
    """The factory `create_app(..., upstreams=)` takes: one `MemoryUpstream` per provider name."""

    def __init__(self) -> None:
        self.by_name: dict[str, MemoryUpstream] = {}

    def __call__(self, name: str, base_url: str, limits: LimitsConfig) -> MemoryUpstream:
        upstream = self.by_name.get(name)
        if upstream is None:
            upstream = self.by_name[name] = MemoryUpstream(name, base_url, limits)
        return upstream

    def __getitem__(self, name: str) -> MemoryUpstream:
        return self.by_name[name]


def anthropic_message(text: str = "hi") -> bytes:
    doc: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    return orjson.dumps(doc)
