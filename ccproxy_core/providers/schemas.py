"""A tool's JSON Schema as a provider's schema dialect accepts it (pure).

OpenAI-compatible providers differ in what a function's `parameters` may hold: most take JSON
Schema as Claude Code writes it; some refuse a few keywords (a preset's `refused_schema_keywords`
are dropped wherever they are a keyword, never where they name a property or are data); Gemini
takes only its OpenAPI subset, with local `$ref`s inlined and `nullable` for a type union with
null (translation.md §3.3). `clean_schema` returns a new schema and never changes its argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ccproxy_core.core.wire import JSON

SchemaDialect = Literal["openai", "gemini", "groq"]


# Keywords whose value maps names to schemas, and keywords whose value is data, not schema.
_NAMED_SCHEMAS = frozenset({"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"})
_DATA = frozenset({"enum", "const", "default", "example", "examples", "required"})
# Gemini's OpenAPI subset (translation.md §3.3).
_GEMINI_KEEP = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)
# When a type array becomes anyOf, these keywords follow their type into its branch.
_NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "format")
_BRANCH_KEYS = {
    "object": ("properties", "required", "minProperties", "maxProperties", "propertyOrdering"),
    "array": ("items", "minItems", "maxItems"),
    "number": _NUMERIC,
    "integer": _NUMERIC,
    "string": ("enum", "format", "pattern", "minLength", "maxLength"),
}


def _drop_keywords(node: Any, refused: frozenset[str]) -> Any:
    if isinstance(node, list):
        return [_drop_keywords(x, refused) for x in node]
    if not isinstance(node, dict):
        return node
    return {
        key: {name: _drop_keywords(sub, refused) for name, sub in value.items()}
        if key in _NAMED_SCHEMAS and isinstance(value, dict)
        else value
        if key in _DATA
        else _drop_keywords(value, refused)
        for key, value in node.items()
        if key not in refused
    }


def _gemini_prepare(node: JSON, defs: Mapping[str, Any], seen: frozenset[str]) -> tuple[JSON, bool]:
    """Rewrite the constructs Gemini lacks into ones it has; returns (node, nullable)."""
    parts = node.pop("allOf", None)
    for part in (p for p in parts if isinstance(p, dict)) if isinstance(parts, list) else ():
        for key, value in _gemini_resolve(dict(part), defs, seen)[0].items():
            if key == "properties" and isinstance(value, dict):
                node["properties"] = {**value, **node.get("properties", {})}
            elif key == "required" and isinstance(value, list):
                node["required"] = [*node.get("required", []), *value]
            else:
                node.setdefault(key, value)
    if "oneOf" in node:
        node.setdefault("anyOf", node.pop("oneOf"))
    nullable = node.get("nullable") is True
    listed = node.get("type")
    if listed == "null" or isinstance(listed, list):
        listed = listed if isinstance(listed, list) else [listed]
        kinds = [k for k in listed if k != "null"]
        nullable = nullable or len(kinds) < len(listed)
        del node["type"]
        if len(kinds) == 1:
            node["type"] = kinds[0]
        elif kinds:
            node["anyOf"] = [
                {"type": k, **{x: node.pop(x) for x in _BRANCH_KEYS.get(k, ()) if x in node}} for k in kinds
            ]
    branches = node.get("anyOf")
    if isinstance(branches, list):
        rest = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        nullable = nullable or len(rest) < len(branches)
        if len(rest) == 1 and isinstance(rest[0], dict):
            # `anyOf: [X, {"type": "null"}]` is how pydantic writes Optional[X].
            del node["anyOf"]
            merged, inner = _gemini_prepare({**_gemini_resolve(dict(rest[0]), defs, seen)[0], **node}, defs, seen)
            return merged, nullable or inner
        node["anyOf"] = rest
    if "const" in node:
        node.setdefault("enum", [node.pop("const")])
    for key, inclusive, step in (("exclusiveMinimum", "minimum", 1), ("exclusiveMaximum", "maximum", -1)):
        bound = node.pop(key, None)
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            continue  # draft-4 boolean form: the inclusive bound beside it is close enough
        if node.get("type") == "integer" and float(bound).is_integer():
            bound = int(bound) + step  # exact for integers
        current = node.get(inclusive)
        node[inclusive] = bound if current is None else (max if step > 0 else min)(current, bound)
    enum = node.get("enum")
    if isinstance(enum, list) and None in enum:
        nullable, node["enum"] = True, [e for e in enum if e is not None]
    if "type" not in node and "anyOf" not in node:
        if isinstance(node.get("properties"), Mapping):
            node["type"] = "object"
        elif "items" in node:
            node["type"] = "array"
        elif isinstance(node.get("enum"), list) and all(isinstance(e, str) for e in node["enum"]):
            node["type"] = "string"
    return node, nullable


def _gemini_resolve(node: JSON, defs: Mapping[str, Any], seen: frozenset[str]) -> tuple[JSON, frozenset[str]]:
    """Inline a local `$ref` (pydantic-made MCP tools use `$defs` a lot); `seen` stops recursion."""
    ref = node.pop("$ref", None)
    if not isinstance(ref, str):
        return node, seen
    name = ref.rsplit("/", 1)[-1]
    target = defs.get(name) if ref.startswith(("#/$defs/", "#/definitions/")) else None
    if not isinstance(target, dict) or name in seen:
        return {"type": "object", **node}, seen  # recursive or foreign: an open object is all we can say
    return _gemini_resolve({**target, **node}, defs, seen | {name})


def _gemini(node: Any, defs: Mapping[str, Any], seen: frozenset[str] = frozenset()) -> JSON:
    if not isinstance(node, dict):
        return {}  # `true` / `false` schemas: nothing Gemini can express
    resolved, seen = _gemini_resolve(dict(node), defs, seen)
    node, nullable = _gemini_prepare(resolved, defs, seen)
    typ, enum, fmt, props = node.get("type"), node.get("enum"), node.get("format"), node.get("properties")
    drop = {"required"}  # rebuilt below from the properties that survive
    if not (typ == "string" and isinstance(enum, list) and enum and all(isinstance(e, str) for e in enum)):
        drop.add("enum")  # Gemini takes enums of strings only
    if not (
        (typ == "string" and fmt in ("enum", "date-time"))
        or (typ in ("integer", "number") and fmt in ("int32", "int64", "float", "double"))
    ):
        drop.add("format")
    if typ != "object" or not isinstance(props, dict) or not props:
        drop.add("properties")  # "only allowed for OBJECT type" / "should be non-empty"
    if typ != "array":
        drop.add("items")
    out: JSON = {k: v for k, v in node.items() if k in _GEMINI_KEEP and k not in drop}
    if "properties" in out:
        out["properties"] = {name: _gemini(sub, defs, seen) for name, sub in out["properties"].items()}
    if "items" in out:
        items = out["items"]
        out["items"] = _gemini(items[0] if isinstance(items, list) and items else items, defs, seen)
    if isinstance(out.get("anyOf"), list):
        out["anyOf"] = [_gemini(b, defs, seen) for b in out["anyOf"]]
    names = node["required"] if isinstance(node.get("required"), list) else []
    if required := [r for r in names if r in out.get("properties", {})]:
        out["required"] = required
    if nullable:
        out["nullable"] = True
    return out


def clean_schema(schema: Mapping[str, Any], dialect: SchemaDialect, refused: tuple[str, ...] = ()) -> JSON:
    """A tool `parameters` schema rewritten for the provider's schema dialect (a new dict)."""
    if dialect == "gemini":
        defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
        return _gemini(schema, defs)
    cleaned: JSON = _drop_keywords(schema, frozenset(refused))
    return cleaned
