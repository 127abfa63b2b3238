"""What a provider preset is, and what it decides for one model.

`Preset` is one provider's facts (providers/presets.py holds the table of them and finds a
provider's). Each translated request asks its preset about one model: the `ChatDialect` the
translator reads (`dialect_for`), the fields to drop, the largest `max_tokens`, whether a tool
may be forced. `rules_for` works those out once per (preset, model) into a `ModelRules` and
remembers it, as `_by_specificity` remembers its glob matches (one `_Memo` each).

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

import attrs
from attrs import field, frozen

from ccproxy_core.core.wire import JSON
from ccproxy_core.providers.schemas import SchemaDialect, clean_schema
from ccproxy_core.translate.dialect import DEFAULT_DIALECT, ChatDialect

V = TypeVar("V")

Kind = Literal["anthropic", "openai", "responses", "codex"]
AuthHeader = Literal["x-api-key", "authorization-bearer", "none"]


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
    """One provider's facts (the table of them is providers/presets.py's)."""

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


def _is_forced(choice: Any) -> bool:
    return choice == "required" or (isinstance(choice, dict) and choice.get("type") == "function")


def _clean_tool(tool: Any, preset: Preset) -> Any:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("parameters"), Mapping):
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
