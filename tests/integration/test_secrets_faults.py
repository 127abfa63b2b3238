"""Secrets never leave the process: providers that quote every key back, through the real server.

Each fake provider answers with an error that quotes every configured secret (the proxy key,
keys in several formats, a header's Bearer token and value, OAuth tokens, and the tokens a
refresh hands out during the test). What leaves the proxy is captured: the official SDKs'
errors and the raw error bodies in both dialects, streaming and not, every log record at DEBUG,
`/status`, `/providers` and `ccproxy config show`. Not one may contain a secret.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ccproxy_core.cli.main import main
from ccproxy_core.config.load import load
from ccproxy_core.config.model import structure
from ccproxy_core.core.redaction import Redactor, mask_setting
from ccproxy_core.server.app import configure_logging, create_app
from tests.fakes import FakeTokenEndpoint, FakeUpstream, Reply

PROXY_KEY = "ccp-local-" + "Vb7Nq2Lx9Ws4Ke1Pz6Hd"
GSK = "gsk_" + "Q7fJ2kLm9Xp3Rt8Vw1Yz" * 2
AIZA = "AIzaSyD-" + "x9Y8w7V6u5T4s3R2q1P0o9N8m7L6k5J"
HEX = "3f9a1c0b7e6d5f4a2b1c0d9e8f7a6b5c"
BEARER = "Zm9vYmFyYmF6cXV4LXRva2VuLXZhbHVl"
HEADER = "tenant-7f3e9d2c1b0a-secret-value"
OAUTH_ACCESS = "ya29.a0AfB_byC" + "k3J9x2LmQ8vR5tW1" * 2
OAUTH_REFRESH = "1//0gLq" + "Hc8Vn2Xk5Jm7Rp4T" * 2
REFRESHED = ("sk-ant-oat01-a1", "sk-ant-ort01-r1")  # what the fake token endpoint issues first
CONFIGURED = (PROXY_KEY, GSK, AIZA, HEX, BEARER, HEADER, OAUTH_ACCESS, OAUTH_REFRESH)
SECRETS = (*CONFIGURED, *REFRESHED)
PROVIDERS = ("groq", "gemini", "hexco", "custom", "claude")


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """The "ccproxy" logger configured as `ccproxy serve` does, at DEBUG, restored afterwards."""
    logger = logging.getLogger("ccproxy")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield tmp_path / "ccproxy.log"
    for handler in logger.handlers:
        handler.close()
    logger.handlers[:], logger.level, logger.propagate = saved


def config(openai_fake: FakeUpstream, anthropic_fake: FakeUpstream, accounts: Path, token_url: str) -> dict[str, Any]:
    oa, an = f"{openai_fake.url}/v1", anthropic_fake.url
    return {
        "apikey": PROXY_KEY,
        "providers": [
            {"name": "groq", "kind": "openai", "api_base_url": oa, "api_key": GSK},
            {"name": "gemini", "kind": "openai", "api_base_url": oa, "api_key": AIZA},
            {"name": "hexco", "kind": "anthropic", "api_base_url": an, "api_keys": [HEX]},
            {
                "name": "custom",
                "kind": "openai",
                "api_base_url": oa,
                "api_key": GSK + "-custom",
                "headers": {"Authorization": f"Bearer {BEARER}", "X-Tenant-Key": HEADER},
            },
            {
                "name": "claude",
                "kind": "anthropic",
                "auth": "oauth",
                "accounts_path": str(accounts),
                "api_base_url": an,
            },
        ],
        "routes": {"default": {"provider": "hexco", "model": "claude-x"}},
        "oauth": {"token_url": token_url},
    }


def quoting(secrets: tuple[str, ...]) -> tuple[Reply, Reply]:
    """(OpenAI-style, Anthropic-style) 400 answers that quote `secrets`."""
    quote = "Incorrect API key provided: " + ", ".join(secrets)
    return (
        Reply(
            400, orjson.dumps({"error": {"message": quote, "type": "invalid_request_error", "code": "invalid_api_key"}})
        ),
        Reply(400, orjson.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": quote}})),
    )


def secrets_in(text: str) -> int:
    return sum(text.count(secret) for secret in SECRETS)


async def test_no_secret_leaves_the_process_in_200_captured_outputs(
    make_fake: Any, aiohttp_server: Any, token_endpoint: FakeTokenEndpoint, tmp_path: Path, log_file: Path
) -> None:
    """Client errors (both dialects), DEBUG logs, /status, /providers and config show: 0 secrets seen."""
    openai_fake, anthropic_fake = await make_fake(), await make_fake()
    openai_fake.default, anthropic_fake.default = quoting(CONFIGURED)
    # The OAuth account's first token is refused (quoted back): the proxy refreshes, and the new
    # tokens, quoted from then on, must be masked as soon as the pool holds them.
    quote = "invalid bearer token " + ", ".join(CONFIGURED)
    anthropic_fake.by_credential[OAUTH_ACCESS] = Reply(
        401, orjson.dumps({"type": "error", "error": {"type": "authentication_error", "message": quote}})
    )
    token_endpoint.valid.add(OAUTH_REFRESH)
    accounts = tmp_path / "accounts.json"
    accounts.write_bytes(
        orjson.dumps(
            {
                "version": 1,
                "accounts": {
                    "a": {"accessToken": OAUTH_ACCESS, "refreshToken": OAUTH_REFRESH, "expiresAt": 4_000_000_000_000}
                },
            }
        )
    )
    raw = config(openai_fake, anthropic_fake, accounts, token_endpoint.url)
    redactor = Redactor()
    configure_logging("debug", str(log_file), "text", redactor)
    server: TestServer = await aiohttp_server(create_app(structure(raw), redactor=redactor))
    url = str(server.make_url("")).rstrip("/")
    logging.getLogger("ccproxy.test").debug("a log line that quotes the keys: %s", CONFIGURED)
    try:
        raise RuntimeError(f"quoting {CONFIGURED}")
    except RuntimeError:
        logging.getLogger("ccproxy.test").exception("and a traceback that quotes them")

    outputs: list[str] = []
    ant = anthropic.AsyncAnthropic(base_url=url, api_key=PROXY_KEY, max_retries=0)
    oai = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=PROXY_KEY, max_retries=0)
    messages: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.BadRequestError):  # the refresh: the pool now holds the new tokens
        await ant.messages.create(model="claude,some-model", max_tokens=8, messages=messages)
    assert len(token_endpoint.requests) == 1
    openai_fake.default, anthropic_fake.default = quoting(SECRETS)
    for _ in range(3):
        for provider in PROVIDERS:
            for stream in (False, True):
                try:
                    await ant.messages.create(
                        model=f"{provider},some-model", max_tokens=8, messages=messages, stream=stream
                    )
                    outputs.append("unexpected success")
                except anthropic.APIStatusError as exc:
                    outputs += [str(exc), exc.response.text, repr(dict(exc.response.headers))]
                try:
                    await oai.chat.completions.create(model=f"{provider},some-model", messages=messages, stream=stream)
                    outputs.append("unexpected success")
                except openai.APIStatusError as exc:
                    outputs += [str(exc), exc.response.text, repr(dict(exc.response.headers))]
    await ant.close()
    await oai.close()

    headers = {"x-api-key": PROXY_KEY}
    async with aiohttp.ClientSession(headers=headers) as session:
        paths = ["/status", "/status/accounts", "/status/accounts/a", "/providers", "/health"]
        paths += [f"/providers/{name}" for name in PROVIDERS]
        for path in paths:
            async with session.get(f"{url}{path}") as r:
                outputs.append(await r.text())
        assert "gsk_…" in outputs[-len(paths) + 2], "lastError quotes the keys, masked"

    config_file = tmp_path / "config.json"
    config_file.write_bytes(orjson.dumps(raw))
    shown = tmp_path / "shown.txt"
    with shown.open("w") as out, pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdout", out)
        assert main(["config", "show", "--config", str(config_file)]) == 0
    outputs.append(shown.read_text())
    for handler in logging.getLogger("ccproxy").handlers:
        handler.flush()
    records = [line for line in log_file.read_text().splitlines() if line]
    outputs += records

    seen = sum(secrets_in(text) for text in outputs)
    print(f"\nsecrets seen in {len(outputs)} captured outputs ({len(records)} log lines at DEBUG): {seen}")
    assert len(outputs) >= 200 and len(records) >= 20
    assert any("gsk_" in text for text in outputs), "the masked forms are there: the quotes did arrive"
    assert seen == 0, [text for text in outputs if secrets_in(text)][:3]


async def test_provider_headers_are_masked_and_a_get_put_round_trip_keeps_them(
    make_proxy: Any, make_fake: Any, tmp_path: Path
) -> None:
    """GET /providers masks header values; PUTting that answer back keeps the real values on disk and upstream."""
    fake = await make_fake()
    path = tmp_path / "config.json"
    provider = {
        "name": "custom",
        "kind": "anthropic",
        "api_base_url": fake.url,
        "api_key": GSK,
        "headers": {"X-Tenant-Key": HEADER, "X-Title": "ccproxy-tests"},
    }
    path.write_bytes(orjson.dumps({"providers": [provider]}))
    loaded = load(config_file=str(path), env={}, cwd=tmp_path, user_paths=[])
    url = await make_proxy(loaded.config, config_files=tuple(str(f) for f in loaded.files))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/providers/custom") as r:
            shown = await r.json()
        assert shown["headers"] == {"X-Tenant-Key": mask_setting(HEADER), "X-Title": mask_setting("ccproxy-tests")}
        async with session.put(f"{url}/providers/custom", json=shown) as r:
            assert r.status == 200, await r.text()
        body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
        async with session.post(f"{url}/v1/messages", json=body) as r:
            assert r.status == 200
    assert orjson.loads(path.read_bytes())["providers"][0]["headers"]["X-Tenant-Key"] == HEADER
    assert fake.requests[-1].headers["x-tenant-key"] == HEADER


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
async def test_ccproxy_serve_logs_no_secret_at_debug(make_fake: Any, aiohttp_server: Any, tmp_path: Path) -> None:
    """`ccproxy serve` as a process at DEBUG; a provider and a token endpoint quoting secrets: the log has none."""
    fake = await make_fake()
    fake.default = quoting((PROXY_KEY, GSK, HEADER))[0]

    async def refuse(request: web.Request) -> web.Response:  # quotes the refresh token and the keys
        quote = f"client not allowed for {OAUTH_REFRESH} ({GSK}, {HEADER})"
        return web.json_response({"error": "invalid_client", "error_description": quote}, status=400)

    endpoint = web.Application()
    endpoint.router.add_post("/v1/oauth/token", refuse)
    token_server: TestServer = await aiohttp_server(endpoint)
    accounts = tmp_path / "accounts.json"
    due = {
        "accessToken": OAUTH_ACCESS,
        "refreshToken": OAUTH_REFRESH,
        "expiresAt": 1_000,
    }  # expired: refreshed at start
    accounts.write_bytes(orjson.dumps({"version": 1, "accounts": {"a": due}}))
    port = free_port()
    log = tmp_path / "serve.log"
    groq: dict[str, Any] = {"name": "groq", "kind": "openai", "api_base_url": f"{fake.url}/v1", "api_key": GSK}
    groq["headers"] = {"X-Tenant-Key": HEADER}
    claude = {"name": "claude", "kind": "anthropic", "auth": "oauth", "accounts_path": str(accounts)}
    config_file = tmp_path / "config.json"
    config_file.write_bytes(
        orjson.dumps(
            {
                "port": port,
                "apikey": PROXY_KEY,
                "log": {"level": "debug", "file": str(log)},
                "providers": [groq, claude],
                "oauth": {"token_url": str(token_server.make_url("/v1/oauth/token"))},
            }
        )
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ccproxy_core", "serve", "--config", str(config_file), cwd=Path(__file__).parents[2]
    )
    try:
        for _ in range(200):  # until it listens and has tried the refresh: up to ~10 s on a busy machine
            if log.exists() and "listening" in log.read_text() and "token refresh" in log.read_text():
                break
            await asyncio.sleep(0.05)
        oai = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=PROXY_KEY, max_retries=0)
        with pytest.raises(openai.BadRequestError) as caught:
            await oai.chat.completions.create(model="groq,m", messages=[{"role": "user", "content": "hi"}])
        await oai.close()
    finally:
        proc.terminate()
        await proc.wait()
    text = log.read_text()
    assert "client not allowed for" in text and "gsk_" in caught.value.response.text  # the quotes arrived
    assert secrets_in(text + caught.value.response.text) == 0
