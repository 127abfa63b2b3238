"""The configuration model: frozen attrs classes, and the strict cattrs converter that builds them.

`structure(dict, source)` turns one plain dict into a `Config`, refusing unknown keys and
wrong types with "source: key.path: problem" lines (`ConfigError`). Where the dicts come from,
and in which order they merge, is `config.load`'s business.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NewType

import cattrs
from attrs import Factory, field, frozen
from cattrs.gen import make_dict_structure_fn, override
from cattrs.v import format_exception

from ccproxy_core import __version__
from ccproxy_core.core.breaker import BreakerSettings
from ccproxy_core.core.pricing import PriceSetting

Seconds = NewType("Seconds", float)
# A file path setting: `~` is expanded when the config is read (a Go config's "~/.ccproxy/...").
PathSetting = NewType("PathSetting", str)

ANTHROPIC_API_URL = "https://api.anthropic.com"
DEFAULT_PORT = 3456
MANAGED_CONFIG = Path("/etc/ccproxy/config.json")


class ConfigError(Exception):
    """A configuration problem, worded as "source: key.path: problem" lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@frozen
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    file: PathSetting = PathSetting("")
    format: Literal["text", "json"] = "text"
    raw_http_dir: PathSetting = PathSetting(
        ""
    )  # opt-in: every proxied request and answer, secrets masked (server/rawlog.py)
    raw_http_max_bytes: int = 10 * 1024 * 1024  # http.log rotates at this size, keeping 3 old files


@frozen
class UsageConfig:
    """The usage ledger (usage/ledger.py): SQLite under the user state dir unless `path` says otherwise."""

    enabled: bool = True
    path: PathSetting = PathSetting("")
    retention_days: float = 90.0


@frozen
class MetricsConfig:
    enabled: bool = True
    public: bool = False  # serve /metrics without the proxy key (for a scraper)


@frozen
class ProviderConfig:
    name: str
    kind: Literal["anthropic", "openai", "responses", "codex", ""] = ""  # "" = from the preset
    preset: str = ""
    api_base_url: str = ""
    api_key: str = ""
    api_keys: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    enabled: bool = True
    auth: Literal["api_key", "oauth"] = "api_key"
    accounts_path: PathSetting = PathSetting("")
    response_style: Literal["", "anthropic", "openai"] = ""
    max_output_tokens: int | None = None
    headers: dict[str, str] = Factory(dict)
    requests_per_minute: int = 0
    burst: int = 0
    # Send reasoning controls (Claude Code's thinking as reasoning_effort): "auto" = only to
    # models known to take them (REASONING_MODELS in providers/rules.py); true / false = always / never.
    reasoning: bool | Literal["auto"] = "auto"

    @property
    def keys(self) -> tuple[str, ...]:
        """Every API key of this provider, in rotation order."""
        return ((self.api_key,) if self.api_key else ()) + tuple(k for k in self.api_keys if k)


@frozen
class RouteConfig:
    provider: str
    model: str = ""


@frozen
class RouterConfig:
    long_context_threshold: int = 60000
    fallback: dict[str, tuple[str, ...]] = Factory(dict)
    big_model: str = ""
    small_model: str = ""
    preferred_provider: str = ""
    # The `think` route fires on thinking beyond Claude Code's defaults (31999, "high"): see routing.
    think_budget_threshold: int = 32000
    think_effort: Literal["low", "medium", "high", "xhigh", "max"] = "xhigh"


@frozen
class LimitsConfig:
    request_timeout: Seconds = Seconds(600.0)
    connect_timeout: Seconds = Seconds(10.0)
    max_request_body_size: int = 32 * 1024 * 1024
    stream_idle_timeout: Seconds = Seconds(300.0)
    # A translated Anthropic stream gets a `ping` after this much silence (slow reasoning models), as
    # Anthropic's own streams carry pings; Claude Code flags a stall after about 15 s. 0 turns it off.
    keepalive_interval: Seconds = Seconds(10.0)
    requests_per_minute: int = 0  # per client key; 0 = unlimited
    burst: int = 0


@frozen
class RotationConfig:
    enabled: bool = True
    hot_reload: bool = True
    refresh_buffer_seconds: int = 600
    # ccproxy-multi's key: the OAuth provider's accounts file (see config.load).
    accounts_path: PathSetting = PathSetting("")
    default_cooldown: Seconds = Seconds(60.0)  # a quota 429 that names no reset time
    # A 429 that is not quota: benched for its retry-after (at most max_retry_after), or for
    # rate_limit_cooldown when it gives no hint.
    rate_limit_cooldown: Seconds = Seconds(5.0)
    max_retry_after: Seconds = Seconds(900.0)
    # A rejected API key is tried again by itself after this, doubling per rejection (max 30 min).
    auth_reprobe: Seconds = Seconds(30.0)
    # A conversation stays on the credential that served it until this long after its last request.
    sticky_ttl: Seconds = Seconds(3600.0)


@frozen
class OAuthSettings:
    """Claude OAuth endpoints and client: all configurable, since they have moved before."""

    token_url: str = "https://platform.claude.com/v1/oauth/token"
    authorize_url: str = "https://claude.ai/oauth/authorize"
    client_id: str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
    redirect_uri: str = "https://platform.claude.com/oauth/code/callback"
    scopes: str = "user:profile user:inference user:sessions:claude_code"
    # ccproxy says who it is; an operator whose token host insists on another agent sets it.
    user_agent: str = f"ccproxy/{__version__}"
    timeout_seconds: Seconds = Seconds(30.0)
    default_expires_in: Seconds = Seconds(3600.0)  # when a response omits expires_in


@frozen
class OpenAIOAuthSettings:
    """ChatGPT (Codex) OAuth endpoints and client, for `kind: "codex"` providers (accounts/codex.py).

    One section for every codex provider, as `oauth:` is for Claude: a ChatGPT login is the
    same whichever provider's accounts file it lands in; the upstream is the provider's
    `api_base_url`. Defaults are what the Codex CLI uses."""

    token_url: str = "https://auth.openai.com/oauth/token"
    authorize_url: str = "https://auth.openai.com/oauth/authorize"
    client_id: str = "app_EMoamEEZ73f0CkXaXp7hrann"
    # Registered for this client; after login the browser lands there and shows an error page
    # (nothing listens): the code is in that page's address, which `auth login-openai` takes.
    redirect_uri: str = "http://localhost:1455/auth/callback"
    scopes: str = "openid profile email offline_access"
    refresh_scope: str = "openid profile email"
    user_agent: str = f"ccproxy/{__version__}"
    timeout_seconds: Seconds = Seconds(30.0)
    default_expires_in: Seconds = Seconds(3600.0)  # when neither the answer nor the token says


def _at_least_one(_: Any, attribute: Any, value: int) -> None:
    if value < 1:
        raise ValueError(f"expected {attribute.name} to be at least 1, got {value}")


@frozen
class SdkConfig:
    """SDK mode (`/claude`, `/sdk`): how the local Claude Code CLI runs. Safe by default: no tools,
    no user settings, hooks or MCP servers (see ccproxy_core.sdk.command)."""

    cli_path: PathSetting = PathSetting("")  # "" = `claude` on the PATH
    env: dict[str, str] = Factory(dict)  # added to the proxy's environment for the CLI
    cwd: PathSetting = PathSetting("")  # "" = a private empty directory under the state dir
    user_settings: bool = False  # the user's own Claude Code settings, hooks and MCP servers
    allowed_tools: tuple[str, ...] = ()  # Claude Code tools that may run, without a prompt
    mcp_servers: dict[str, dict[str, Any]] = Factory(dict)  # name -> MCP server config
    session_ttl: Seconds = Seconds(600.0)
    max_concurrent: int = field(default=4, validator=_at_least_one)
    queue_timeout: Seconds = Seconds(30.0)


@frozen
class StateConfig:
    """Where state that instances share lives: credential cooldowns and flags, sticky sessions,
    rate-limit buckets, client-key counters and budgets, breakers, OAuth refresh (issue 14).
    `memory` keeps it in the process (one instance); `redis` shares it through `redis_url`
    (`CCPROXY_REDIS_URL` alone selects it)."""

    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = ""  # redis://, rediss:// or unix:// (checked with the other cross-field rules)
    key_prefix: str = "ccproxy"  # every Redis key starts with this and a colon


@frozen
class Config:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    apikey: str = ""
    log: LogConfig = LogConfig()
    providers: tuple[ProviderConfig, ...] = ()
    routes: dict[str, RouteConfig] = Factory(dict)
    router: RouterConfig = RouterConfig()
    limits: LimitsConfig = LimitsConfig()
    breaker: BreakerSettings = Factory(BreakerSettings)
    rotation: RotationConfig = RotationConfig()
    oauth: OAuthSettings = OAuthSettings()
    openai_oauth: OpenAIOAuthSettings = OpenAIOAuthSettings()
    usage: UsageConfig = UsageConfig()
    metrics: MetricsConfig = MetricsConfig()
    pricing: dict[str, PriceSetting] = Factory(dict)  # "MODEL or glob" -> USD per million tokens
    sdk: SdkConfig = SdkConfig()
    state: StateConfig = StateConfig()

    def __attrs_post_init__(self) -> None:
        if not self.providers:
            # Zero config: a transparent proxy to the public Anthropic API that forwards the
            # client's own credentials.
            object.__setattr__(
                self, "providers", (ProviderConfig(name="anthropic", kind="anthropic", api_base_url=ANTHROPIC_API_URL),)
            )

    def provider(self, name: str) -> ProviderConfig | None:
        for p in self.providers:
            if p.name == name:
                return p
        return None

    def secrets(self) -> tuple[str, ...]:
        """Every configured secret value: the proxy key, each provider's keys and `headers` values
        (where custom providers put their credential). The redactor masks these wherever they appear."""
        headers = [v.strip() for p in self.providers for v in p.headers.values()]
        values = [self.apikey, *(k for p in self.providers for k in p.keys), *headers]
        values.append(_url_password(self.state.redis_url))
        # "Bearer TOKEN" in a header: a provider quoting it back quotes the token alone
        values += [v.split(" ", 1)[1].strip() for v in headers if " " in v]
        return tuple(v for v in values if v and not v.startswith("$"))


def _url_password(url: str) -> str:
    """The password in a `redis://user:password@host` URL, or ""."""
    userinfo = url.partition("://")[2].partition("@")
    return userinfo[0].rpartition(":")[2] if userinfo[1] else ""


# --- building the classes from dicts ----------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def _seconds(value: Any, _: Any) -> Seconds:
    if isinstance(value, bool):
        raise ValueError('expected a duration such as 30, "30s", "5m" or "250ms"')
    if isinstance(value, (int, float)):
        return Seconds(float(value))
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f'expected a duration such as 30, "30s", "5m" or "250ms", got {value!r}')
    return Seconds(float(m.group(1)) * _DURATION_UNITS[m.group(2)])


def _boolean(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _reasoning(value: Any, _: Any) -> bool | Literal["auto"]:
    if value == "auto":
        return "auto"
    try:
        return _boolean(value, None)
    except ValueError:
        raise ValueError(f'expected true, false or "auto", got {value!r}') from None


def _strict_str(value: Any, _: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return str(value)


def _strict_int(value: Any, _: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"expected a whole number, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a whole number, got {value!r}") from None


def _path(value: Any, _: Any) -> PathSetting:
    return PathSetting(os.path.expanduser(_strict_str(value, None)))


def _strings(value: Any, _: Any) -> tuple[str, ...]:
    """A list of strings; one string is a list of one (never its characters, one key each)."""
    if isinstance(value, str):
        return (value,) if value else ()
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected a list of strings, got {type(value).__name__}")
    return tuple(_strict_str(v, None) for v in value)


converter = cattrs.Converter(forbid_extra_keys=True)
converter.register_structure_hook(PathSetting, _path)
converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _strings)
converter.register_structure_hook(Seconds, _seconds)
converter.register_structure_hook(bool, _boolean)
converter.register_structure_hook(str, _strict_str)
converter.register_structure_hook(int, _strict_int)
converter.register_structure_hook_func(lambda t: t == bool | Literal["auto"], _reasoning)
# BreakerSettings lives with the (pure) breaker and types its times as plain floats; in a config
# file they are durations like every other time ("30s", "1m").
converter.register_structure_hook(
    BreakerSettings,
    make_dict_structure_fn(
        BreakerSettings,
        converter,
        _cattrs_forbid_extra_keys=True,
        open_seconds=override(struct_hook=_seconds),
        window_seconds=override(struct_hook=_seconds),
    ),
)


def _where(cattrs_path: str) -> str:
    path = cattrs_path.removeprefix("$").lstrip(".")
    path = re.sub(r"\['([^']*)'\]", r".\1", path)
    return re.sub(r"\[(\d+)\]", r".\1", path).lstrip(".")


def _format_exception(exc: BaseException, type_: Any) -> str:
    """Our hooks' own words where they have some; cattrs' wording otherwise."""
    if isinstance(exc, ValueError) and str(exc).startswith("expected"):
        return str(exc)  # raised by the hooks above, already worded for the user
    if "not in literal" in str(exc):
        allowed = [a for a in getattr(type_, "__args__", ()) if a]
        return f"expected one of {', '.join(repr(a) for a in allowed)}"
    return format_exception(exc, type_)


def _problems(exc: Exception, source: str) -> list[str]:
    out = []
    for msg in cattrs.transform_error(exc, path="$", format_exception=_format_exception):
        text, _, where = msg.rpartition(" @ ")
        extra = re.match(r"extra fields found \((.*)\)", text)
        key = _where(where)
        if extra:
            for name in extra.group(1).split(", "):
                out.append(f"{source}: {f'{key}.' if key else ''}{name}: unknown key")
        else:
            out.append(f"{source}: {key or '(top level)'}: {text}")
    return out


def structure(data: Mapping[str, Any], source: str = "config", *, check_references: bool = True) -> Config:
    try:
        config = converter.structure(dict(data), Config)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            raise ConfigError(_problems(exc, source)) from None
        raise ConfigError([f"{source}: {exc}"]) from None
    if check_references:
        _check_references(config, source)
    return config


def _check_providers(config: Config, source: str) -> list[str]:
    """Each provider must resolve to a preset and an endpoint; found at load, not as a 500 later."""
    from ccproxy_core.providers.presets import PRESETS, preset_for_provider  # here: `ccproxy version` stays fast

    problems = []
    for i, p in enumerate(config.providers):
        raw = converter.unstructure(p)
        try:
            preset = preset_for_provider(raw)
        except ValueError:
            problems.append(
                f"{source}: providers.{i}.preset: unknown preset {p.preset!r}; known presets: {', '.join(PRESETS)}"
            )
            continue
        if preset.kind == "codex" and p.auth != "oauth":
            problems.append(
                f"{source}: providers.{i}.auth: provider {p.name!r} (kind 'codex') serves ChatGPT accounts: "
                'set auth: "oauth" and add accounts with `ccproxy auth login-openai` (an OpenAI API key '
                'belongs to a kind: "responses" provider)'
            )
        if preset.kind == "codex" and not p.accounts_path:
            problems.append(
                f"{source}: providers.{i}.accounts_path: provider {p.name!r} (kind 'codex') needs a file of its "
                'own for its ChatGPT accounts, such as "~/.ccproxy/codex-accounts.json" (the default '
                "accounts.json holds Claude accounts)"
            )
        if preset.kind in ("openai", "responses") and not preset.default_base_url:
            problems.append(
                f"{source}: providers.{i}.api_base_url: provider {p.name!r} (kind {preset.kind!r}) needs "
                'api_base_url, its endpoint such as "https://api.example.com/v1", or a preset that knows '
                f"it ({', '.join(n for n, q in PRESETS.items() if q.default_base_url)})"
            )
    return problems


def _check_route_names(config: Config, source: str) -> list[str]:
    """A route key close to a scenario name is a typo ("defualt"), not a model alias."""
    from ccproxy_core.core.routing import SCENARIOS

    problems = []
    lowered = {s.lower(): s for s in SCENARIOS}
    for key in config.routes:
        if key in SCENARIOS or set(key) & set("*?["):
            continue
        folded = key.lower().replace("_", "").replace("-", "")
        import difflib  # here: only a config with model aliases in `routes` needs it

        close = lowered.get(folded) or next(
            iter(difflib.get_close_matches(folded, list(lowered), n=1, cutoff=0.8)), None
        )
        if close is not None:
            problems.append(
                f"{source}: routes.{key}: not a scenario name; did you mean "
                f"{lowered.get(close, close)!r}? (scenarios: {', '.join(SCENARIOS)}; "
                "any other key is the exact model name it aliases)"
            )
    return problems


def _check_references(config: Config, source: str) -> None:
    names = [p.name for p in config.providers]
    problems = [
        f"{source}: providers: provider name {n!r} is used twice"
        for n in sorted({n for n in names if names.count(n) > 1})
    ]
    problems += _check_providers(config, source) + _check_route_names(config, source)
    url = config.state.redis_url
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        problems.append(
            f"{source}: state.redis_url: expected a URL such as redis://HOST:6379/0 (or rediss://, unix://), "
            f"got {url.partition('@')[2] or url!r}"
        )
    if config.state.backend == "redis" and not url:
        problems.append(
            f"{source}: state.redis_url: state.backend is redis but no URL is set; set state.redis_url "
            '(e.g. "redis://127.0.0.1:6379/0") or the CCPROXY_REDIS_URL environment variable'
        )
    for key, route in config.routes.items():
        if route.provider not in names:
            problems.append(
                f"{source}: routes.{key}.provider: unknown provider {route.provider!r} (configured: {', '.join(names)})"
            )
    folded = {n.casefold() for n in names}  # routing matches provider names case-insensitively
    for scenario, chain in config.router.fallback.items():
        for i, entry in enumerate(chain):
            name = entry.partition(",")[0].strip()  # a provider, or `provider,model` as ccr writes it
            if name.casefold() not in folded:
                problems.append(
                    f"{source}: router.fallback.{scenario}.{i}: unknown provider {name!r} "
                    f"(configured: {', '.join(names)}; an entry is a provider or `provider,model`)"
                )
    if problems:
        raise ConfigError(problems)


def unstructure(config: Config) -> dict[str, Any]:
    data: dict[str, Any] = converter.unstructure(config)
    return data
