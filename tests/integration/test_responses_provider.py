"""Issue 16: a `responses` provider (the OpenAI Responses API) behind ccproxy, Responses clients passed through.

The fake provider answers like the Responses API: the event sequences Codex CLI accepts
(tests/fixtures/codex/*.response.sse) and the `response` objects they end with. What the
official openai SDK sends must reach it byte for byte but `model`, and what it answers must
reach the SDK unchanged, event by event as it is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from tests.conftest import ProxyFactory
from tests.fakes import FIXTURES, FakeUpstream, Reply, Stream, json_reply

JSON = dict[str, Any]
ALIAS = "my-model"  # what the client asks for; the route sends it as UPSTREAM_MODEL
UPSTREAM_MODEL = "gpt-5"
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "exec_command",
        "description": "Run a shell command",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
        "strict": False,
    }
]


def codex_events(name: str) -> list[bytes]:
    """A Responses event stream Codex accepts, cut into its events (each with its blank line)."""
    raw = (FIXTURES / "codex" / f"{name}.response.sse").read_bytes()
    return [part + b"\n\n" for part in raw.split(b"\n\n") if part.strip()]


def final_response(name: str) -> JSON:
    """The `response` object a recorded stream ends with (what the non-streaming API answers)."""
    last = codex_events(name)[-1]
    data = next(line for line in last.splitlines() if line.startswith(b"data: "))[6:]
    response: JSON = orjson.loads(data)["response"]
    return response


def provider_config(fake: FakeUpstream, **extra: Any) -> JSON:
    return {
        "providers": [
            {"name": "oai", "kind": "responses", "api_base_url": fake.url + "/v1", "api_key": "sk-upstream", **extra}
        ],
        "routes": {"default": {"provider": "oai", "model": UPSTREAM_MODEL}},
    }


@pytest.fixture
async def proxy(make_proxy: ProxyFactory, fake: FakeUpstream) -> str:
    return await make_proxy(provider_config(fake))


Sent = list[bytes]


@pytest.fixture
async def sdk() -> AsyncIterator[Callable[[str], tuple[openai.AsyncOpenAI, Sent]]]:
    """The official client for a proxy URL, and the request bodies it sent (as bytes)."""
    made: list[openai.AsyncOpenAI] = []

    def make(base_url: str) -> tuple[openai.AsyncOpenAI, Sent]:
        sent: Sent = []

        async def keep(request: Any) -> None:
            sent.append(request.content)

        http = openai.DefaultAsyncHttpxClient(event_hooks={"request": [keep]})
        made.append(openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="sk-client", max_retries=0, http_client=http))
        return made[-1], sent

    yield make
    for client in made:
        await client.close()


def but_model(raw: bytes) -> bytes:
    """What the provider must receive for a body the client sent: the same bytes, `model` rewritten."""
    spelled = orjson.dumps(ALIAS)
    assert raw.count(spelled) == 1
    return raw.replace(spelled, orjson.dumps(UPSTREAM_MODEL))


async def test_create_passes_the_body_through_but_model(sdk: Any, proxy: str, fake: FakeUpstream) -> None:
    """responses.create reaches the provider byte for byte but `model`, with the provider's key; its answer comes back."""
    fake.default = Reply(body=orjson.dumps(final_response("exec-shell-0002")))
    client, sent = sdk(proxy)
    answer = await client.responses.create(
        model=ALIAS,
        input=[{"role": "user", "content": "Run echo and tell me: café ✓"}],
        tools=TOOLS,
        reasoning={"effort": "low", "summary": "auto"},
        include=["reasoning.encrypted_content"],
        store=False,
        temperature=0.5,
    )
    assert answer.output_text == final_response("exec-shell-0002")["output"][0]["content"][0]["text"]
    got = fake.requests[0]
    assert got.path == "/v1/responses"
    assert got.body == but_model(sent[0])
    assert got.headers["authorization"] == "Bearer sk-upstream"


async def test_odd_spacing_and_escapes_survive(proxy: str, fake: FakeUpstream) -> None:
    """Spacing, \\u escapes, number spellings and a nested `model` key the client wrote are kept exactly."""
    fake.default = Reply(body=orjson.dumps(final_response("exec-shell-0002")))
    raw = (
        b'{ "input" : [{"role":"user","content":"caf\\u00e9 1.0e0"}],\n'
        b'  "metadata": {"model": "my-model"},\t"model" :  "my-model" , "top_p": 1.0 }'
    )
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy + "/v1/responses", data=raw, headers={"content-type": "application/json"}) as r:
            assert r.status == 200, await r.text()
    assert fake.requests[0].body == raw.replace(b'"model" :  "my-model"', b'"model" :  "gpt-5"')


async def test_stream_reaches_the_sdk_unchanged(sdk: Any, proxy: str, fake: FakeUpstream) -> None:
    """responses.stream gets the provider's events, the raw bytes identical, and the SDK assembles the call."""
    events = codex_events("exec-shell-0001")
    fake.default = Stream(events)
    client, sent = sdk(proxy)
    async with client.responses.stream(model=ALIAS, input="Run echo", tools=TOOLS) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds == [orjson.loads(e.split(b"data: ", 1)[1])["type"] for e in events]
    call = next(item for item in final.output if item.type == "function_call")
    assert orjson.loads(call.arguments) == {"cmd": "echo codex-ran-$((6*7))"}
    assert fake.requests[0].body == but_model(sent[0])
    async with (
        aiohttp.ClientSession() as session,
        session.post(proxy + "/v1/responses", json={"model": ALIAS, "input": "x", "stream": True}) as r,
    ):
        assert r.headers["content-type"].startswith("text/event-stream")
        assert await r.read() == b"".join(events)


async def test_events_are_forwarded_while_the_provider_is_paused(proxy: str, fake: FakeUpstream) -> None:
    """No buffering: the client holds the first events while the provider waits before the rest."""
    events = codex_events("exec-shell-0002")
    fake.default = Stream(events, pause_after=2, pause=1.0)
    body = {"model": ALIAS, "input": "hi", "stream": True}
    async with aiohttp.ClientSession() as session, session.post(proxy + "/v1/responses", json=body) as r:
        first = await r.content.readuntil(b"\n\n")
        second = await r.content.readuntil(b"\n\n")
        assert [first, second] == events[:2]
        assert fake.events_sent == 2, "the client got two events before the provider sent the third"
        rest = await r.read()
    assert first + second + rest == b"".join(events)


@pytest.mark.parametrize(
    ("recording", "status", "error_class"),
    [
        ("openai/error_429_rate_limit_exceeded.json", 429, openai.RateLimitError),
        ("openai/error_404_model_not_found.json", 404, openai.NotFoundError),
        ("openai/error_400_unsupported_value.json", 400, openai.BadRequestError),
    ],
)
async def test_an_error_before_the_first_byte_is_the_providers_own(
    sdk: Any, proxy: str, fake: FakeUpstream, recording: str, status: int, error_class: type[Exception]
) -> None:
    """A provider's 4xx before the stream reaches the SDK as that OpenAI error, its message intact."""
    fake.default = json_reply(recording, status=status)
    client, _ = sdk(proxy)
    with pytest.raises(error_class) as caught:
        await client.responses.create(model=ALIAS, input="hi", stream=True)
    expected = orjson.loads((FIXTURES / "recorded" / recording).read_bytes())["error"]
    assert isinstance(caught.value, openai.APIStatusError)
    assert caught.value.status_code == status
    assert caught.value.body == expected


async def test_an_unreachable_provider_is_an_openai_5xx(make_proxy: ProxyFactory, sdk: Any) -> None:
    """A provider nobody answers at: the SDK gets an OpenAI-shaped 5xx naming it, not a traceback."""
    proxy = await make_proxy(
        {
            "providers": [
                {"name": "oai", "kind": "responses", "api_base_url": "http://127.0.0.1:9/v1", "api_key": "k"}
            ],
            "routes": {"default": {"provider": "oai", "model": UPSTREAM_MODEL}},
        }
    )
    client, _ = sdk(proxy)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.responses.create(model=ALIAS, input="hi")
    assert caught.value.status_code in (502, 503)
    assert "oai" in str(caught.value.body)


async def test_a_stream_cut_midway_ends_in_response_failed(proxy: str, fake: FakeUpstream) -> None:
    """A provider that breaks off after 3 events: the client has those, then response.failed continuing the stream."""
    events = codex_events("exec-shell-0002")
    fake.default = Stream(events, drop_after=3)
    body = {"model": ALIAS, "input": "hi", "stream": True}
    async with aiohttp.ClientSession() as session, session.post(proxy + "/v1/responses", json=body) as r:
        raw = await r.read()
    assert raw.startswith(b"".join(events[:3]))
    last = raw[len(b"".join(events[:3])) :]
    assert last.startswith(b"event: response.failed\n")
    failed = orjson.loads(last.split(b"data: ", 1)[1])
    created = final_response("exec-shell-0002")
    assert failed["sequence_number"] == 3
    assert failed["response"]["id"] == created["id"] and failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["message"]


async def test_a_bare_error_event_is_followed_by_response_failed(proxy: str, fake: FakeUpstream) -> None:
    """The provider's own error event passes, and since Codex ignores it, response.failed closes the stream."""
    events = codex_events("exec-shell-0002")[:3]
    error = b'event: error\ndata: {"type":"error","code":"server_error","message":"boom","sequence_number":3}\n\n'
    fake.default = Stream([*events, error])
    body = {"model": ALIAS, "input": "hi", "stream": True}
    async with aiohttp.ClientSession() as session, session.post(proxy + "/v1/responses", json=body) as r:
        raw = await r.read()
    assert raw.startswith(b"".join(events) + error)
    assert raw[len(b"".join(events) + error) :].startswith(b"event: response.failed\n")


async def test_previous_response_id_goes_to_the_provider_that_keeps_responses(
    sdk: Any, proxy: str, fake: FakeUpstream
) -> None:
    """ccproxy refuses previous_response_id for translated providers; a Responses provider gets it as sent."""
    fake.default = Reply(body=orjson.dumps(final_response("exec-shell-0002")))
    client, sent = sdk(proxy)
    await client.responses.create(model=ALIAS, input="and then?", previous_response_id="resp_abc123")
    assert fake.requests[0].body == but_model(sent[0])
    assert fake.requests[0].json()["previous_response_id"] == "resp_abc123"


async def test_a_codex_session_path_keeps_one_key(make_proxy: ProxyFactory, fake: FakeUpstream) -> None:
    """/api/codex/{session_id}/responses is a sticky session: each conversation stays on one of three keys."""
    fake.default = Reply(body=orjson.dumps(final_response("exec-shell-0002")))
    proxy = await make_proxy(provider_config(fake, api_key="", api_keys=["sk-1", "sk-2", "sk-3"]))
    sessions = [f"thread-{i}" for i in range(6)]
    body = {"model": ALIAS, "input": "hi"}
    async with aiohttp.ClientSession() as session:
        for _ in range(4):
            for sid in sessions:
                async with session.post(f"{proxy}/api/codex/{sid}/responses", json=body) as r:
                    assert r.status == 200
    used: dict[str, set[str]] = {}
    for i, got in enumerate(fake.requests):
        used.setdefault(sessions[i % len(sessions)], set()).add(got.headers["authorization"])
    assert all(len(keys) == 1 for keys in used.values()), used
    assert len(set().union(*used.values())) > 1, "conversations spread over the keys"


async def test_a_client_hanging_up_after_completed_cancels_nothing(proxy: str, fake: FakeUpstream) -> None:
    """Codex closes the connection once it parsed response.completed; the next request is served as usual."""
    events = codex_events("exec-shell-0002")
    fake.queue(Stream([*events, b": late\n\n"], pause_after=len(events), pause=0.5))
    body = {"model": ALIAS, "input": "hi", "stream": True}
    async with aiohttp.ClientSession() as session:
        async with session.post(proxy + "/v1/responses", json=body) as r:
            data = b""
            while b"response.completed" not in data:
                data += await r.content.readany()
        fake.default = Reply(body=orjson.dumps(final_response("exec-shell-0002")))
        await asyncio.sleep(0)
        async with session.post(proxy + "/v1/responses", json={**body, "stream": False}) as again:
            assert again.status == 200
