"""Issue 15, end to end: SDK mode served by the REAL Claude Code CLI, offline.

The CLI (installed from npm into a cache directory, see `tests.sdk_fake.find_claude`) runs with
`ANTHROPIC_BASE_URL` pointing at `FakeClaudeAPI` on 127.0.0.1, a temporary HOME and
`CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`; the official anthropic and openai SDKs call
ccproxy's `/claude/v1/...` and `/sdk/v1/...`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from aiohttp import web
from attrs import define

from ccproxy_core.config.model import structure
from ccproxy_core.server.app import create_app
from ccproxy_core.server.sdk_mode import SDK_MODE
from tests.grammar import assert_anthropic_stream_grammar
from tests.sdk_fake import FakeClaudeAPI, find_claude

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def claude_cli() -> str:
    path, why = find_claude()
    if path is None:
        pytest.skip(f"SDK-mode tests need the Claude Code CLI: {why}")
    return path


@define
class SdkProxy:
    url: str
    api: FakeClaudeAPI
    app: web.Application
    cwd: Path

    def anthropic(self, prefix: str = "/claude") -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(base_url=self.url + prefix, api_key="dummy", max_retries=0)

    def openai(self, prefix: str = "/claude") -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url + prefix + "/v1", api_key="dummy", max_retries=0)

    def pids(self) -> list[int]:
        return self.app[SDK_MODE].live_pids()


SdkProxyFactory = Callable[..., Awaitable[SdkProxy]]


@pytest.fixture
async def make_sdk_proxy(aiohttp_server: Any, claude_cli: str, tmp_path: Path) -> AsyncIterator[SdkProxyFactory]:
    fakes: list[FakeClaudeAPI] = []

    async def go(limits: dict[str, Any] | None = None, **sdk: Any) -> SdkProxy:
        api = FakeClaudeAPI()
        fakes.append(api)
        api_server = await aiohttp_server(api.app)
        cwd = tmp_path / f"cwd{len(fakes)}"
        cwd.mkdir()
        env = {
            "ANTHROPIC_BASE_URL": str(api_server.make_url("")).rstrip("/"),
            "ANTHROPIC_API_KEY": "sk-fake",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0",
            "HOME": os.environ["HOME"],
        }
        config = structure(
            {"sdk": {"cli_path": claude_cli, "cwd": str(cwd), "env": env, **sdk}, "limits": limits or {}}
        )
        app = create_app(config)
        server = await aiohttp_server(app)  # with handler_cancellation, as `ccproxy serve` runs
        return SdkProxy(url=str(server.make_url("")).rstrip("/"), api=api, app=app, cwd=cwd)

    yield go
    for api in fakes:
        api.release()  # no fake handler stays parked on a pause while the servers close


@pytest.fixture
async def sdk_proxy(make_sdk_proxy: SdkProxyFactory) -> SdkProxy:
    return await make_sdk_proxy()


async def wait_until(check: Callable[[], bool], what: str) -> None:
    """Poll a condition (bounded: a hang fails the test instead of stalling the suite)."""
    for _ in range(600):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def pid_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has ended; only its exit status is left


async def test_anthropic_sdk_gets_the_answer(sdk_proxy: SdkProxy) -> None:
    """The anthropic SDK's messages.create on /claude/v1 gets Claude Code's answer as a Message."""
    msg = await sdk_proxy.anthropic().messages.create(
        model="sonnet", max_tokens=100, messages=[{"role": "user", "content": "hello there"}]
    )
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "Echo: hello there"  # type: ignore[union-attr]
    assert msg.model == "sonnet" and msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == 11 and msg.usage.output_tokens == 7
    assert sdk_proxy.api.requests[0]["model"] != ""  # the CLI made the API call, not ccproxy


async def test_anthropic_sdk_stream_on_sdk_prefix(sdk_proxy: SdkProxy) -> None:
    """/sdk/v1/messages streams a well-formed Anthropic event stream the SDK assembles."""
    events: list[tuple[str, Any]] = []
    async with sdk_proxy.anthropic("/sdk").messages.stream(
        model="sonnet", max_tokens=100, messages=[{"role": "user", "content": "stream me"}]
    ) as stream:
        async for event in stream:
            if event.type in (
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ):
                events.append((event.type, event.model_dump(mode="json", exclude_none=True)))
        final = await stream.get_final_message()
    assert final.content[0].text == "Echo: stream me"  # type: ignore[union-attr]
    assert_anthropic_stream_grammar(events)


async def test_stream_reaches_the_client_while_the_provider_is_paused(sdk_proxy: SdkProxy) -> None:
    """The first words arrive while the provider is still paused mid-answer: nothing waits for the run's end."""
    client = sdk_proxy.anthropic()
    async with client.messages.stream(
        model="sonnet", max_tokens=100, messages=[{"role": "user", "content": "pause here please"}]
    ) as stream:
        first = None
        async for text in stream.text_stream:
            first = text
            break
        assert first == "Echo:"
        assert sdk_proxy.api.hang_requests == 1  # the fake is still holding the rest
        sdk_proxy.api.release()
        rest = "".join([t async for t in stream.text_stream])
    assert rest == " pause here please"


async def test_openai_sdk_gets_the_answer_both_prefixes(sdk_proxy: SdkProxy) -> None:
    """The openai SDK's chat.completions.create on /claude/v1 and /sdk/v1 gets a chat.completion."""
    for prefix in ("/claude", "/sdk"):
        completion = await sdk_proxy.openai(prefix).chat.completions.create(
            model="sonnet",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"hi from {prefix}"}],
        )
        assert completion.choices[0].message.content == f"Echo: hi from {prefix}"
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage is not None and completion.usage.prompt_tokens == 11
    system = sdk_proxy.api.requests[-1]["system"]
    assert any("Be brief." in block["text"] for block in system)  # appended to Claude Code's own prompt


async def test_openai_sdk_stream(sdk_proxy: SdkProxy) -> None:
    """A streamed chat completion arrives in chunks, with usage, and ends properly."""
    stream = await sdk_proxy.openai("/sdk").chat.completions.create(
        model="sonnet",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "count on me"}],
    )
    pieces, finish, usage = [], None, None
    async for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert "".join(pieces) == "Echo: count on me" and len([p for p in pieces if p]) > 1
    assert finish == "stop" and usage is not None and usage.completion_tokens == 7


async def test_stateless_history_reaches_the_cli_as_a_transcript(sdk_proxy: SdkProxy) -> None:
    """A stateless request's earlier turns reach the CLI ahead of the new one."""
    await sdk_proxy.anthropic().messages.create(
        model="sonnet",
        max_tokens=50,
        messages=[
            {"role": "user", "content": "my name is Ada"},
            {"role": "assistant", "content": "Hello Ada"},
            {"role": "user", "content": "what is my name?"},
        ],
    )
    sent = str(sdk_proxy.api.requests[-1]["messages"])
    assert "User: my name is Ada" in sent and "Assistant: Hello Ada" in sent and "what is my name?" in sent


async def test_session_continues_across_requests_in_a_warm_process(sdk_proxy: SdkProxy) -> None:
    """A session id carries the conversation to the next request, served by the same (warm) process."""
    client = sdk_proxy.anthropic("/claude/chat-42")
    first = [{"role": "user", "content": "remember the word lighthouse"}]
    answer = await client.messages.create(model="sonnet", max_tokens=50, messages=first)  # type: ignore[arg-type]
    pids = sdk_proxy.pids()
    assert len(pids) == 1  # kept warm for the next turn
    history = [
        *first,
        {"role": "assistant", "content": answer.content[0].text},  # type: ignore[union-attr]
        {"role": "user", "content": "which word?"},
    ]
    await client.messages.create(model="sonnet", max_tokens=50, messages=history)  # type: ignore[arg-type]
    assert sdk_proxy.pids() == pids
    second = sdk_proxy.api.requests[-1]["messages"]
    # The CLI's own history holds the first turn; ccproxy sent only the new one (no transcript).
    assert "remember the word lighthouse" in str(second) and "Earlier turns" not in str(second)
    assert "which word?" in str(second[-2:])


async def test_session_resumes_in_a_new_process_after_its_ttl(make_sdk_proxy: SdkProxyFactory) -> None:
    """An idle session's process ends after sdk.session_ttl; the next turn resumes the transcript."""
    proxy = await make_sdk_proxy(session_ttl="0.3s")
    client = proxy.openai("/claude/s-ttl")
    await client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "the code is 7"}])
    warm = proxy.pids()  # (on a slow machine the sweep may already have closed it)
    await wait_until(lambda: all(pid_gone(p) for p in warm) and not proxy.pids(), "the idle session process ended")
    await client.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "what code?"}])
    assert "the code is 7" in str(proxy.api.requests[-1]["messages"])  # resumed from disk


async def test_bash_round_trip_runs_inside_the_cli(make_sdk_proxy: SdkProxyFactory) -> None:
    """With Bash allowed, Claude Code runs the command itself; the client sees it as text, never tool_use."""
    proxy = await make_sdk_proxy(allowed_tools=["Bash"])
    msg = await proxy.anthropic().messages.create(
        model="sonnet", max_tokens=100, messages=[{"role": "user", "content": "run: echo sdk-$((40+2))"}]
    )
    assert {b.type for b in msg.content} == {"text"}
    text = "".join(b.text for b in msg.content)  # type: ignore[union-attr]
    assert "[Claude Code ran Bash:" in text and "[Bash result: sdk-42]" in text
    assert text.endswith("The command printed: sdk-42")
    assert len(proxy.api.requests) == 2  # the tool_use, then the tool_result: a real round trip


async def test_tools_are_off_unless_allowed(sdk_proxy: SdkProxy) -> None:
    """By default Claude Code is offered no tool at all, so a prompt cannot make it run one."""
    msg = await sdk_proxy.anthropic().messages.create(
        model="sonnet", max_tokens=100, messages=[{"role": "user", "content": "run: touch /tmp/owned"}]
    )
    assert sdk_proxy.api.requests[0].get("tools", []) == []
    assert msg.content[0].text == "Echo: run: touch /tmp/owned"  # type: ignore[union-attr]


async def test_client_disconnect_leaves_no_claude_process(sdk_proxy: SdkProxy) -> None:
    """A client that hangs up mid-stream ends its CLI run: the process (found by PID) is gone."""
    body = {
        "model": "sonnet",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "pause forever"}],
    }
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            sdk_proxy.url + "/claude/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
        )
        await response.content.readline()
        await wait_until(lambda: sdk_proxy.api.hang_requests == 1, "the provider paused")
        [pid] = sdk_proxy.pids()
        response.close()  # the client goes away without reading the rest
    await wait_until(lambda: pid_gone(pid), f"claude pid {pid} ended")
    await wait_until(lambda: sdk_proxy.pids() == [], "the runner reaped it")


async def test_session_disconnect_interrupts_and_keeps_the_process(sdk_proxy: SdkProxy) -> None:
    """A session client that hangs up interrupts the run; the warm process stays and serves the next turn."""
    body = {
        "model": "sonnet",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "pause a moment"}],
    }
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            sdk_proxy.url + "/claude/s-int/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
        )
        await response.content.readline()
        await wait_until(lambda: sdk_proxy.api.hang_requests == 1, "the provider paused")
        [pid] = sdk_proxy.pids()
        response.close()
    msg = await sdk_proxy.anthropic("/claude/s-int").messages.create(
        model="sonnet", max_tokens=50, messages=[{"role": "user", "content": "next turn"}]
    )
    assert msg.content[0].text == "Echo: next turn"  # type: ignore[union-attr]
    assert sdk_proxy.pids() == [pid]


async def test_busy_proxy_answers_overloaded_in_each_dialect(make_sdk_proxy: SdkProxyFactory) -> None:
    """Beyond sdk.max_concurrent a request waits sdk.queue_timeout, then gets overloaded_error / 503."""
    proxy = await make_sdk_proxy(max_concurrent=1, queue_timeout="0.2s")
    busy = asyncio.ensure_future(
        proxy.anthropic().messages.create(
            model="sonnet", max_tokens=50, messages=[{"role": "user", "content": "pause while busy"}]
        )
    )
    await wait_until(lambda: proxy.api.hang_requests == 1, "the first run is in progress")
    with pytest.raises(anthropic.APIStatusError) as caught:
        await proxy.anthropic().messages.create(
            model="sonnet", max_tokens=50, messages=[{"role": "user", "content": "me too"}]
        )
    assert caught.value.status_code == 529 and "sdk.max_concurrent" in caught.value.message
    with pytest.raises(openai.APIStatusError) as caught_openai:
        await proxy.openai().chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "x"}])
    assert caught_openai.value.status_code == 503
    proxy.api.release()
    assert (await busy).content[0].text == "Echo: pause while busy"  # type: ignore[union-attr]


async def test_api_error_inside_the_cli_is_an_error_in_the_clients_dialect(sdk_proxy: SdkProxy) -> None:
    """The CLI's failed API call (here a 404 for an unknown path) is an HTTP error, not a 200 with text."""
    sdk_proxy.api.fail_status = 404
    with pytest.raises(anthropic.NotFoundError) as caught:
        await sdk_proxy.anthropic().messages.create(
            model="sonnet", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
    assert "Claude Code:" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        await sdk_proxy.openai().chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "x"}])


async def test_silence_gets_keepalives_then_times_out(make_sdk_proxy: SdkProxyFactory) -> None:
    """A silent CLI gets the client pings, and after limits.stream_idle_timeout an error event; the run is stopped."""
    # The idle limit leaves the CLI time to start (under a second here) before the fake's pause.
    proxy = await make_sdk_proxy(limits={"keepalive_interval": "0.1s", "stream_idle_timeout": "3s"})
    body = {
        "model": "sonnet",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "pause and stall"}],
    }
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            proxy.url + "/claude/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
        )
        await wait_until(lambda: proxy.api.hang_requests == 1, "the provider paused")
        [pid] = proxy.pids()
        raw = (await response.read()).decode()
    events = [line.removeprefix("event: ") for line in raw.splitlines() if line.startswith("event: ")]
    content = [e for e in events if e != "ping"]
    assert content == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert events[events.index("content_block_delta") + 1] == "ping"  # pings while the CLI is silent
    assert "limits.stream_idle_timeout" in raw and "timeout_error" in raw
    await wait_until(lambda: pid_gone(pid), f"claude pid {pid} ended")


def processes_in(cwd: Path) -> dict[int, str]:
    """Live processes whose working directory is `cwd`, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == str(cwd):
                    found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue  # gone meanwhile, or not ours to read
    return found


async def test_disconnect_during_a_tool_run_kills_the_tool_too(make_sdk_proxy: SdkProxyFactory) -> None:
    """A client that leaves while Claude Code's Bash runs a long command leaves neither `claude` nor the command."""
    proxy = await make_sdk_proxy(allowed_tools=["Bash"])
    body = {
        "model": "sonnet",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "run: echo waiting && sleep 47"}],
    }
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            proxy.url + "/claude/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
        )
        await wait_until(
            lambda: any("sleep 47" in cmd for cmd in processes_in(proxy.cwd).values()), "Bash is running the command"
        )
        started = processes_in(proxy.cwd)
        response.close()
    await wait_until(lambda: all(pid_gone(pid) for pid in started), f"processes {sorted(started)} ended")


async def test_each_turns_usage_reaches_the_request_log(sdk_proxy: SdkProxy, caplog: pytest.LogCaptureFixture) -> None:
    """A turn is logged (and metered) under provider claude-code, the model the CLI ran, and the CLI's token counts."""
    caplog.set_level(logging.INFO, logger="ccproxy.access")
    await sdk_proxy.anthropic().messages.create(
        model="sonnet", max_tokens=50, messages=[{"role": "user", "content": "count this"}]
    )

    def line() -> str:
        return next(
            (
                r.getMessage()
                for r in caplog.records
                if r.name == "ccproxy.access" and "/claude/v1/messages" in r.getMessage()
            ),
            "",
        )

    await wait_until(lambda: bool(line()), "the access log line")
    assert "route=claude-code,claude-" in line() and "tokens=in:11,out:7" in line()
