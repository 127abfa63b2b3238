"""ChatGPT's side of a codex provider, faked on loopback: its OAuth token endpoint and the Codex backend.

They behave as the Codex CLI's own login code (codex-rs/login) expects: the code exchange is a
form post, the refresh a JSON post with `scope`; tokens are JWTs whose claims carry the
ChatGPT account id (`https://api.openai.com/auth` -> `chatgpt_account_id`) and the access
token's `exp`; a refresh token works once and rotates. The backend accepts a request only with
a live access token and the `chatgpt-account-id` of that token's account, and answers 429
`usage_limit_reached` for an account told to.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
from aiohttp import web
from attrs import define, field

from tests.fakes import FIXTURES

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
STREAM = (FIXTURES / "codex" / "exec-shell-0002.response.sse").read_bytes()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(claims: dict[str, Any]) -> str:
    """An unsigned-looking JWT carrying `claims` (ccproxy reads claims, never verifies)."""
    return ".".join((_b64(b'{"alg":"RS256","typ":"JWT"}'), _b64(orjson.dumps(claims)), _b64(b"signature")))


def id_token(account_id: str, email: str = "dev@example.com") -> str:
    return make_jwt({"email": email, "https://api.openai.com/auth": {"chatgpt_account_id": account_id}})


@define
class FakeChatGPTAuth:
    """auth.openai.com/oauth/token: rotating single-use refresh tokens, `invalid_grant` for a spent one."""

    url: str = ""
    lifetime: float = 10 * 24 * 3600.0  # access tokens last ~10 days
    delay: float = 0.0
    requests: list[tuple[str, dict[str, str]]] = field(factory=list)  # (content type, body)
    refresh_tokens: dict[str, str] = field(factory=dict)  # live refresh token -> account id
    access: dict[str, str] = field(factory=dict)  # live access token -> account id
    codes: dict[str, str] = field(factory=dict)  # authorization code -> account id
    issued: int = 0

    def issue(self, account_id: str) -> tuple[str, str]:
        """A fresh (access token, refresh token) pair for `account_id`."""
        self.issued += 1
        access = make_jwt(
            {
                "exp": int(time.time() + self.lifetime),
                "n": self.issued,
                "https://api.openai.com/auth": {"chatgpt_account_id": account_id},
            }
        )
        refresh = f"rt_{account_id}_{self.issued}"
        self.access[access] = account_id
        self.refresh_tokens[refresh] = account_id
        return access, refresh

    def grants(self, grant_type: str) -> list[dict[str, str]]:
        return [body for _, body in self.requests if body.get("grant_type") == grant_type]

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if request.content_type == "application/x-www-form-urlencoded":
            body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        else:
            assert request.content_type == "application/json", request.content_type
            body = orjson.loads(raw)
        self.requests.append((request.content_type, body))
        if self.delay:
            await asyncio.sleep(self.delay)
        if body.get("client_id") != CLIENT_ID:
            return web.json_response({"error": "invalid_client"}, status=401)
        if body.get("grant_type") == "refresh_token":
            # codex-rs sends the refresh as JSON with a scope; a form post would be refused.
            if request.content_type != "application/json" or "scope" not in body:
                return web.json_response({"error": "invalid_request"}, status=400)
            account = self.refresh_tokens.pop(body.get("refresh_token", ""), None)
            if account is None:
                return web.json_response(
                    {"error": "invalid_grant", "error_description": "refresh token already used"}, status=400
                )
        elif body.get("grant_type") == "authorization_code":
            if request.content_type != "application/x-www-form-urlencoded" or not body.get("code_verifier"):
                return web.json_response({"error": "invalid_request"}, status=400)
            account = self.codes.pop(body.get("code", ""), None)
            if account is None or not body.get("redirect_uri"):
                return web.json_response({"error": "invalid_grant"}, status=400)
        else:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        access, refresh = self.issue(account)
        # No expires_in, as codex-rs reads it: the access token's `exp` says when it ends.
        return web.json_response({"id_token": id_token(account), "access_token": access, "refresh_token": refresh})


@define
class FakeCodexBackend:
    """chatgpt.com/backend-api/codex/responses for the accounts `auth` issued tokens to."""

    auth: FakeChatGPTAuth
    url: str = ""  # the provider's api_base_url (…/backend-api/codex)
    limited: set[str] = field(factory=set)  # account ids answered 429 usage_limit_reached
    script: Callable[[dict[str, Any]], bytes] | None = None  # request body -> the SSE to stream back
    requests: list[tuple[dict[str, str], bytes]] = field(factory=list)

    def served(self) -> Counter[str]:
        """Account id -> requests answered 200."""
        return Counter(h["chatgpt-account-id"] for h, _ in self.requests if h.get("x-fake-status") == "200")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append((headers, raw))
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        account = self.auth.access.get(bearer)
        if account is None:
            return self._error(headers, 401, "token_expired", "Provided authentication token is expired.")
        if headers.get("chatgpt-account-id") != account:
            return self._error(headers, 403, "account_mismatch", "chatgpt-account-id does not match the token")
        if account in self.limited:
            body = {
                "error": {
                    "type": "usage_limit_reached",
                    "message": "The usage limit has been reached",
                    "plan_type": "plus",
                    "resets_in_seconds": 3600,
                }
            }
            headers["x-fake-status"] = "429"
            return web.json_response(body, status=429)
        headers["x-fake-status"] = "200"
        if orjson.loads(raw).get("stream") is True:
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            await response.write(self.script(orjson.loads(raw)) if self.script else STREAM)
            await response.write_eof()
            return response
        return web.json_response(
            {
                "id": "resp_fake",
                "object": "response",
                "status": "completed",
                "model": orjson.loads(raw).get("model"),
                "output": [
                    {
                        "type": "message",
                        "id": "msg_fake",
                        "role": "assistant",
                        "status": "completed",
                        "content": [{"type": "output_text", "text": f"hello from {account}", "annotations": []}],
                    }
                ],
                "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8},
            }
        )

    def _error(self, headers: dict[str, str], status: int, code: str, message: str) -> web.Response:
        headers["x-fake-status"] = str(status)
        return web.json_response(
            {"error": {"message": message, "type": "invalid_request_error", "code": code}}, status=status
        )


async def start(aiohttp_server: Any) -> tuple[FakeChatGPTAuth, FakeCodexBackend]:
    """Both fakes on one loopback server, at ChatGPT's own paths."""
    auth = FakeChatGPTAuth()
    backend = FakeCodexBackend(auth)
    app = web.Application()
    app.router.add_post("/oauth/token", auth.handle)
    app.router.add_post("/backend-api/codex/responses", backend.handle)
    server = await aiohttp_server(app)
    auth.url = str(server.make_url("/oauth/token"))
    backend.url = str(server.make_url("/backend-api/codex"))
    return auth, backend
