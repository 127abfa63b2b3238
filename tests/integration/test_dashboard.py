"""/dashboard in a real headless browser: Debian's chromium, driven by Playwright, against the real server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from ccproxy_core.config.model import structure
from ccproxy_core.server.app import create_app
from tests.fakes import FakeUpstream, Reply

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
KEY = "sk-proxy-dashboard-1234"
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "Hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 1200,
        "output_tokens": 340,
        "cache_read_input_tokens": 5000,
        "cache_creation_input_tokens": 800,
    },
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason="Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)",
    ),
]


async def _proxy(aiohttp_server: Any, fake: FakeUpstream, tmp_path: Path, **extra: Any) -> str:
    config = structure(
        {
            "providers": [
                {
                    "name": "claude-max",
                    "kind": "anthropic",
                    "api_base_url": fake.url,
                    "api_keys": ["sk-ant-alice-111111111111", "sk-ant-bob-2222222222222"],
                }
            ],
            "routes": {"default": {"provider": "claude-max", "model": "claude-sonnet-4-6"}},
            "usage": {"path": str(tmp_path / "usage.sqlite3")},
            **extra,
        }
    )
    server: TestServer = await aiohttp_server(create_app(config))
    return str(server.make_url("")).rstrip("/")


async def _traffic(proxy: str, headers: dict[str, str], n: int) -> list[str]:
    ids = []
    body = {"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession(headers=headers) as s:
        for _ in range(n):
            async with s.post(f"{proxy}/v1/messages", json=body) as r:
                await r.read()
                ids.append(r.headers["x-request-id"])
    return ids


async def _open(browser: Any, url: str) -> tuple[Any, list[str], list[str]]:
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    requested: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requested.append(r.url))
    await page.goto(url)
    return page, errors, requested


def _local_only(urls: list[str]) -> list[str]:
    return [u for u in urls if urlsplit(u).scheme != "data" and urlsplit(u).hostname != "127.0.0.1"]


async def test_dashboard_shows_credentials_and_latest_requests_offline(
    aiohttp_server: Any, fake: FakeUpstream, tmp_path: Path
) -> None:
    """The page loads with no console error, asks nothing of any other host, names every credential
    and lists the latest requests; with apikey set it asks for the key once and then shows the same."""
    async_api = pytest.importorskip("playwright.async_api", reason="playwright is in the test extra")
    async_playwright = async_api.async_playwright

    for secret, five_hour, week in (
        ("sk-ant-alice-111111111111", 0.42, 0.18),
        ("sk-ant-bob-2222222222222", 0.86, 0.61),
    ):
        fake.by_credential[secret] = Reply(
            body=orjson.dumps(MESSAGE),
            headers={
                "anthropic-ratelimit-unified-status": "allowed",
                "anthropic-ratelimit-unified-5h-status": "allowed",
                "anthropic-ratelimit-unified-5h-utilization": str(five_hour),
                "anthropic-ratelimit-unified-7d-status": "allowed",
                "anthropic-ratelimit-unified-7d-utilization": str(week),
            },
        )
    open_proxy = await _proxy(aiohttp_server, fake, tmp_path / "open")
    ids = await _traffic(open_proxy, {}, 3)
    keyed_proxy = await _proxy(aiohttp_server, fake, tmp_path / "keyed", apikey=KEY)
    keyed_ids = await _traffic(keyed_proxy, {"x-api-key": KEY}, 1)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page, errors, requested = await _open(browser, f"{open_proxy}/dashboard")
            for name in ("key-1", "key-2"):
                await page.locator(".cred-name", has_text=name).wait_for(timeout=15000)
            for request_id in ids:
                await page.get_by_text(request_id).wait_for(timeout=15000)
            await page.locator("#byday svg").wait_for(timeout=15000)
            shot = tmp_path / "dashboard.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert errors == []
            assert _local_only(requested) == []
            if os.environ.get("UPDATE_DASHBOARD_SCREENSHOT"):
                SCREENSHOT.parent.mkdir(exist_ok=True)
                shutil.copyfile(shot, SCREENSHOT)

            page, errors, requested = await _open(browser, f"{keyed_proxy}/dashboard")
            await page.locator("#keyinput").fill(KEY)
            await page.locator("#keyformform button").click()
            await page.get_by_text(keyed_ids[0]).wait_for(timeout=15000)
            await page.locator(".cred-name", has_text="key-2").wait_for(timeout=15000)
            assert await page.evaluate("sessionStorage.getItem('ccproxy.apikey')") == KEY
            # the two polls that answered 401 before the key was given are the only errors
            assert all("401" in e for e in errors), errors
            assert _local_only(requested) == []
        finally:
            await browser.close()
