"""Routing: which provider and model a request goes to, and where it goes when that fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ccproxy_core.core.errors import InvalidRequest, NotFound, ServiceUnavailable
from ccproxy_core.core.routing import RequestView, Route, RoutingTable, fallback_chain, route

JSON = dict[str, Any]
FIXTURES = Path(__file__).parents[2] / "fixtures" / "claude-code"

CONFIG: dict[str, Any] = {
    "providers": [
        {"name": "anthropic", "kind": "anthropic", "models": ["claude-sonnet-4-5"]},
        {"name": "openai", "kind": "openai", "models": ["gpt-4.1", "gpt-4.1-mini"]},
        {"name": "deepseek", "kind": "openai", "models": ["deepseek-chat", "deepseek-reasoner"]},
        {"name": "gemini", "kind": "openai", "models": []},
        {"name": "off", "kind": "openai", "enabled": False, "models": ["x"]},
    ],
    "routes": {
        "default": {"provider": "anthropic", "model": "claude-sonnet-4-5"},
        "background": {"provider": "openai", "model": "gpt-4.1-mini"},
        "longContext": {"provider": "gemini", "model": "gemini-2.5-pro"},
        "think": {"provider": "deepseek", "model": "deepseek-reasoner"},
        "webSearch": {"provider": "openai", "model": "gpt-4.1"},
        "gpt-4.1": {"provider": "openai", "model": "gpt-4.1"},
        "claude-opus-*": {"provider": "openai", "model": "gpt-4.1"},
        "claude-opus-4-1*": {"provider": "deepseek", "model": "deepseek-chat"},
        "claude-*": {"provider": "anthropic", "model": ""},
    },
    "router": {
        "long_context_threshold": 60000,
        "fallback": {"default": ["anthropic", "openai", "deepseek"], "think": ["openai"]},
    },
}
TABLE = RoutingTable.from_config(CONFIG)
SCENARIO_ROUTES = {
    k: v for k, v in CONFIG["routes"].items() if k in ("default", "background", "longContext", "think", "webSearch")
}


def view(model: str = "claude-sonnet-4-5", **kw: Any) -> RequestView:
    return RequestView(model=model, **kw)


def table(**overrides: Any) -> RoutingTable:
    config = {**CONFIG, **overrides}
    return RoutingTable.from_config(config)


# --- building the inputs ---------------------------------------------------------------------------


def test_table_keeps_enabled_providers_in_config_order() -> None:
    """Disabled providers are not part of the table; order is the config's."""
    assert TABLE.providers == ("anthropic", "openai", "deepseek", "gemini")
    assert TABLE.provider_models["deepseek"] == ("deepseek-chat", "deepseek-reasoner")
    assert TABLE.fallback["think"] == ("openai",)


@pytest.mark.parametrize(
    ("body", "budget", "effort", "flag"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 31999}}, 31999, "", False),
        ({"thinking": {"type": "enabled", "budget_tokens": True}}, 0, "", False),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}}, 0, "max", False),
        ({"thinking": {"type": "disabled"}, "output_config": {"effort": "max"}}, 0, "", False),
        ({"thinking": {"type": "adaptive", "budget_tokens": 50000}}, 0, "", False),
        ({"thinking": True}, 0, "", True),  # Go ccproxy's clients send the boolean
        ({"thinking": None, "output_config": {"effort": "max"}}, 0, "", False),
    ],
)
def test_the_view_reads_budget_effort_and_the_boolean(body: JSON, budget: int, effort: str, flag: bool) -> None:
    """A budget counts only on enabled thinking, an effort only while thinking is on, `true` as itself."""
    got = RequestView.from_anthropic({"model": "m", **body}, {}, 0)
    assert (got.thinking_budget, got.effort, got.think_flag) == (budget, effort, flag)


@pytest.mark.parametrize(
    ("tools", "expected"),
    [
        ([{"type": "web_search_20250305", "name": "web_search"}], True),
        ([{"type": "web_search_20260101", "name": "web_search"}], True),
        ([{"name": "Bash", "input_schema": {}}], False),
        ([{"type": "web_fetch_20250910", "name": "web_fetch"}], False),
        (None, False),
    ],
)
def test_web_search_is_any_tool_whose_type_starts_with_web_search(tools: Any, expected: bool) -> None:
    """A server tool typed `web_search_*` marks the request as a web search."""
    assert RequestView.from_anthropic({"model": "m", "tools": tools}, {}, 0).has_web_search is expected


def test_view_reads_the_provider_header_in_any_case() -> None:
    """X-Provider is found whatever the case of the header name; empty means absent."""
    assert RequestView.from_anthropic({"model": "m"}, {"X-Provider": "openai"}, 5).provider_header == "openai"
    assert RequestView.from_anthropic({"model": "m"}, {"x-provider": " "}, 5).provider_header is None


def capture(name: str) -> JSON:
    body: JSON = json.loads((FIXTURES / name).read_text())["body"]
    return body


def test_real_claude_code_captures() -> None:
    """Claude Code's own haiku and main requests carry thinking at its defaults, and no web search."""
    haiku_view = RequestView.from_anthropic(capture("model-haiku-0001.json"), {}, 1000)
    assert (haiku_view.model, haiku_view.thinking_budget) == ("claude-haiku-4-5-20251001", 31999)
    main_view = RequestView.from_anthropic(capture("text-0001.json"), {}, 1000)
    assert (main_view.thinking_budget, main_view.effort, main_view.has_web_search) == (0, "high", False)
    # The haiku request has thinking enabled, and still goes to background.
    assert route(haiku_view, table(routes=SCENARIO_ROUTES)).scenario == "background"


@pytest.mark.parametrize("name", ["text-0001.json", "tool-read-0001.json", "interactive-tui-0003.json"])
def test_claude_code_main_requests_at_its_default_thinking_go_to_default(name: str) -> None:
    """Adaptive thinking at effort "high", sent on every main request, is not "thinking hard"."""
    got = route(RequestView.from_anthropic(capture(name), {}, 1000), table(routes=SCENARIO_ROUTES))
    assert (got.scenario, got.provider) == ("default", "anthropic")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 63999}}, "think: budget_tokens 63999 >= 32000"),
        ({"thinking": {"type": "enabled", "budget_tokens": 32000}}, "think: budget_tokens 32000 >= 32000"),
        ({"output_config": {"effort": "max"}}, "think: effort max >= xhigh"),
        ({"output_config": {"effort": "xhigh"}}, "think: effort xhigh >= xhigh"),
        ({"thinking": True}, "think: thinking: true"),
    ],
)
def test_a_claude_code_request_that_asks_to_think_hard_goes_to_think(change: JSON, reason: str) -> None:
    """The recorded main request with a high explicit budget, a higher effort, or `thinking: true` goes to think."""
    view_ = RequestView.from_anthropic({**capture("text-0001.json"), **change}, {}, 1000)
    assert route(view_, table(routes=SCENARIO_ROUTES)) == Route("deepseek", "deepseek-reasoner", reason, "think")


@pytest.mark.parametrize(
    ("router", "change", "scenario"),
    [
        ({}, {"thinking": {"type": "enabled", "budget_tokens": 31999}}, "default"),  # Claude Code's default
        ({"think_budget_threshold": 16000}, {"thinking": {"type": "enabled", "budget_tokens": 31999}}, "think"),
        ({"think_budget_threshold": 16000}, {"thinking": {"type": "enabled", "budget_tokens": 8000}}, "default"),
        ({"think_effort": "high"}, {}, "think"),  # effort "high", as recorded
        ({"think_effort": "max"}, {"output_config": {"effort": "xhigh"}}, "default"),
        ({"think_effort": "low"}, {"thinking": {"type": "disabled"}}, "default"),
    ],
)
def test_the_think_thresholds_are_configurable(router: JSON, change: JSON, scenario: str) -> None:
    """`router.think_budget_threshold` and `router.think_effort` move the line; disabled thinking never thinks."""
    t = table(routes=SCENARIO_ROUTES, router=router)
    assert route(RequestView.from_anthropic({**capture("text-0001.json"), **change}, {}, 1000), t).scenario == scenario


def test_an_unknown_think_effort_is_refused() -> None:
    """The table takes only Anthropic's effort levels."""
    with pytest.raises(ValueError, match="think_effort"):
        table(router={"think_effort": "huge"})


# --- the rules, one by one -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_view", "provider", "model", "reason", "scenario"),
    [
        (view("openai,gpt-4.1-mini"), "openai", "gpt-4.1-mini", "explicit provider,model", "explicit"),
        (view("deepseek-chat@deepseek"), "deepseek", "deepseek-chat", "explicit model@provider", "explicit"),
        (view("claude-x", provider_header="gemini"), "gemini", "claude-x", "explicit X-Provider header", "explicit"),
        (view("OpenAI,gpt-4.1"), "openai", "gpt-4.1", "explicit provider,model", "explicit"),
        (view("gpt-4.1"), "openai", "gpt-4.1", "route gpt-4.1", "gpt-4.1"),
        (view("claude-opus-4-5"), "openai", "gpt-4.1", "route claude-opus-*", "claude-opus-*"),
        (view("claude-opus-4-1-20250805"), "deepseek", "deepseek-chat", "route claude-opus-4-1*", "claude-opus-4-1*"),
        (
            view("claude-3-7-sonnet", token_estimate=72000),
            "anthropic",
            "claude-3-7-sonnet",
            "route claude-*",
            "claude-*",
        ),
        (
            view("glm", token_estimate=72000),
            "gemini",
            "gemini-2.5-pro",
            "longContext: ~72000 tokens > 60000",
            "longContext",
        ),
        (view("glm", has_web_search=True), "openai", "gpt-4.1", "webSearch: web_search tool", "webSearch"),
        (view("glm-haiku"), "openai", "gpt-4.1-mini", "background: haiku model", "background"),
        (
            view("glm", thinking_budget=40000),
            "deepseek",
            "deepseek-reasoner",
            "think: budget_tokens 40000 >= 32000",
            "think",
        ),
        (view("glm"), "anthropic", "claude-sonnet-4-5", "default", "default"),
    ],
)
def test_each_rule(request_view: RequestView, provider: str, model: str, reason: str, scenario: str) -> None:
    """Each rule picks its route and says why in a short reason."""
    assert route(request_view, TABLE) == Route(provider, model, reason, scenario)


def test_no_route_at_all_is_a_transparent_proxy_to_the_first_provider() -> None:
    """Without routes, the first enabled provider gets the model unchanged (zero config)."""
    got = route(view("claude-sonnet-4-5"), table(routes={}))
    assert got == Route("anthropic", "claude-sonnet-4-5", "passthrough: no default route", "default")


def test_no_default_route_prefers_the_preferred_provider() -> None:
    """The passthrough goes to router.preferred_provider when one is set."""
    t = table(routes={}, router={"preferred_provider": "deepseek"})
    assert route(view("deepseek-chat"), t).provider == "deepseek"


def test_no_enabled_provider_is_a_503() -> None:
    """With nothing enabled there is nowhere to go, and the error says what to add."""
    with pytest.raises(ServiceUnavailable, match="providers"):
        route(view(), RoutingTable.from_config({"providers": [], "routes": {}}))


# --- explicit choices ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_view",
    [
        view("mistral,mistral-large"),
        view("mistral-large@mistral"),
        view("claude-x", provider_header="mistral"),
        view("x,whatever"),
        view("x@off"),  # disabled providers cannot be chosen either
    ],
)
def test_unknown_explicit_provider_is_a_404_naming_the_configured_ones(request_view: RequestView) -> None:
    """An explicit provider that is not configured is refused with the list of real ones."""
    with pytest.raises(NotFound) as info:
        route(request_view, TABLE)
    assert "anthropic, openai, deepseek, gemini" in info.value.message
    assert info.value.http_status == 404


@pytest.mark.parametrize("model", ["openai,", "openai, ", ""])
def test_explicit_provider_without_a_model_is_a_400(model: str) -> None:
    """`provider,` with nothing after the comma (or no model at all) is a client error."""
    with pytest.raises(InvalidRequest, match="provider,model"):
        route(view(model, provider_header="openai" if not model else None), TABLE)


def test_vertex_version_suffix_is_not_a_provider() -> None:
    """`claude-3-5-sonnet@20240620` is a Vertex model name, not `model@provider`."""
    got = route(view("claude-3-5-sonnet@20240620"), table(routes={}))
    assert (got.provider, got.model) == ("anthropic", "claude-3-5-sonnet@20240620")


def test_header_wins_over_the_provider_written_in_the_model() -> None:
    """With both, X-Provider picks the provider and the model part of the name is kept."""
    got = route(view("deepseek,deepseek-chat", provider_header="openai"), TABLE)
    assert (got.provider, got.model) == ("openai", "deepseek-chat")


def test_explicit_is_never_rerouted_by_an_open_circuit() -> None:
    """The client asked for exactly this pair; a broken provider is reported, not replaced."""
    got = route(view("deepseek,deepseek-chat"), TABLE, frozenset({"deepseek"}))
    assert got.provider == "deepseek"


# --- precedence ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_view", "scenario"),
    [
        # explicit beats a model route
        (view("openai,claude-opus-4-5"), "explicit"),
        # a model route beats long context, web search, haiku and thinking
        (view("gpt-4.1", token_estimate=999_999, has_web_search=True, think_flag=True), "gpt-4.1"),
        # long context beats web search, background and think
        (view("glm-haiku", token_estimate=60001, has_web_search=True, think_flag=True), "longContext"),
        # the threshold itself is not above the threshold
        (view("glm", token_estimate=60000), "default"),
        # web search beats background and think
        (view("glm-haiku", has_web_search=True, think_flag=True), "webSearch"),
        # background beats think: Claude Code's haiku requests have thinking enabled
        (view("glm-HAIKU", think_flag=True), "background"),
    ],
)
def test_precedence(request_view: RequestView, scenario: str) -> None:
    """Earlier rules win over later ones."""
    assert route(request_view, TABLE).scenario == scenario


@pytest.mark.parametrize(
    "model", ["claude-3-5-haiku-20241022", "claude-haiku-4-5", "claude-haiku-4-5-20251001", "Claude-3-Haiku"]
)
def test_every_haiku_name_is_background(model: str) -> None:
    """A substring test catches old and new haiku names alike (Go's prefix test missed 4.5)."""
    assert route(view(model), table(routes=SCENARIO_ROUTES)).scenario == "background"


def test_glob_specificity_is_longest_pattern_first() -> None:
    """Of several matching globs, the longest pattern wins, whatever the config order."""
    routes = {
        "*": {"provider": "gemini", "model": "g"},
        "claude-*-4-1*": {"provider": "deepseek", "model": "d"},
        "claude-*": {"provider": "openai", "model": "o"},
    }
    t = table(routes=routes)
    assert route(view("claude-opus-4-1"), t).model == "d"
    assert route(view("claude-sonnet-4"), t).model == "o"
    assert route(view("gpt"), t).model == "g"


def test_exact_route_beats_a_glob() -> None:
    """A route keyed by the exact model name wins over any glob that matches it."""
    routes = {
        "claude-opus-4-5": {"provider": "deepseek", "model": "exact"},
        "claude-opus-4-5*": {"provider": "openai", "model": "glob"},
    }
    assert route(view("claude-opus-4-5"), table(routes=routes)).model == "exact"


def test_empty_route_model_keeps_the_requested_model() -> None:
    """A route with no model sends the client's own model name to its provider."""
    assert route(view("claude-3-7-sonnet"), TABLE).model == "claude-3-7-sonnet"


# --- big/small model mapping (npm claude-code-proxy style) -----------------------------------------

SMALL_BIG = {
    "routes": {},
    "router": {"big_model": "gpt-4.1@openai", "small_model": "deepseek-chat", "preferred_provider": "deepseek"},
}


@pytest.mark.parametrize(
    ("model", "provider", "target", "reason"),
    [
        ("claude-haiku-4-5", "deepseek", "deepseek-chat", "small_model: haiku-class"),
        ("claude-sonnet-4-5", "openai", "gpt-4.1", "big_model: sonnet/opus-class"),
        ("claude-opus-4-1", "openai", "gpt-4.1", "big_model: sonnet/opus-class"),
        ("gpt-4o", "deepseek", "gpt-4o", "passthrough: no default route"),
    ],
)
def test_big_and_small_model_mapping(model: str, provider: str, target: str, reason: str) -> None:
    """haiku-class goes to small_model, sonnet/opus-class to big_model, on their provider."""
    got = route(view(model), table(**SMALL_BIG))
    assert (got.provider, got.model, got.reason) == (provider, target, reason)


def test_big_model_without_provider_uses_the_first_provider() -> None:
    """With no provider written and no preferred provider, the first provider serves big_model."""
    got = route(view("claude-sonnet-4"), table(routes={}, router={"big_model": "gpt-x"}))
    assert (got.provider, got.model) == ("anthropic", "gpt-x")


def test_scenario_routes_beat_big_small_mapping() -> None:
    """A configured background route wins over small_model, and default loses to big_model."""
    t = table(routes=SCENARIO_ROUTES, router=SMALL_BIG["router"])
    assert route(view("claude-haiku-4-5"), t).scenario == "background"
    assert route(view("claude-sonnet-4-5"), t).reason == "big_model: sonnet/opus-class"


# --- open circuits and fallback --------------------------------------------------------------------


def test_open_circuit_skips_to_the_next_rule() -> None:
    """A route whose provider's circuit is open is skipped; the next rule answers and says so."""
    got = route(view("glm", think_flag=True), TABLE, frozenset({"deepseek"}))
    assert (got.provider, got.scenario) == ("anthropic", "default")
    assert got.reason == "default (deepseek unavailable)"


def test_everything_open_falls_back_to_the_fallback_chain() -> None:
    """When every rule's provider is unavailable, the first route's fallback list answers."""
    got = route(view("glm", think_flag=True), TABLE, frozenset({"deepseek", "anthropic"}))
    assert got.provider == "openai"
    assert got.reason.endswith("deepseek unavailable -> fallback openai")


def test_nothing_available_returns_the_primary_for_the_shell_to_report() -> None:
    """With every candidate unavailable the primary route comes back, marked as such."""
    got = route(view("glm"), TABLE, frozenset(TABLE.providers))
    assert got.provider == "anthropic"
    assert got.reason == "default (all candidates unavailable)"


def test_routes_to_a_disabled_provider_are_skipped() -> None:
    """A route naming a provider that is not enabled counts as unavailable, and falls back."""
    t = table(routes={"default": {"provider": "off", "model": "x"}})
    got = route(view("glm"), t)
    assert (got.provider, got.model) == ("anthropic", "claude-sonnet-4-5")
    assert got.reason == "default; off unavailable -> fallback anthropic"


@pytest.mark.parametrize(
    ("primary", "unavailable", "expected"),
    [
        # providers in order, minus the primary; models from their own scenario route,
        # else their first listed model, else the primary's model
        (
            Route("anthropic", "claude-sonnet-4-5", "default", "default"),
            frozenset(),
            [("openai", "gpt-4.1"), ("deepseek", "deepseek-chat")],
        ),
        (
            Route("openai", "gpt-4.1", "default", "default"),
            frozenset({"deepseek"}),
            [("anthropic", "claude-sonnet-4-5")],
        ),
        # think has its own list
        (Route("deepseek", "deepseek-reasoner", "think", "think"), frozenset(), [("openai", "gpt-4.1")]),
        # a scenario without a list uses the default list
        (
            Route("gemini", "gemini-2.5-pro", "longContext", "longContext"),
            frozenset(),
            [("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4.1"), ("deepseek", "deepseek-chat")],
        ),
        # an explicit choice falls back nowhere unless an `explicit` list says so
        (Route("openai", "gpt-4.1", "explicit", "explicit"), frozenset(), []),
    ],
)
def test_fallback_chain(primary: Route, unavailable: frozenset[str], expected: list[tuple[str, str]]) -> None:
    """The fallback list for the route's scenario, with each provider's model mapped."""
    chain = fallback_chain(primary, TABLE, unavailable)
    assert [(r.provider, r.model) for r in chain] == expected
    assert all(r.scenario == primary.scenario for r in chain)


def test_fallback_uses_the_providers_own_route_for_the_scenario() -> None:
    """A fallback provider that owns the scenario's route serves that route's model."""
    t = table(router={"fallback": {"background": ["openai"]}})
    primary = Route("deepseek", "deepseek-chat", "background", "background")
    assert [(r.provider, r.model) for r in fallback_chain(primary, t)] == [("openai", "gpt-4.1-mini")]


def test_fallback_without_models_keeps_the_primary_model() -> None:
    """A provider with no route and no models gets the primary's model."""
    t = table(router={"fallback": {"default": ["gemini"]}})
    chain = fallback_chain(Route("anthropic", "claude-sonnet-4-5", "default", "default"), t)
    assert [(r.provider, r.model) for r in chain] == [("gemini", "claude-sonnet-4-5")]


def test_fallback_entries_may_name_a_model() -> None:
    """claude-code-router writes fallbacks as `provider,model`; the model is used as written."""
    t = table(router={"fallback": {"default": ["openai,gpt-4.1-nano", "nowhere"]}})
    chain = fallback_chain(Route("anthropic", "claude-sonnet-4-5", "default", "default"), t)
    assert [(r.provider, r.model) for r in chain] == [("openai", "gpt-4.1-nano")]
