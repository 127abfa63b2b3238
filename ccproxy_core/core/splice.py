"""A JSON body with one top-level string field replaced and every other byte as the client sent it.

A passthrough request (a Responses client to a Responses provider) must reach the provider as
it came but for `model`. Re-encoding the parsed body would change its spacing, its escapes and
its number spellings; the provider's prompt cache and the client's own signatures see bytes,
so the new value is spliced into the raw bytes instead.

Where the field sits is found without a JSON scanner in Python: each place the key is spelled
(`"model"`, a colon, the old value as JSON) is a candidate. The first key of the object is
top-level by position; any other candidate is accepted only if the spliced document parses to
exactly the intended one, so a nested `"model"` holding the same value is never the one replaced.
When no candidate proves right (an escaped spelling of the key, say), the body is re-encoded:
correct, if not byte for byte.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ccproxy_core.core.wire import JSON

_SPACE = b" \t\r\n"
_COLON = rb"[ \t\r\n]*:[ \t\r\n]*"
_NEXT = rb"(?=[ \t\r\n]*[,}])"  # the value ends there: "gpt-5" is not the start of "gpt-5-mini"


def with_string_field(raw: bytes, body: JSON, key: str, value: str) -> bytes:
    """`raw` (whose parsed form is `body`) with the top-level `key` set to `value`."""
    old = body.get(key)
    if old == value:
        return raw
    if not isinstance(old, str):
        return orjson.dumps({**body, key: value})
    new, spelled = orjson.dumps(value), orjson.dumps(old)
    pattern = re.compile(re.escape(orjson.dumps(key)) + _COLON + re.escape(spelled) + _NEXT)
    expected: Any = None
    for match in pattern.finditer(raw):
        spliced = raw[: match.end() - len(spelled)] + new + raw[match.end() :]
        if raw[: match.start()].strip(_SPACE) == b"{":
            return spliced  # the object's first key: top-level by position
        if expected is None:
            expected = {**body, key: value}
        try:
            if orjson.loads(spliced) == expected:
                return spliced
        except orjson.JSONDecodeError:
            continue
    return orjson.dumps({**body, key: value})
