"""Edit a JSON-with-comments config file in place: change only the values that change.

The live provider API writes to a file a person wrote: `ccproxy init`'s commented starter, or a
Go ccproxy config with `//` notes and `"${OPENAI_API_KEY}"` references. Re-serialising the
parsed dict would drop every comment and write the expanded keys in plain text, so edits are
made on the text instead:

    parse(text) -> Node           a span tree (start/end offsets) of the document's values
    set_member(text, path, v)     replace one value, or insert the member when it is absent
    remove_member(text, path)     drop one member of an object (and its comma)
    append_item / remove_item     the same for array elements

Everything a change does not touch (comments, spacing, the other providers, `$VAR` strings)
stays byte for byte. Each edit returns new text; callers re-parse between edits, which keeps
the offsets honest and costs nothing at config-file sizes. Pure: text in, text out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

import orjson
from attrs import frozen

Path = Sequence[str | int]  # keys of objects, indexes of arrays, from the document's root


class JsoncError(ValueError):
    """The text is not JSON (comments allowed); says where."""


@frozen
class Member:
    key: str
    start: int  # offset of the key's opening quote
    value: Node


@frozen
class Node:
    kind: Literal["object", "array", "scalar"]
    start: int
    end: int  # one past the last character of the value
    members: tuple[Member, ...] = ()
    items: tuple[Node, ...] = ()

    def member(self, key: str) -> Member | None:
        return next((m for m in self.members if m.key == key), None)


_SCALAR = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, pos: int, what: str) -> JsoncError:
        line = self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return JsoncError(f"line {line}, column {column}: {what}")

    def skip(self, pos: int) -> int:
        """Past whitespace and comments."""
        text, n = self.text, len(self.text)
        while pos < n:
            if text[pos] in " \t\r\n\ufeff":
                pos += 1
            elif text.startswith("//", pos):
                end = text.find("\n", pos)
                pos = n if end < 0 else end
            elif text.startswith("/*", pos):
                end = text.find("*/", pos + 2)
                if end < 0:
                    raise self.fail(pos, "unterminated /* comment")
                pos = end + 2
            else:
                break
        return pos

    def string_end(self, pos: int) -> int:
        text, n, i = self.text, len(self.text), pos + 1
        while i < n and text[i] != '"':
            i += 2 if text[i] == "\\" else 1
        if i >= n:
            raise self.fail(pos, "unterminated string")
        return i + 1

    def value(self, pos: int) -> Node:
        pos = self.skip(pos)
        if pos >= len(self.text):
            raise self.fail(pos, "expected a value")
        c = self.text[pos]
        if c == "{":
            return self.obj(pos)
        if c == "[":
            return self.array(pos)
        if c == '"':
            return Node("scalar", pos, self.string_end(pos))
        m = _SCALAR.match(self.text, pos)
        if not m:
            raise self.fail(pos, "expected a value")
        return Node("scalar", pos, m.end())

    def obj(self, start: int) -> Node:
        members: list[Member] = []
        pos = self.skip(start + 1)
        while self.text[pos : pos + 1] != "}":
            if self.text[pos : pos + 1] != '"':
                raise self.fail(pos, "expected a key in double quotes")
            key_end = self.string_end(pos)
            key = orjson.loads(self.text[pos:key_end])
            colon = self.skip(key_end)
            if self.text[colon : colon + 1] != ":":
                raise self.fail(colon, "expected ':'")
            node = self.value(colon + 1)
            members.append(Member(key, pos, node))
            pos = self.skip(node.end)
            if self.text[pos : pos + 1] == ",":
                pos = self.skip(pos + 1)
            elif self.text[pos : pos + 1] != "}":
                raise self.fail(pos, "expected ',' or '}'")
        return Node("object", start, pos + 1, members=tuple(members))

    def array(self, start: int) -> Node:
        items: list[Node] = []
        pos = self.skip(start + 1)
        while self.text[pos : pos + 1] != "]":
            node = self.value(pos)
            items.append(node)
            pos = self.skip(node.end)
            if self.text[pos : pos + 1] == ",":
                pos = self.skip(pos + 1)
            elif self.text[pos : pos + 1] != "]":
                raise self.fail(pos, "expected ',' or ']'")
        return Node("array", start, pos + 1, items=tuple(items))


def parse(text: str) -> Node:
    """The span tree of `text`; an empty document is an empty object."""
    parser = _Parser(text)
    start = parser.skip(0)
    if start >= len(text):
        return Node("object", len(text), len(text))
    node = parser.value(start)
    rest = parser.skip(node.end)
    if rest < len(text):
        raise parser.fail(rest, "unexpected text after the end of the document")
    return node


def find(root: Node, path: Path) -> Node:
    node = root
    for step in path:
        if isinstance(step, int):
            if node.kind != "array" or not 0 <= step < len(node.items):
                raise KeyError(f"no item {step} at {list(path)}")
            node = node.items[step]
        else:
            member = node.member(step) if node.kind == "object" else None
            if member is None:
                raise KeyError(f"no key {step!r} at {list(path)}")
            node = member.value
    return node


# --- rendering ------------------------------------------------------------------------------------


def _line_indent(text: str, pos: int) -> str:
    line_start = text.rfind("\n", 0, pos) + 1
    m = re.match(r"[ \t]*", text[line_start:pos])
    return m.group(0) if m else ""


def render(value: Any, indent: str) -> str:
    """`value` as indented JSON whose continuation lines start at `indent`."""
    dumped = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    return dumped.replace("\n", "\n" + indent)


def _after_line_comment(text: str, pos: int) -> int:
    """Where a new member may go after the value ending at `pos`: past a `// comment` on its line."""
    m = re.compile(r"[ \t]*(//[^\n]*|/\*.*?\*/[ \t]*)?").match(text, pos)
    return m.end() if m and m.group(1) and m.group(1).startswith("//") else pos


def _insert_into(text: str, container: Node, make: Callable[[str], str]) -> str:
    """A member or item, rendered by `make(indent)`, added last to an object or array."""
    children: Sequence[Member | Node] = container.members or container.items
    if not children:
        outer = _line_indent(text, container.start)
        inner = outer + "  "
        return text[: container.start + 1] + "\n" + inner + make(inner) + "\n" + outer + text[container.end - 1 :]
    last = children[-1]
    last_start = last.start
    last_end = last.value.end if isinstance(last, Member) else last.end
    if "\n" not in text[container.start : last_start]:  # written on one line: stay on it
        return text[:last_end] + ", " + make(_line_indent(text, container.start)) + text[last_end:]
    indent = _line_indent(text, last_start)
    after = _after_line_comment(text, last_end)
    return text[:last_end] + "," + text[last_end:after] + "\n" + indent + make(indent) + text[after:]


def set_member(text: str, path: Path, value: Any) -> str:
    """`value` at `path` (the last step a key): replaced in place, or added as the object's last member."""
    if not text.strip():
        text = "{}\n"
    key = path[-1] if path else None
    parent = find(parse(text), path[:-1])
    if not isinstance(key, str) or parent.kind != "object":
        raise KeyError(f"{list(path)} does not name a key of an object")
    member = parent.member(key)
    if member is not None:
        indent = _line_indent(text, member.start)
        return text[: member.value.start] + render(value, indent) + text[member.value.end :]
    name = orjson.dumps(key).decode()
    return _insert_into(text, parent, lambda indent: f"{name}: {render(value, indent)}")


def _remove_child(text: str, container: Node, index: int) -> str:
    children: Sequence[Member | Node] = container.members or container.items
    starts = [c.start for c in children]
    ends = [c.value.end if isinstance(c, Member) else c.end for c in children]
    if index > 0:
        # ", <this child>": from the end of the one before, so comments above the next one stay.
        return text[: ends[index - 1]] + text[ends[index] :]
    if len(children) > 1:
        return text[: starts[0]] + text[starts[1] :]
    return text[: container.start + 1] + text[container.end - 1 :]


def remove_member(text: str, path: Path) -> str:
    root = parse(text)
    parent = find(root, path[:-1])
    key = path[-1]
    keys = [m.key for m in parent.members]
    if parent.kind != "object" or key not in keys:
        raise KeyError(f"no key {key!r} at {list(path[:-1])}")
    return _remove_child(text, parent, keys.index(str(key)))


def remove_item(text: str, path: Path) -> str:
    root = parse(text)
    parent = find(root, path[:-1])
    index = path[-1]
    if parent.kind != "array" or not isinstance(index, int) or not 0 <= index < len(parent.items):
        raise KeyError(f"no item {index} at {list(path[:-1])}")
    return _remove_child(text, parent, index)


def append_item(text: str, path: Path, value: Any) -> str:
    array = find(parse(text), path)
    if array.kind != "array":
        raise KeyError(f"{list(path)} is not an array")
    return _insert_into(text, array, lambda indent: render(value, indent))


# --- a list of objects keyed by name (the providers) ---------------------------------------------


def edit_named_list(text: str, key: str, old: Sequence[Any], new: Sequence[Any]) -> str:
    """`text` with the top-level list `key` turned from `old` into `new`, touching only what changed.

    `old` is the list as the file has it (parsed, not expanded); entries are matched by their
    `name`. A removed entry loses its text, a new one is appended, a changed one has only its
    changed members replaced, added or removed; an unchanged one keeps every byte. Without the
    key in the file, the whole list is added as the document's last member.
    """
    root = parse(text)
    member = root.member(key) if root.kind == "object" else None
    if member is None or member.value.kind != "array" or len(member.value.items) != len(old):
        return set_member(text, [key], list(new))
    names_new = [_name(v) for v in new]
    for index in reversed(range(len(old))):
        if _name(old[index]) not in names_new:
            text = remove_item(text, [key, index])
    kept = [o for o in old if _name(o) in names_new]
    for index, before in enumerate(kept):
        after = next(v for v in new if _name(v) == _name(before))
        if after != before:
            text = _edit_object(text, [key, index], before, after)
    names_kept = {_name(o) for o in kept}
    for value in new:
        if _name(value) not in names_kept:
            text = append_item(text, [key], value)
    return text


def _name(value: Any) -> Any:
    return value.get("name") if isinstance(value, dict) else None


def _edit_object(text: str, path: Path, before: Any, after: Any) -> str:
    if not (isinstance(before, dict) and isinstance(after, dict)) or find(parse(text), path).kind != "object":
        root = parse(text)
        node = find(root, path)
        return text[: node.start] + render(after, _line_indent(text, node.start)) + text[node.end :]
    for k in [k for k in before if k not in after]:
        text = remove_member(text, [*path, k])
    for k, v in after.items():
        if k not in before or before[k] != v:
            text = set_member(text, [*path, k], v)
    return text
