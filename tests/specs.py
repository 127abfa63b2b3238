"""The providers' published OpenAPI specs as JSON Schema validators, for tests only.

Both specs are OpenAPI 3.1 documents, so each is registered whole as one resource and a schema
is reached by `$ref`. The OpenAI spec still writes `nullable: true` (OpenAPI 3.0) in places,
which JSON Schema ignores; `nullable_as_union` rewrites it so responses with `null` validate
(tests/fixtures/recorded/SOURCES.md, "Specs").
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import orjson
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.fakes import FIXTURES

Spec = Literal["anthropic", "openai"]


def nullable_to_union(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 `nullable: true` into JSON Schema."""
    if isinstance(node, list):
        return [nullable_to_union(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: nullable_to_union(value) for key, value in node.items()}
    if node.pop("nullable", False) is True:
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


@functools.cache
def validator(spec: Spec, schema: str, *, nullable_as_union: bool = False) -> Draft202012Validator:
    """A validator for `#/components/schemas/<schema>` of one provider's spec."""
    document = orjson.loads((FIXTURES / "specs" / f"{spec}-openapi.json").read_bytes())
    if nullable_as_union:
        document = nullable_to_union(document)
    registry: Registry[Any] = Registry().with_resource(
        f"urn:{spec}", Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": f"urn:{spec}#/components/schemas/{schema}"}, registry=registry)


def keys_anywhere(value: Any, *, schemas_under: str) -> set[str]:
    """Every key in a request, except inside tool schemas (`schemas_under` names the key that holds
    them: `parameters` in Chat Completions, `input_schema` in Messages), whose keys are field names."""
    if isinstance(value, dict):
        return set(value) | {
            k for key, v in value.items() if key != schemas_under for k in keys_anywhere(v, schemas_under=schemas_under)
        }
    if isinstance(value, list):
        return {k for v in value for k in keys_anywhere(v, schemas_under=schemas_under)}
    return set()
