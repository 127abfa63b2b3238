"""The comment-preserving JSONC editor: only what changes is rewritten."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccproxy_core.config import jsonc
from ccproxy_core.config.compat import strip_json_comments

STARTER = """\
// written by hand
{
  // where it listens
  "port": 3456, // the Go default
  "providers": [
    {
      // Anthropic, key from the environment
      "name": "anthropic",
      "api_key": "${ANTHROPIC_API_KEY:-}",
      "models": ["claude-sonnet-4-6"]
    },
    {
      "name": "openai", // the second one
      "api_key": "$OPENAI_API_KEY"
    }
  ]
}
"""


def providers(text: str) -> list[dict[str, object]]:
    data = orjson.loads(strip_json_comments(text))
    assert isinstance(data, dict)
    return list(data["providers"])


def test_a_changed_member_is_the_only_change() -> None:
    """Toggling one provider adds one member; every comment and `$VAR` stays byte for byte."""
    old = providers(STARTER)
    new = [old[0], {**old[1], "enabled": False}]
    out = jsonc.edit_named_list(STARTER, "providers", old, new)
    assert providers(out) == new
    assert out.replace(',\n      "enabled": false', "") == STARTER


def test_removing_and_appending_keep_the_other_entries_verbatim() -> None:
    """A deleted entry loses its text; a new one is appended; the untouched entry keeps its comment."""
    old = providers(STARTER)
    new = [old[1], {"name": "deepseek", "preset": "deepseek", "api_key": "${DEEPSEEK_API_KEY}"}]
    out = jsonc.edit_named_list(STARTER, "providers", old, new)
    assert providers(out) == new
    assert '"name": "openai", // the second one' in out
    assert "// where it listens" in out and "// the Go default" in out
    assert "Anthropic, key from the environment" not in out


def test_a_value_replaced_in_place() -> None:
    """Replacing a value keeps the member's trailing comment."""
    out = jsonc.set_member(STARTER, ["port"], 4000)
    assert '"port": 4000, // the Go default' in out


def test_a_missing_list_is_added_as_the_last_member() -> None:
    """A file without `providers` gets the list after its last member, past a trailing comment."""
    out = jsonc.set_member('{\n  "port": 1 // mine\n}\n', ["providers"], [{"name": "a"}])
    assert orjson.loads(strip_json_comments(out)) == {"port": 1, "providers": [{"name": "a"}]}
    assert '"port": 1, // mine' in out
    assert orjson.loads(jsonc.set_member("", ["providers"], [])) == {"providers": []}
    assert orjson.loads(jsonc.set_member("{}", ["a"], 1)) == {"a": 1}


def test_one_line_objects_stay_on_one_line() -> None:
    assert jsonc.set_member('{"a": 1}', ["b"], 2) == '{"a": 1, "b": 2}'
    assert jsonc.remove_member('{"a": 1, "b": 2}', ["a"]) == '{"b": 2}'
    assert jsonc.remove_member('{"a": 1, "b": 2}', ["b"]) == '{"a": 1}'


def test_broken_text_names_line_and_column() -> None:
    with pytest.raises(jsonc.JsoncError, match="line 2, column 8"):
        jsonc.parse('{\n  "a": ,\n}')


_entry = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b", "c", "d"])},
    optional={
        "enabled": st.booleans(),
        "api_key": st.sampled_from(["$K", "${K:-x}", "sk"]),
        "models": st.lists(st.sampled_from(["m1", "m2"]), max_size=2),
    },
)
_lists = st.lists(_entry, max_size=4, unique_by=lambda e: e["name"])


@given(old=_lists, new=_lists)
def test_any_edit_of_the_list_reads_back_as_the_new_list(
    old: list[dict[str, object]], new: list[dict[str, object]]
) -> None:
    """Whatever changes, the edited text parses to the new list and keeps the file's comments."""
    text = '// top\n{\n  // the port\n  "port": 1,\n  "providers": ' + jsonc.render(old, "  ") + "\n}\n"
    out = jsonc.edit_named_list(text, "providers", old, new)
    by_name = {e["name"]: e for e in new}
    got = providers(out)
    assert {e["name"]: e for e in got} == by_name
    assert "// top" in out and "// the port" in out
