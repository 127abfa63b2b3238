"""core/splice.py: one top-level string field replaced, every other byte kept."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from ccproxy_core.core.splice import with_string_field

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["model", "a", "b"]), inner, max_size=3)
    ),
    max_leaves=12,
)


def test_a_first_key_is_replaced_in_place() -> None:
    """Codex's bodies start with `model`: only its value changes."""
    raw = b'{"model":"alias","input":[{"content":"caf\\u00e9"}],"n":1.0e0}'
    assert with_string_field(raw, orjson.loads(raw), "model", "gpt-5") == raw.replace(b'"alias"', b'"gpt-5"')


def test_a_nested_field_with_the_same_value_is_left_alone() -> None:
    """A `model` inside metadata holding the same name is not the top-level one."""
    raw = b'{"metadata": {"model": "alias"}, "model": "alias"}'
    out = with_string_field(raw, orjson.loads(raw), "model", "gpt-5")
    assert out == b'{"metadata": {"model": "alias"}, "model": "gpt-5"}'


def test_the_same_value_leaves_the_body_as_it_is() -> None:
    """Nothing to change: the very bytes come back."""
    raw = b'{ "model" : "gpt-5" }'
    assert with_string_field(raw, orjson.loads(raw), "model", "gpt-5") is raw


def test_an_escaped_key_falls_back_to_a_correct_encoding() -> None:
    """A key written with escapes cannot be found by its spelling; the body is re-encoded instead."""
    raw = b'{"a": 1, "mod\\u0065l": "alias"}'
    assert orjson.loads(with_string_field(raw, orjson.loads(raw), "model", "x")) == {"a": 1, "model": "x"}


@given(
    before=st.dictionaries(st.sampled_from(["a", "b", "metadata"]), VALUES, max_size=3),
    after=st.dictionaries(st.sampled_from(["c", "d"]), VALUES, max_size=2),
    old=st.text(min_size=1, max_size=6),
    new=st.text(min_size=1, max_size=6),
    indent=st.sampled_from([None, 1]),
    ascii_only=st.booleans(),
)
def test_any_body_gets_exactly_the_new_value(
    before: dict[str, Any], after: dict[str, Any], old: str, new: str, indent: int | None, ascii_only: bool
) -> None:
    """Wherever `model` sits and however the client spaced and escaped its JSON, the result is the body with
    the new model; when the value's spelling can be found, every byte outside it is unchanged."""
    body = {**before, "model": old, **after}
    raw = json.dumps(body, indent=indent, ensure_ascii=ascii_only).encode()
    out = with_string_field(raw, body, "model", new)
    assert orjson.loads(out) == {**body, "model": new}
    head, sep, tail = raw.partition(b'"model"')
    spelled = orjson.dumps(old)
    if b'"model"' not in tail and tail.lstrip(b" :").startswith(spelled):  # the key once, the value as orjson spells it
        assert out == head + sep + tail.replace(spelled, orjson.dumps(new), 1)
