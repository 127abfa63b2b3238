"""Every fact in which one provider differs from another, in one table.

A provider names a preset (or gets one by its name, its base URL's host, or its kind); all a
handler needs to know about it is a field of the `Preset`: endpoints, auth header, env key
names, `max_tokens` limits per model, rejected fields and schema keywords, and the
`ChatDialect` the translator reads. Handlers never branch on provider names.

Reasoning controls (`reasoning_effort`, OpenRouter's `reasoning`) go only to models that take
them: `REASONING_MODELS` is the one table (OpenAI answers 400 `unsupported_parameter` when
gpt-4.1 gets one), a provider's `reasoning: true|false` in config overrides it, and
`dialect_for` turns the controls off for every other model, silently.

`apply_preset` is the one post-processing step for an already-translated Chat Completions
request; it returns a new dict. Tool schemas are cleaned per `schema_dialect`: "openai" and
"groq" drop `refused_schema_keywords`; "gemini" rewrites to the OpenAPI subset Gemini accepts
(it refuses the whole request on the first unknown keyword). Names inside `properties` are
field names, not keywords, and are never filtered. Facts: reference/translation.md §3.3-3.4, §8.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

import attrs
from attrs import field, frozen

from ccproxy_core.core.headers import ANTHROPIC_VERSION, ANTHROPIC_VERSION_DEFAULT
from ccproxy_core.core.wire import JSON
from ccproxy_core.providers.schemas import SchemaDialect, clean_schema
from ccproxy_core.translate.dialect import DEFAULT_DIALECT, ChatDialect

V = TypeVar("V")

Kind = Literal["anthropic", "openai", "responses", "codex"]
AuthHeader = Literal["x-api-key", "authorization-bearer", "none"]
PathKind = Literal["chat", "messages", "count_tokens", "models", "responses"]

# OpenRouter shows apps by these headers; a provider's `headers` in config override them.
ATTRIBUTION_URL = "https://github.com/ccproxy"
ATTRIBUTION_TITLE = "ccproxy"


def _frozen_map(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


# Model glob -> whether it takes a reasoning effort; the longest matching glob wins, and a model
# no glob matches takes none. Matched on the name after its last "/" ("openai/o3" is o3).
# Sources: OpenAI reasoning guide (o-series, gpt-5; not o1-mini/o1-preview, not gpt-5-chat),
# xAI (grok-3-mini only; grok-4 refuses it), Gemini's OpenAI compatibility (2.5 and later),
# gpt-oss (OpenAI's open weights, as served by Groq, Ollama, vLLM).
REASONING_MODELS: Mapping[str, bool] = MappingProxyType(
    {
        "o1*": True,
        "o1-mini*": False,
        "o1-preview*": False,
        "o3*": True,
        "o4*": True,
        "gpt-5*": True,
        "gpt-5-chat*": False,
        "codex-mini*": True,
        "gpt-oss*": True,
        "grok-3-mini*": True,
        "gemini-2.5*": True,
        "gemini-3*": True,
    }
)

Reasoning = bool | Literal["auto"]


def takes_reasoning(model: str) -> bool:
    """Whether `model` accepts a reasoning effort, by `REASONING_MODELS`."""
    return bool(_by_specificity(REASONING_MODELS, model.rsplit("/", 1)[-1]))


class _Memo(Generic[V]):
    """Answers by (object, model), asked on every translated request with the same few pairs.
    An entry holds its object, so an object that is gone is never mistaken for a new one at the
    same address; past `LIMIT` entries all are forgotten at once."""

    LIMIT = 4096
    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], tuple[object, V]] = {}

    def get(self, owner: object, model: str) -> V | _Missing:
        found = self._entries.get((id(owner), model))
        return found[1] if found is not None and found[0] is owner else _MISSING

    def put(self, owner: object, model: str, value: V) -> V:
        if len(self._entries) >= self.LIMIT:
            self._entries.clear()
        self._entries[(id(owner), model)] = (owner, value)
        return value


class _Missing:
    """What a `_Memo` holds no answer for (an answer may itself be None)."""


_MISSING = _Missing()


def _by_specificity(patterns: Mapping[str, Any], model: str) -> Any:
    """The value of the longest glob matching `model` (case-insensitive), else None (remembered)."""
    found = _SPECIFIC.get(patterns, model)
    if not isinstance(found, _Missing):
        return found
    lowered = model.lower()
    value = None
    for pattern in sorted(patterns, key=len, reverse=True):
        if fnmatch.fnmatchcase(lowered, pattern.lower()):
            value = patterns[pattern]
            break
    return _SPECIFIC.put(patterns, model, value)


_SPECIFIC: _Memo[Any] = _Memo()


@frozen
class Preset:
    name: str
    kind: Kind
    default_base_url: str = ""
    chat_path: str = "/chat/completions"
    messages_path: str = ""
    count_tokens_path: str = ""
    models_path: str = "/models"
    responses_path: str = ""  # the OpenAI Responses API (`kind: "responses"`)
    auth_header: AuthHeader = "authorization-bearer"
    env_keys: tuple[str, ...] = ()
    # model glob -> largest accepted max_tokens (`*` is the default, being least specific);
    # `max_output_cap` comes from the provider's config and beats the table.
    max_output_tokens: Mapping[str, int] = field(factory=dict, converter=_frozen_map)
    max_output_cap: int | None = None
    rejected_fields: tuple[str, ...] = ()
    rejected_fields_by_model: Mapping[str, tuple[str, ...]] = field(factory=dict, converter=_frozen_map)
    schema_dialect: SchemaDialect = "openai"
    refused_schema_keywords: tuple[str, ...] = ()
    # Sent on every upstream request unless the client already sent that header.
    extra_headers: Mapping[str, str] = field(factory=dict, converter=_frozen_map)
    dialect: ChatDialect = DEFAULT_DIALECT
    dialect_overrides: Mapping[str, ChatDialect] = field(factory=dict, converter=_frozen_map)
    supports_forced_tool_choice: bool = True
    models_without_forced_tool_choice: tuple[str, ...] = ()
    # "auto": by `REASONING_MODELS` (unless `reasoning_by_model` is off: a router that drops
    # the control itself for models without reasoning); True / False: the provider's config.
    reasoning: Reasoning = "auto"
    reasoning_by_model: bool = True

    def max_output_for(self, model: str) -> int | None:
        if self.max_output_cap is not None:
            return self.max_output_cap
        found = _by_specificity(self.max_output_tokens, model)
        return int(found) if found is not None else None

    def dialect_for(self, model: str) -> ChatDialect:
        return rules_for(self, model).dialect

    def _dialect_for(self, model: str) -> ChatDialect:
        found = _by_specificity(self.dialect_overrides, model)
        dialect = found if isinstance(found, ChatDialect) else self.dialect
        if self.reasoning is True:
            return dialect if dialect.reasoning != "none" else attrs.evolve(dialect, reasoning="effort")
        if self.reasoning is False or (self.reasoning_by_model and not takes_reasoning(model)):
            return attrs.evolve(dialect, reasoning="none")
        return dialect

    def rejected_for(self, model: str) -> tuple[str, ...]:
        extra = _by_specificity(self.rejected_fields_by_model, model) or ()
        return self.rejected_fields + tuple(extra)

    def forces_tool_choice(self, model: str) -> bool:
        lowered = model.lower()
        return self.supports_forced_tool_choice and not any(
            fnmatch.fnmatchcase(lowered, p.lower()) for p in self.models_without_forced_tool_choice
        )


_REASONING_DIALECT = ChatDialect(max_tokens_field="max_completion_tokens")
_OPENAI_REASONING = ("o1*", "o3*", "o4*", "gpt-5*")
# Claude Code asks for 32000-64000; older models answer 400 above their limit.
_OPENAI_MAX_OUTPUT = {
    "gpt-4o*": 16384,
    "chatgpt-4o*": 16384,
    "gpt-4.1*": 32768,
    "gpt-4-turbo*": 4096,
    "gpt-4": 8192,
    "gpt-4-0*": 8192,
    "gpt-3.5-turbo*": 4096,
    "o1-mini*": 65536,
    "o1*": 100000,
    "o3*": 100000,
    "o4-mini*": 100000,
    "gpt-5*": 128000,
}

PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        p.name: p
        for p in (
            Preset(
                name="anthropic",
                kind="anthropic",
                default_base_url="https://api.anthropic.com",
                chat_path="",
                messages_path="/v1/messages",
                count_tokens_path="/v1/messages/count_tokens",
                models_path="/v1/models",
                auth_header="x-api-key",
                env_keys=("ANTHROPIC_API_KEY",),
                extra_headers={ANTHROPIC_VERSION: ANTHROPIC_VERSION_DEFAULT},
            ),
            Preset(
                name="openai",
                kind="openai",
                default_base_url="https://api.openai.com/v1",
                env_keys=("OPENAI_API_KEY",),
                max_output_tokens=_OPENAI_MAX_OUTPUT,
                # Reasoning models reject `max_tokens` and non-default sampling parameters.
                dialect_overrides=dict.fromkeys(_OPENAI_REASONING, _REASONING_DIALECT),
                rejected_fields_by_model=dict.fromkeys(_OPENAI_REASONING, ("temperature", "top_p")),
            ),
            Preset(
                name="deepseek",
                kind="openai",
                default_base_url="https://api.deepseek.com",
                env_keys=("DEEPSEEK_API_KEY",),
                # "the valid range of max_tokens is [1, 8192]" for deepseek-chat.
                max_output_tokens={"deepseek-chat": 8192, "deepseek-reasoner": 65536},
                # Reasoning is chosen by model name; thinking mode with tools needs the earlier
                # `reasoning_content` sent back.
                dialect=ChatDialect(reasoning="none", echo_reasoning=True),
                # "deepseek-reasoner does not support this tool_choice" breaks WebSearch/WebFetch.
                models_without_forced_tool_choice=("deepseek-reasoner",),
            ),
            Preset(
                name="openrouter",
                kind="openai",
                default_base_url="https://openrouter.ai/api/v1",
                env_keys=("OPENROUTER_API_KEY",),
                extra_headers={"HTTP-Referer": ATTRIBUTION_URL, "X-Title": ATTRIBUTION_TITLE},
                dialect=ChatDialect(reasoning="openrouter"),
                # OpenRouter ignores `reasoning` for models without it, and knows its catalogue.
                reasoning_by_model=False,
            ),
            Preset(
                name="groq",
                kind="openai",
                default_base_url="https://api.groq.com/openai/v1",
                env_keys=("GROQ_API_KEY",),
                schema_dialect="groq",
                refused_schema_keywords=("$schema",),
                # Groq rejects `reasoning` (CCR commit 6f49b87a) and reasoning_effort on most models.
                rejected_fields=("reasoning",),
                dialect=ChatDialect(reasoning="none"),
            ),
            Preset(
                name="gemini",
                kind="openai",
                default_base_url="https://generativelanguage.googleapis.com/v1beta/openai",
                # Gemini's schemas are cleaned by an allowlist (`_GEMINI_KEEP`), not a refusal list.
                env_keys=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
                schema_dialect="gemini",
                max_output_tokens={"*gemini-1.5-*": 8192, "*gemini-2.0-*": 8192, "*gemini-2.5-*": 65536},
                # Each of these has come back as "Invalid JSON payload received. Unknown name".
                rejected_fields=(
                    "frequency_penalty",
                    "presence_penalty",
                    "top_k",
                    "reasoning",
                    "prompt_cache_key",
                    "parallel_tool_calls",
                    "enable_thinking",
                    "user",
                ),
                dialect=ChatDialect(send_user=False),
            ),
            Preset(
                name="ollama",
                kind="openai",
                default_base_url="http://localhost:11434/v1",
                auth_header="none",
                env_keys=("OLLAMA_API_KEY",),
            ),
            Preset(
                name="mistral",
                kind="openai",
                default_base_url="https://api.mistral.ai/v1",
                env_keys=("MISTRAL_API_KEY",),
                dialect=ChatDialect(tool_id_style="mistral9"),
            ),
            Preset(name="xai", kind="openai", default_base_url="https://api.x.ai/v1", env_keys=("XAI_API_KEY",)),
            Preset(
                # The Responses API (`{base}/responses`): Responses clients pass through, Messages
                # and Chat clients are translated (for models served only there).
                name="openai-responses",
                kind="responses",
                default_base_url="https://api.openai.com/v1",
                chat_path="",
                responses_path="/responses",
                env_keys=("OPENAI_API_KEY",),
                max_output_tokens=_OPENAI_MAX_OUTPUT,
            ),
            Preset(
                # ChatGPT subscription accounts (`auth: "oauth"`): the Codex backend serves Responses
                # traffic only, passed through as the client sent it (the scope rule, accounts/codex.py).
                name="codex",
                kind="codex",
                default_base_url="https://chatgpt.com/backend-api/codex",
                chat_path="",
                models_path="",
                responses_path="/responses",
            ),
            Preset(name="custom", kind="openai"),
        )
    }
)

# Provider names people use for a preset under another name.
_ALIASES = {"google": "gemini", "grok": "xai", "claude": "anthropic"}


def preset_for(name: str, preset: str = "") -> Preset:
    """By explicit preset, else by provider name, else `custom`. Unknown presets are refused."""
    if preset:
        key = _ALIASES.get(preset.lower(), preset.lower())
        if key not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known presets: {', '.join(PRESETS)}")
        return PRESETS[key]
    key = _ALIASES.get(name.lower(), name.lower())
    return PRESETS.get(key, PRESETS["custom"])


# The preset whose endpoints and auth a provider of each `kind` takes when its preset is of another kind.
_KIND_TEMPLATES = {"anthropic": "anthropic", "openai": "custom", "responses": "openai-responses", "codex": "codex"}


def preset_for_provider(provider: Mapping[str, Any]) -> Preset:
    """The preset for one provider of the native config, with that provider's overrides.

    Lookup: `preset`, then the name, then the host of `api_base_url` (a provider called
    "work" at api.deepseek.com is still DeepSeek), then `kind`. The config's `kind`,
    `api_base_url`, `max_output_tokens`, `headers` and `reasoning` then win over the table.
    """
    name, explicit = str(provider.get("name") or ""), str(provider.get("preset") or "")
    base = str(provider.get("api_base_url") or "")
    found = preset_for(name, explicit)
    host = urlsplit(base).netloc.lower()  # with the port: localhost:1234 is not Ollama
    if found.name == "custom" and not explicit and host:
        found = next(
            (p for p in PRESETS.values() if p.default_base_url and urlsplit(p.default_base_url).netloc == host), found
        )
    kind = provider.get("kind") or found.kind
    if found.name == "custom" and kind == "responses":
        found = PRESETS["openai-responses"]  # `kind: "responses"` alone is OpenAI's Responses API
    if found.name == "custom" and kind == "codex":
        found = PRESETS["codex"]  # `kind: "codex"` alone is the ChatGPT Codex backend
    if kind in _KIND_TEMPLATES and kind != found.kind:
        # An Anthropic-compatible endpoint of an OpenAI-style vendor (DeepSeek's /anthropic,
        # Ollama's /v1/messages) speaks Messages with an x-api-key, and the reverse; OpenAI's
        # own host named with `kind: "responses"` is its Responses API.
        t = PRESETS[_KIND_TEMPLATES[kind]]
        found = attrs.evolve(
            found,
            kind=t.kind,
            chat_path=t.chat_path,
            messages_path=t.messages_path,
            count_tokens_path=t.count_tokens_path,
            models_path=t.models_path,
            responses_path=t.responses_path,
            auth_header=t.auth_header,
            extra_headers=t.extra_headers,
        )
    cap = provider.get("max_output_tokens")
    headers = {**found.extra_headers, **(provider.get("headers") or {})}
    reasoning = provider.get("reasoning", "auto")
    return attrs.evolve(
        found,
        default_base_url=base or found.default_base_url,
        max_output_cap=int(cap) if cap else found.max_output_cap,
        extra_headers=headers,
        reasoning=reasoning if isinstance(reasoning, bool) else "auto",
    )


def upstream_url(preset: Preset, api_base_url: str, path_kind: PathKind) -> str:
    """The URL for one kind of call; the base may end in `/`, in `/v1`, or be the whole endpoint."""
    path = {
        "chat": preset.chat_path,
        "messages": preset.messages_path,
        "count_tokens": preset.count_tokens_path,
        "models": preset.models_path,
        "responses": preset.responses_path,
    }[path_kind]
    if not path:
        raise ValueError(f"a {preset.kind} provider ({preset.name}) has no {path_kind} endpoint")
    base = (api_base_url or preset.default_base_url).rstrip("/")
    if not base:
        raise ValueError(f"provider preset {preset.name!r} needs an api_base_url")
    for endpoint in (preset.count_tokens_path, preset.chat_path, preset.messages_path, preset.responses_path):
        if endpoint and base.endswith(endpoint):
            base = base[: -len(endpoint)]
            break
    if base.endswith("/v1") and path.startswith("/v1/"):
        path = path[3:]
    return base + path


def responses_url(preset: Preset) -> str:
    """The Responses endpoint of a provider's preset (whose base is the configured `api_base_url`)."""
    return upstream_url(preset, "", "responses")


def key_headers(style: AuthHeader, key: str) -> dict[str, str]:
    """The header that carries a key in the given style (none for an empty key)."""
    if not key or style == "none":
        return {}
    return {"x-api-key": key} if style == "x-api-key" else {"Authorization": f"Bearer {key}"}


def _is_forced(choice: Any) -> bool:
    return choice == "required" or (isinstance(choice, Mapping) and choice.get("type") == "function")


def _clean_tool(tool: Any, preset: Preset) -> Any:
    function = tool.get("function") if isinstance(tool, Mapping) else None
    if not isinstance(function, Mapping) or not isinstance(function.get("parameters"), Mapping):
        return tool
    params = clean_schema(function["parameters"], preset.schema_dialect, preset.refused_schema_keywords)
    # Gemini refuses an object with empty `properties`; a function without parameters says the same.
    keep = {"parameters": params} if preset.schema_dialect != "gemini" or params.get("properties") else {}
    return {**tool, "function": {**{k: v for k, v in function.items() if k != "parameters"}, **keep}}


@frozen
class ModelRules:
    """What a preset decides for one model, worked out once: every translated request asks."""

    dialect: ChatDialect
    rejected: frozenset[str]
    max_output: int | None
    forces_tool_choice: bool


_RULES: _Memo[ModelRules] = _Memo()


def rules_for(preset: Preset, model: str) -> ModelRules:
    """The preset's rules for `model`, worked out once (remembered like `_by_specificity`'s answers)."""
    found = _RULES.get(preset, model)
    if not isinstance(found, _Missing):
        return found
    rules = ModelRules(
        dialect=preset._dialect_for(model),
        rejected=frozenset(preset.rejected_for(model)),
        max_output=preset.max_output_for(model),
        forces_tool_choice=preset.forces_tool_choice(model),
    )
    return _RULES.put(preset, model, rules)


def apply_preset(request: JSON, preset: Preset, model: str) -> JSON:
    """Post-process a translated Chat Completions request for this provider; returns a new dict."""
    rules = rules_for(preset, model)
    rejected = rules.rejected
    out = {k: v for k, v in request.items() if k not in rejected} if rejected else dict(request)
    limit = rules.max_output
    if limit is not None:
        for name in ("max_tokens", "max_completion_tokens"):
            value = out.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > limit:
                out[name] = limit
    if isinstance(out.get("tools"), list):
        out["tools"] = [_clean_tool(t, preset) for t in out["tools"]]
    if "tool_choice" in out and _is_forced(out["tool_choice"]) and not rules.forces_tool_choice:
        # Without forcing, the model may still call the tool; with it, the request fails.
        del out["tool_choice"]
    return out


def takes_reasoning_on(preset: Preset, model: str) -> bool:
    """Whether this provider's `model` is sent reasoning controls (`dialect_for`: one rule for
    the Chat and the Responses path, the provider's `reasoning: true|false` first)."""
    return preset.dialect_for(model).reasoning != "none"


def fit_responses_request(request: JSON, preset: Preset, model: str) -> JSON:
    """A translated Responses request fitted to this provider's model (a new dict):
    `max_output_tokens` within the model's limit."""
    out = dict(request)
    limit = preset.max_output_for(model)
    value = out.get("max_output_tokens")
    if limit is not None and isinstance(value, int) and value > limit:
        out["max_output_tokens"] = limit
    return out
