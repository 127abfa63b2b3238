"""The credential pool: what an upstream answer means, who serves next, and how one request fails over."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccproxy_core.core.credential import Credential, with_tokens
from ccproxy_core.core.errors import AuthenticationFailed, NotFound, ProxyError, RateLimited, ServiceUnavailable
from ccproxy_core.core.failover import FailoverPlan, Step
from ccproxy_core.core.outcome import Outcome, OutcomeKind, classify
from ccproxy_core.core.pool import CredentialPool, PoolSettings
from ccproxy_core.core.redaction import redact, scrub
from tests.fakes import recorded, recorded_headers

K = OutcomeKind
T0 = 1_800_000_000.0
OK = Outcome(K.OK)


def error(kind: str, message: str, **extra: object) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message, **extra}})


def key(name: str) -> Credential:
    return Credential(name, "api_key", f"sk-ant-api03-{name}-secret-value")


def account(name: str, expires_at: float = T0 + 8 * 3600, token: str = "") -> Credential:
    return Credential(
        name,
        "oauth",
        token or f"sk-ant-oat01-{name}-access",
        refresh_token=f"sk-ant-ort01-{name}-refresh",
        expires_at=expires_at,
    )


def pool_of(*names: str, **kw: object) -> CredentialPool:
    return CredentialPool([key(n) for n in names], provider="anthropic", **kw)  # type: ignore[arg-type]


def picks(pool: CredentialPool, n: int, now: float = T0) -> list[str]:
    return [pool.select(now).name for _ in range(n)]


# --- classification ---------------------------------------------------------------------------

UNIFIED_429 = recorded_headers("anthropic/error_429_headers_oauth_unified.json")
BARE_429 = error("rate_limit_error", "Error")

CASES = [
    # Every recorded error, with the headers recorded beside it.
    (
        "recorded org rate limit 429",
        429,
        recorded_headers("anthropic/error_429_rate_limit.headers.json"),
        recorded("anthropic/error_429_rate_limit.json"),
        K.ACCOUNT_EXHAUSTED,
    ),
    (
        "recorded account rate limit 429",
        429,
        {},
        recorded("anthropic/error_429_oauth_account_rate_limit.json"),
        K.ACCOUNT_EXHAUSTED,
    ),
    ("recorded unified rejected 429", 429, UNIFIED_429, BARE_429, K.ACCOUNT_EXHAUSTED),
    ("recorded unified rejected 429, no body", 429, UNIFIED_429, b"", K.ACCOUNT_EXHAUSTED),
    (
        "recorded 2024 429, requests remaining 0",
        429,
        recorded_headers("anthropic/error_429_headers_api_key_2024.json"),
        BARE_429,
        K.ACCOUNT_EXHAUSTED,
    ),
    (
        "recorded 529 overloaded",
        529,
        recorded_headers("anthropic/error_529_overloaded.headers.json"),
        recorded("anthropic/error_529_overloaded.json"),
        K.TRANSIENT,
    ),
    (
        "recorded 401",
        401,
        recorded_headers("anthropic/error_401_authentication.headers.json"),
        recorded("anthropic/error_401_authentication.json"),
        K.AUTH,
    ),
    (
        "recorded 400",
        400,
        recorded_headers("anthropic/error_400_invalid_request.headers.json"),
        recorded("anthropic/error_400_invalid_request.json"),
        K.REQUEST_SPECIFIC,
    ),
    ("recorded 400 effort", 400, {}, recorded("anthropic/error_400_invalid_request_effort.json"), K.REQUEST_SPECIFIC),
    (
        "recorded OpenAI 401",
        401,
        recorded_headers("openai/error_401_invalid_api_key.headers.json"),
        recorded("openai/error_401_invalid_api_key.json"),
        K.AUTH,
    ),
    (
        "recorded OpenAI 429 request too large",
        429,
        {},
        recorded("openai/error_429_rate_limit_exceeded.json"),
        K.REQUEST_SPECIFIC,
    ),
    # The cases the issue threads taught.
    ("200", 200, {}, b"", K.OK),
    ("headerless bare 429 is not quota", 429, {}, BARE_429, K.RATE_LIMITED),
    (
        "429 while unified says allowed",
        429,
        {"anthropic-ratelimit-unified-status": "allowed"},
        BARE_429,
        K.RATE_LIMITED,
    ),
    ("429 with retry-after is not quota either", 429, {"retry-after": "30"}, BARE_429, K.RATE_LIMITED),
    ("408 is worth another try", 408, {}, b"", K.TRANSIENT),
    (
        "long-context extra usage 429",
        429,
        {},
        error("rate_limit_error", "Extra usage is required for long context requests."),
        K.REQUEST_SPECIFIC,
    ),
    (
        "long-context beta 400",
        400,
        {},
        error("invalid_request_error", "The long context beta is not yet available for this subscription."),
        K.REQUEST_SPECIFIC,
    ),
    (
        "413",
        413,
        {},
        error("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        K.REQUEST_SPECIFIC,
    ),
    (
        "spend limit 429",
        429,
        {"retry-after": "30"},
        error("rate_limit_error", "Spend limit reached", details={"error_code": "enforced_spend_limit_reached"}),
        K.SPEND_LIMIT,
    ),
    (
        "OpenAI insufficient_quota",
        429,
        {},
        orjson.dumps(
            {
                "error": {
                    "message": "You exceeded your current quota",
                    "type": "insufficient_quota",
                    "code": "insufficient_quota",
                }
            }
        ),
        K.SPEND_LIMIT,
    ),
    (
        "credit balance 400",
        400,
        {},
        error("invalid_request_error", "Your credit balance is too low to access the Anthropic API."),
        K.SPEND_LIMIT,
    ),
    (
        "OpenAI drained tokens 429",
        429,
        {"x-ratelimit-limit-tokens": "30000", "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1.3s"},
        orjson.dumps(
            {
                "error": {
                    "message": "Rate limit reached for gpt-4o on tokens per min (TPM)",
                    "type": "tokens",
                    "code": "rate_limit_exceeded",
                }
            }
        ),
        K.ACCOUNT_EXHAUSTED,
    ),
    ("403", 403, {}, error("permission_error", "OAuth token has been revoked"), K.AUTH),
    ("503", 503, {}, b"upstream connect error", K.TRANSIENT),
    ("500", 500, {}, error("api_error", "Internal server error"), K.TRANSIENT),
    ("502 html", 502, {}, b"<html>Bad gateway</html>", K.TRANSIENT),
    ("404 model", 404, {}, error("not_found_error", "model: claude-nope"), K.REQUEST_SPECIFIC),
]


@pytest.mark.parametrize(("status", "headers", "body", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classification_table(status: int, headers: dict[str, str], body: bytes, kind: OutcomeKind) -> None:
    """Each upstream answer is classified by status, headers and body, never by status alone."""
    assert classify(status, headers, body).kind is kind


def test_classification_keeps_a_scrubbed_reason() -> None:
    """The upstream message becomes the reason, with anything token-like redacted."""
    outcome = classify(401, {}, error("authentication_error", "bad key sk-ant-api03-abcdefghijklmnop"))
    assert outcome.reason == "bad key sk-a…"
    assert classify(429, UNIFIED_429, b"").reason == "subscription limit reached (five_hour)"


def test_secrets_never_appear_in_repr() -> None:
    """A credential's repr shows at most a 4-character prefix of its tokens."""
    text = repr(account("a"))
    assert "a-access" not in text
    assert "a-refresh" not in text
    assert "sk-a…" in text
    assert redact("short") == "…"
    assert scrub("Bearer eyJhbGciOiJIUzI1NiJ9.payload") == "Bearer eyJh…"


# --- selection --------------------------------------------------------------------------------


def test_round_robin_over_usable_credentials() -> None:
    """Credentials take turns in file order, skipping any that are not usable."""
    pool = pool_of("a", "b", "c")
    assert picks(pool, 4) == ["a", "b", "c", "a"]
    pool.disable("b")
    assert picks(pool, 3) == ["c", "a", "c"]


def test_most_headroom_is_preferred_and_ties_rotate() -> None:
    """A measured, nearly used-up credential yields to one with more headroom; equals take turns."""
    pool = pool_of("a", "b", "c")
    pool.record("a", OK, {"anthropic-ratelimit-unified-5h-utilization": "0.9"}, T0)
    pool.record("b", OK, {"anthropic-ratelimit-unified-5h-utilization": "0.5"}, T0)
    pool.record("c", OK, {"anthropic-ratelimit-unified-5h-utilization": "0.5"}, T0)
    assert picks(pool, 4) == ["b", "c", "b", "c"]
    pool.record("c", OK, {"anthropic-ratelimit-unified-5h-utilization": "0.8"}, T0 + 1)
    assert picks(pool, 2) == ["b", "b"]


def test_a_success_rereads_headroom_at_most_once_per_interval() -> None:
    """Successes inside `headroom_interval_seconds` keep the last reading; a failure always reads."""
    pool = pool_of("a", "b")
    pool.record("a", OK, {"anthropic-ratelimit-unified-5h-utilization": "0.2"}, T0)
    pool.record("a", OK, {"anthropic-ratelimit-unified-5h-utilization": "0.9"}, T0 + 0.5)
    assert pool.state("a").headroom == pytest.approx(0.8)
    pool.record("a", OK, {"anthropic-ratelimit-unified-5h-utilization": "0.9"}, T0 + 1.0)
    assert pool.state("a").headroom == pytest.approx(0.1)
    assert pool.state("a").requests == 3
    pool.record(
        "a", Outcome(OutcomeKind.TRANSIENT, 529), {"anthropic-ratelimit-unified-5h-utilization": "0.95"}, T0 + 1.1
    )
    assert pool.state("a").headroom == pytest.approx(0.05)


def test_unmeasured_credentials_count_as_full() -> None:
    """A credential never measured is assumed to have full headroom."""
    pool = pool_of("a", "b")
    pool.record(
        "a",
        OK,
        {
            "anthropic-ratelimit-tokens-limit": "100",
            "anthropic-ratelimit-tokens-remaining": "50",
            "anthropic-ratelimit-tokens-reset": "2030-01-01T00:00:00Z",
        },
        T0,
    )
    assert picks(pool, 2) == ["b", "b"]


def test_headroom_goes_stale_when_its_window_resets() -> None:
    """Once the binding limit's reset has passed, an old low headroom no longer counts against it."""
    pool = pool_of("a", "b")
    pool.record(
        "a",
        OK,
        {
            "anthropic-ratelimit-unified-5h-utilization": "0.95",
            "anthropic-ratelimit-unified-5h-reset": str(int(T0 + 100)),
        },
        T0,
    )
    assert picks(pool, 2, T0) == ["b", "b"]
    assert picks(pool, 2, T0 + 100) == ["a", "b"]


def test_unknown_pin_is_not_found_and_names_the_accounts() -> None:
    """Pinning a name the pool does not have is a 404 that lists the names it has."""
    with pytest.raises(NotFound, match=r"'zed'.*known: a, b"):
        pool_of("a", "b").select(T0, pin="zed")


def test_unusable_pin_is_unavailable_and_says_why() -> None:
    """Pinning a disabled or cooling credential is a 503 naming its state and, if limited, until when."""
    pool = pool_of("a", "b")
    pool.disable("a")
    with pytest.raises(ServiceUnavailable, match=r"'a'.*disabled"):
        pool.select(T0, pin="a")
    pool.record("b", Outcome(K.ACCOUNT_EXHAUSTED, 429, "quota"), {"retry-after": "90"}, T0)
    with pytest.raises(ServiceUnavailable, match=r"rate_limited until 2027-01-15T08:01:30Z") as info:
        pool.select(T0, pin="b")
    assert info.value.headers["retry-after"] == "90"


def test_pin_does_not_move_the_rotation() -> None:
    """A pinned request leaves the round-robin cursor where it was."""
    pool = pool_of("a", "b", "c")
    assert pool.select(T0).name == "a"
    assert pool.select(T0, pin="c").name == "c"
    assert pool.select(T0).name == "b"


def test_all_rate_limited_is_429_with_the_earliest_reset() -> None:
    """When every credential is cooling down, the client gets 429 and retry-after to the first reset."""
    pool = pool_of("a", "b", "c")
    for name, wait in (("a", 300), ("b", 120), ("c", 900)):
        pool.record(name, Outcome(K.ACCOUNT_EXHAUSTED, 429), {"retry-after": str(wait)}, T0)
    with pytest.raises(RateLimited) as info:
        pool.select(T0 + 20)
    assert info.value.retry_after == pytest.approx(100)
    assert info.value.headers["retry-after"] == "100"


def test_nothing_usable_is_503_with_counts() -> None:
    """Without a rate-limited credential to wait for, the 503 says how many are in which state."""
    pool = pool_of("a", "b", "c")
    pool.record("a", Outcome(K.ACCOUNT_EXHAUSTED, 429), {"retry-after": "60"}, T0)
    pool.disable("a")  # its cooldown will end, but it stays disabled: nothing to wait for
    pool.record("b", Outcome(K.AUTH, 401), {}, T0)
    pool.record("c", Outcome(K.AUTH, 401), {}, T0)
    with pytest.raises(ServiceUnavailable, match="2 auth_error, 1 disabled"):
        pool.select(T0)
    with pytest.raises(ServiceUnavailable, match="no credentials configured"):
        CredentialPool([]).select(T0)


def test_expired_oauth_token_is_skipped() -> None:
    """An OAuth account whose access token has expired is not chosen until it is refreshed."""
    pool = CredentialPool([account("a", expires_at=T0 - 1), account("b")])
    assert picks(pool, 2) == ["b", "b"]
    pool.tokens_refreshed("a", account("a", expires_at=T0 + 3600, token="sk-ant-oat01-new"), T0)
    assert "a" in picks(pool, 2)


# --- cooldowns --------------------------------------------------------------------------------


def test_cooldown_is_honoured_then_lifted_by_the_clock() -> None:
    """A quota 429 benches its credential until the reset, and the clock alone brings it back."""
    pool = pool_of("a", "b")
    pool.record("a", classify(429, UNIFIED_429, b""), UNIFIED_429, T0)
    assert picks(pool, 2, T0 + 683) == ["b", "b"]
    assert pool.snapshot(T0 + 683)["accounts"][0]["state"] == "rate_limited"
    assert "a" in picks(pool, 2, T0 + 684)
    assert pool.snapshot(T0 + 684)["accounts"][0]["rateLimitedUntil"] is None


@pytest.mark.parametrize(
    ("outcome", "headers", "until"),
    [
        (Outcome(K.ACCOUNT_EXHAUSTED, 429), {}, T0 + 77),  # no reset given: the configured default
        (Outcome(K.ACCOUNT_EXHAUSTED, 429), {"retry-after": "0"}, T0 + 1),  # floor
        (Outcome(K.SPEND_LIMIT, 429), {"retry-after": "5"}, T0 + 86400),
        (Outcome(K.RATE_LIMITED, 429), {"retry-after": "30"}, T0 + 30),  # the provider's word
        (Outcome(K.RATE_LIMITED, 429), {}, T0 + 5),  # no hint: a moment, so the next go elsewhere
        (Outcome(K.RATE_LIMITED, 429), {"retry-after": "86400"}, T0 + 900),  # capped
        (Outcome(K.TRANSIENT, 529), {"retry-after": "5"}, None),
        (Outcome(K.REQUEST_SPECIFIC, 429), {"retry-after": "5"}, None),
        (Outcome(K.AUTH, 401), {}, None),
    ],
)
def test_cooldown_by_outcome(outcome: Outcome, headers: dict[str, str], until: float | None) -> None:
    """Quota, rate limits and spend limits bench a credential; overload, request errors and auth never do."""
    pool = pool_of("a", settings=PoolSettings(exhausted_cooldown_seconds=77))
    pool.record("a", outcome, headers, T0)
    assert pool.state("a").rate_limited_until == until


def test_a_shorter_reset_never_shortens_a_cooldown() -> None:
    """Two quota answers with different resets leave the later one in force."""
    pool = pool_of("a")
    pool.record("a", Outcome(K.ACCOUNT_EXHAUSTED, 429), {"retry-after": "600"}, T0)
    pool.record("a", Outcome(K.ACCOUNT_EXHAUSTED, 429), {"retry-after": "10"}, T0 + 1)
    assert pool.state("a").rate_limited_until == T0 + 600


def test_counters_and_last_error() -> None:
    """Every reported attempt counts as a request; failures of the credential count as errors."""
    pool = pool_of("a")
    pool.record("a", OK, {}, T0)
    pool.record("a", classify(529, {}, recorded("anthropic/error_529_overloaded.json")), {}, T0)
    pool.record("a", Outcome(K.REQUEST_SPECIFIC, 400, "bad request"), {}, T0)
    acct = pool.snapshot(T0)["accounts"][0]
    assert (acct["requests"], acct["errors"], acct["lastError"]) == (3, 1, "Overloaded")


def test_a_401_for_a_token_already_replaced_is_ignored() -> None:
    """A 401 that answered the old token after a refresh replaced it does not condemn the new one."""
    old = account("a")
    pool = CredentialPool([old])
    pool.tokens_refreshed("a", with_tokens(old, "sk-ant-oat01-fresh", None, T0 + 9000), T0)
    pool.record("a", Outcome(K.AUTH, 401), {}, T0, used=old)
    assert pool.snapshot(T0)["accounts"][0]["state"] == "available"
    pool.record("a", Outcome(K.AUTH, 401), {}, T0, used=pool.get("a"))
    assert pool.snapshot(T0)["accounts"][0]["state"] == "auth_error"
    assert pool.state("a").needs_refresh


def test_refresh_keeps_the_cooldown() -> None:
    """New tokens prove the account can log in, not that its quota is back (fork bug 4)."""
    pool = CredentialPool([account("a")])
    pool.record("a", Outcome(K.ACCOUNT_EXHAUSTED, 429), {"retry-after": "3600"}, T0)
    pool.tokens_refreshed("a", account("a", expires_at=T0 + 99999, token="sk-ant-oat01-new"), T0)
    assert pool.snapshot(T0 + 10)["accounts"][0]["state"] == "rate_limited"


def test_enable_and_disable() -> None:
    """Disable takes a credential out of rotation; enable clears every bench and reports the old state."""
    pool = pool_of("a", "b")
    assert pool.disable("a", T0) == "available"
    assert picks(pool, 2) == ["b", "b"]
    pool.record("a", Outcome(K.ACCOUNT_EXHAUSTED, 429), {}, T0)
    assert pool.enable("a", T0) == "disabled"
    assert pool.snapshot(T0)["accounts"][0]["state"] == "available"
    with pytest.raises(NotFound):
        pool.enable("zed")


def test_the_pool_changes_only_through_record() -> None:
    """A 401 the proxy produced itself (bad client key) never reaches the pool, so no account is touched."""
    pool = CredentialPool([account("a"), key("b")])
    before = pool.snapshot(T0)
    rejected = AuthenticationFailed("invalid client api key")  # answered by the proxy's own auth check
    assert rejected.http_status == 401
    pool.record("client", Outcome(K.AUTH, 401), {}, T0)  # even if misreported, an unknown name is ignored
    assert pool.snapshot(T0) == before


# --- reload -----------------------------------------------------------------------------------


def test_reload_keeps_state_and_cursor() -> None:
    """A reload keeps each credential's cooldown and resumes rotation after the last one served."""
    pool = pool_of("a", "b", "c")
    assert picks(pool, 2) == ["a", "b"]
    pool.record("a", Outcome(K.ACCOUNT_EXHAUSTED, 429), {"retry-after": "600"}, T0)
    pool.replace_credentials([key("a"), key("b"), key("c"), key("d")])
    assert picks(pool, 3) == ["c", "d", "b"]
    assert pool.snapshot(T0)["accounts"][0]["state"] == "rate_limited"


def test_reload_by_name_survives_reordering() -> None:
    """The cursor is a name: reordering the file does not restart the rotation."""
    pool = pool_of("a", "b", "c")
    assert picks(pool, 1) == ["a"]
    pool.replace_credentials([key("c"), key("b"), key("a")])
    assert picks(pool, 3) == ["c", "b", "a"]


def test_removed_credential_is_never_chosen() -> None:
    """After a reload drops a credential, selection never returns it, even if it held the cursor."""
    pool = pool_of("a", "b", "c")
    assert picks(pool, 2) == ["a", "b"]
    pool.replace_credentials([key("a"), key("c")])
    assert picks(pool, 6) == ["c", "a", "c", "a", "c", "a"]
    with pytest.raises(NotFound):
        pool.select(T0, pin="b")


def test_in_flight_requests_keep_their_credential_across_a_reload() -> None:
    """A request holding a removed credential can still report; the report is simply dropped."""
    pool = pool_of("a", "b")
    held = pool.select(T0)
    pool.replace_credentials([key("b")])
    assert held.secret.startswith("sk-ant")
    pool.record(held.name, Outcome(K.ACCOUNT_EXHAUSTED, 429), {}, T0)
    assert pool.names == ["b"]


def test_reload_with_new_tokens_clears_auth_error() -> None:
    """Changed tokens for a name in auth_error give it a fresh chance; unchanged ones do not."""
    pool = CredentialPool([account("a")])
    pool.record("a", Outcome(K.AUTH, 401), {}, T0)
    pool.replace_credentials([account("a")])
    assert pool.snapshot(T0)["accounts"][0]["state"] == "auth_error"
    pool.replace_credentials([account("a", expires_at=T0 + 99999, token="sk-ant-oat01-relogin")])
    assert pool.snapshot(T0)["accounts"][0]["state"] == "available"


def test_reload_with_older_tokens_keeps_the_newer() -> None:
    """A stale file (older refresh token than the pool holds) cannot roll back a rotation."""
    current = account("a", expires_at=T0 + 9000, token="sk-ant-oat01-newest")
    pool = CredentialPool([current])
    stale = Credential("a", "oauth", "sk-ant-oat01-old", "sk-ant-ort01-spent", T0 + 10)
    warnings = pool.replace_credentials([stale])
    assert pool.get("a") == current
    assert "older tokens" in warnings[0]


# --- status and persistence -------------------------------------------------------------------


def test_snapshot_shape_and_true_next_account() -> None:
    """`GET /status` has the documented camelCase shape and nextAccount is what select returns next."""
    pool = CredentialPool([account("a"), account("b", expires_at=T0 - 5), key("c")])
    pool.select(T0)
    pool.record("a", OK, {"anthropic-ratelimit-unified-5h-utilization": "0.25"}, T0)
    snap = pool.snapshot(T0)
    assert snap["nextAccount"] == "c" == pool.select(T0).name
    assert (
        snap["totalAccounts"],
        snap["availableAccounts"],
        snap["rateLimitedAccounts"],
        snap["authErrorAccounts"],
        snap["expiredAccounts"],
    ) == (3, 2, 0, 0, 1)
    a = snap["accounts"][0]
    assert set(a) >= {
        "name",
        "state",
        "tokenExpiresAt",
        "tokenExpiresIn",
        "rateLimitedUntil",
        "cooldownReason",
        "lastUsed",
        "lastError",
        "requests",
        "errors",
        "headroom",
        "lastRefreshAt",
    }
    assert (a["tokenExpiresAt"], a["tokenExpiresIn"], a["lastUsed"]) == (
        "2027-01-15T16:00:00Z",
        28800,
        "2027-01-15T08:00:00Z",
    )
    assert (a["headroom"], a["utilization"]) == (0.75, {"5h": 0.25})
    assert snap["accounts"][1]["tokenExpiresIn"] == -5
    assert snap["accounts"][2]["tokenExpiresAt"] is None
    assert b"sk-ant" not in orjson.dumps(snap)


def test_state_survives_a_restart() -> None:
    """Cooldowns and disabled flags persist; lapsed cooldowns and unknown names are dropped."""
    pool = pool_of("a", "b", "c")
    pool.record("a", Outcome(K.ACCOUNT_EXHAUSTED, 429, "quota"), {"retry-after": "600"}, T0)
    pool.record("c", Outcome(K.ACCOUNT_EXHAUSTED, 429), {"retry-after": "5"}, T0)
    pool.disable("b")
    saved = orjson.loads(orjson.dumps(pool.to_state(T0)))
    saved["accounts"]["gone"] = {"disabled": True}
    fresh = pool_of("a", "b", "c")
    warnings = fresh.load_state(saved, T0 + 10)
    states = [a["state"] for a in fresh.snapshot(T0 + 10)["accounts"]]
    assert states == ["rate_limited", "disabled", "available"]
    assert fresh.state("a").cooldown_reason == "quota"
    assert warnings == ["state file: 'gone' is not a known account; ignored"]


# --- the failover plan ------------------------------------------------------------------------


def drive(
    pool: CredentialPool, outcomes: list[Outcome], *, pin: str | None = None, refresh_ok: bool = True
) -> tuple[list[str], Step | None]:
    """Run a plan as the shell would, answering each attempt with the next outcome."""
    plan = FailoverPlan(pool, pin=pin, now=T0)
    tried: list[str] = []
    cred = plan.next(T0)
    for outcome in outcomes:
        tried.append(cred.name)
        step = plan.report(outcome, {"retry-after": "60"} if outcome.next_credential else {}, T0)
        if step in (Step.DONE, Step.RELAY):
            return tried, step
        if step is Step.REFRESH and refresh_ok:
            pool.tokens_refreshed(cred.name, with_tokens(cred, cred.secret + "-new", None, T0 + 9999), T0)
        cred = plan.next(T0)
    return tried, None


EXHAUSTED, TRANSIENT = Outcome(K.ACCOUNT_EXHAUSTED, 429), Outcome(K.TRANSIENT, 529)
AUTH, SPECIFIC = Outcome(K.AUTH, 401), Outcome(K.REQUEST_SPECIFIC, 400)


@pytest.mark.parametrize(
    ("outcomes", "tried", "last"),
    [
        ([OK], ["a"], Step.DONE),
        ([EXHAUSTED, OK], ["a", "b"], Step.DONE),
        ([TRANSIENT, TRANSIENT, TRANSIENT], ["a", "b", "c"], Step.RELAY),
        ([SPECIFIC], ["a"], Step.RELAY),
        ([Outcome(K.SPEND_LIMIT, 429), EXHAUSTED, OK], ["a", "b", "c"], Step.DONE),
    ],
)
def test_plan_fails_over_on_credential_problems_only(outcomes: list[Outcome], tried: list[str], last: Step) -> None:
    """Quota, overload, spend and auth move to the next credential; a request-specific error goes back."""
    assert drive(pool_of("a", "b", "c"), outcomes) == (tried, last)


def test_transient_failover_benches_nobody() -> None:
    """Overloaded answers on every credential leave them all available."""
    pool = pool_of("a", "b")
    drive(pool, [TRANSIENT, TRANSIENT])
    assert pool.snapshot(T0)["availableAccounts"] == 2


def test_pinned_plan_never_moves() -> None:
    """With X-Account-Name, a quota answer is relayed instead of trying another account."""
    pool = pool_of("a", "b")
    assert drive(pool, [EXHAUSTED], pin="b") == (["b"], Step.RELAY)
    assert pool.snapshot(T0)["accounts"][1]["state"] == "rate_limited"


def test_oauth_401_refreshes_once_and_retries_the_same_account() -> None:
    """An OAuth 401 asks for one refresh, then retries the same account with the new token."""
    pool = CredentialPool([account("a"), account("b")])
    assert drive(pool, [AUTH, OK]) == (["a", "a"], Step.DONE)
    assert pool.get("a").secret.endswith("-new")  # type: ignore[union-attr]
    assert pool.snapshot(T0)["accounts"][0]["state"] == "available"


def test_oauth_401_after_refresh_moves_on() -> None:
    """If the refreshed token is refused too, the account is marked and the next one tried."""
    pool = CredentialPool([account("a"), account("b")])
    assert drive(pool, [AUTH, AUTH, OK]) == (["a", "a", "b"], Step.DONE)
    assert pool.snapshot(T0)["accounts"][0]["state"] == "auth_error"


def test_failed_refresh_moves_to_the_next_account() -> None:
    """When the refresh does not bring the account back, the plan continues with another."""
    pool = CredentialPool([account("a"), account("b")])
    assert drive(pool, [AUTH, OK], refresh_ok=False) == (["a", "b"], Step.DONE)


def test_pinned_failed_refresh_says_why() -> None:
    """A pinned account whose refresh failed answers 503 with its auth_error state."""
    pool = CredentialPool([account("a"), account("b")])
    with pytest.raises(ServiceUnavailable, match="auth_error"):
        drive(pool, [AUTH, OK], pin="a", refresh_ok=False)


def test_plan_raises_when_nothing_is_usable_at_the_start() -> None:
    """A plan over a fully rate-limited pool raises the 429 the client should get."""
    pool = pool_of("a")
    pool.record("a", EXHAUSTED, {"retry-after": "30"}, T0)
    with pytest.raises(RateLimited):
        FailoverPlan(pool, now=T0).next(T0)


@given(
    size=st.integers(min_value=1, max_value=5),
    kinds=st.lists(st.sampled_from(list(K)), max_size=20),
    oauth=st.booleans(),
    refresh_ok=st.booleans(),
)
def test_plan_never_exceeds_pool_size(size: int, kinds: list[OutcomeKind], oauth: bool, refresh_ok: bool) -> None:
    """Whatever the upstream answers, a request makes one attempt per credential plus one refresh retry."""
    creds = [account(f"n{i}") if oauth else key(f"n{i}") for i in range(size)]
    pool = CredentialPool(creds)
    try:
        tried, _ = drive(pool, [Outcome(k, 400) for k in kinds] + [OK] * 10, refresh_ok=refresh_ok)
    except (RateLimited, ServiceUnavailable):
        return
    assert len(tried) <= size + (1 if oauth else 0)
    assert all(tried.count(n) <= 2 for n in set(tried))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("sk-ant-api03-abcdefgh", "sk-a…efgh"),
        ("short-key", "…"),
        ("", ""),
        ("${OPENAI_API_KEY}", "${OPENAI_API_KEY}"),
    ],
)
def test_a_configured_key_shows_only_its_ends(value: str, shown: str) -> None:
    """The providers API and `config show` tell keys apart by their ends; env references are no secret."""
    from ccproxy_core.core.redaction import mask_setting

    assert mask_setting(value) == shown


# --- rejected keys come back ------------------------------------------------------------------


def test_a_rejected_key_is_reprobed_by_itself_with_backoff() -> None:
    """A 401 benches an API key; after the back-off one request (only one) tries it again, and a
    second rejection doubles the wait."""
    pool = pool_of("a", settings=PoolSettings(auth_reprobe_seconds=30))
    refused = Outcome(K.AUTH, 401, "invalid x-api-key")
    pool.record("a", refused, {}, T0)
    assert not pool.has_usable(T0 + 29)
    assert pool.select(T0 + 30).name == "a"  # the re-probe
    assert not pool.has_usable(T0 + 30.5), "one probe at a time"
    pool.record("a", refused, {}, T0 + 31)
    assert not pool.has_usable(T0 + 31 + 59)
    assert pool.has_usable(T0 + 31 + 60)


def test_a_reprobe_that_succeeds_brings_the_key_back() -> None:
    pool = pool_of("a", settings=PoolSettings(auth_reprobe_seconds=30))
    pool.record("a", Outcome(K.AUTH, 401, "no"), {}, T0)
    pool.select(T0 + 30)
    pool.record("a", Outcome(K.OK), {}, T0 + 31)
    assert pool.snapshot(T0 + 31)["accounts"][0]["state"] == "available"
    assert picks(pool, 3, T0 + 32) == ["a", "a", "a"]


def test_every_key_rejected_is_a_403_naming_the_provider_keys_and_messages() -> None:
    """Not retryable, and it says what to fix."""
    pool = pool_of("a", "b")
    pool.record("a", Outcome(K.AUTH, 401, "invalid x-api-key"), {}, T0)
    pool.record("b", Outcome(K.AUTH, 403, "key disabled"), {}, T0)
    with pytest.raises(ProxyError) as info:
        pool.select(T0 + 1)
    err = info.value
    assert err.http_status == 403 and err.type == "permission_error"
    assert "a: invalid x-api-key" in err.message and "b: key disabled" in err.message
    assert "fix the key in the config" in err.message


@pytest.mark.parametrize(
    ("outcome", "credential", "provider", "breaker"),
    [
        (Outcome(K.OK), False, False, False),
        (Outcome(K.ACCOUNT_EXHAUSTED, 429), True, True, True),
        (Outcome(K.RATE_LIMITED, 429), True, True, True),
        (Outcome(K.TRANSIENT, 529), True, True, True),
        (Outcome(K.SPEND_LIMIT, 402), True, True, False),
        (Outcome(K.AUTH, 401), True, True, False),
        (Outcome(K.REQUEST_SPECIFIC, 400), False, False, False),
        (Outcome(K.NO_ANSWER, None), False, True, True),
    ],
)
def test_one_outcome_answers_every_reader(outcome: Outcome, credential: bool, provider: bool, breaker: bool) -> None:
    """The pool's loop, the provider failover and the breaker read the same `Outcome`."""
    assert (outcome.next_credential, outcome.next_provider, outcome.breaker_failure) == (credential, provider, breaker)


def test_a_chatgpt_usage_limit_benches_the_account_until_the_body_says() -> None:
    """ChatGPT's 429 `usage_limit_reached` is the account's quota; `resets_in_seconds` sets the cooldown."""
    body = orjson.dumps(
        {
            "error": {
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "resets_in_seconds": 7200,
            }
        }
    )
    outcome = classify(429, {}, body)
    assert (outcome.kind, outcome.resets_in) == (OutcomeKind.ACCOUNT_EXHAUSTED, 7200.0)
    pool = pool_of("a", "b")
    pool.record("a", outcome, {}, T0)
    assert pool.state("a").rate_limited_until == T0 + 7200
    without_hint = classify(429, {}, orjson.dumps({"error": {"type": "usage_limit_reached", "message": "x"}}))
    assert (without_hint.kind, without_hint.resets_in) == (OutcomeKind.ACCOUNT_EXHAUSTED, None)
