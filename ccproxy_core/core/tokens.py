"""A local estimate of a request's input tokens: no tokenizer download, no network, well under 1 ms.

It answers `count_tokens` locally and feeds the router's long-context rule, so it runs on every
request. Claude's tokenizer is not public; the estimate models what a BPE tokenizer does and is
calibrated against real Anthropic counts (see "Calibration").

Method. The request is walked once: text (system, text blocks, thinking, tool results, tool
names and descriptions) is collected as strings, structured data (tool inputs, tool schemas)
as compact JSON, and everything that is not text gets a fixed cost (images, PDFs, per-message
and per-tool framing). The collected bytes are then measured in two passes that run at C
speed, because a regex walk over a 100 KB Claude Code body costs 1-3 ms in Python:

1. `bytes.translate` maps every byte to its weight in sixteenths of a token and the weights
   are summed with `zlib.adler32`, whose low half is 1 + the byte sum mod 65521 (RFC 1950);
   in chunks of 4 KB of weights at most 15 the sum never wraps, so it is exact. Letters
   weigh 1/8 each, digits 3/8, punctuation 5/8, a newline 1/2, a space nothing (BPE glues it
   to the next word), a UTF-8 lead byte 7/8 and a continuation byte 1/8 (a CJK character is
   about 1.1 tokens);
2. runs of ASCII letters are counted as the non-letter -> letter transitions of a 0/1 copy
   of the bytes (`bytes.count`), and each run (word) costs 1/2 token more.

So a word costs 1/2 + n/8 tokens: "the" 0.9, "pelican" 1.4, "additionalProperties" 3, which
tracks a BPE vocabulary's habit of keeping common words whole and splitting long ones. Every
piece is separated by a newline, so the total is a sum over pieces: adding a message or a
tool can only raise the estimate.

Calibration (recorded `input_tokens` in tests/fixtures/recorded/anthropic):
- count_tokens for "The quick brown fox jumps over the lazydog." is 19, and the Messages API
  bills 17 for "Two names for a pet pelican, be brief": about 9-10 tokens of text plus ~9 of
  framing, hence `REQUEST_OVERHEAD` + one `MESSAGE_OVERHEAD`.
- with `thinking` enabled the same prompt bills 46 on claude-haiku-4-5 (+29); with adaptive
  thinking on claude-opus-4-6, 34 (+17).
- requests with tools carry a tool-use system prompt: Anthropic documents 346 tokens (auto)
  for Claude 4 models, and the claude-sonnet-4 recording agrees; the four claude-haiku-4-5
  recordings agree with each other on ~500, hence `TOOLS_PREAMBLE_HAIKU`.
- the tool_use + tool_result round trip bills ~23 tokens of framing per block beyond its
  text (`BLOCK_OVERHEAD`).
The constants were fitted to those nine points (all land within 6%), so they calibrate rather
than validate. As a sanity check the 78 KB Claude Code request in tests/fixtures/claude-code
(24 tools) comes out at ~18.4k: ~15.7k for 63 KB of tool JSON, ~1.3k for the system blocks,
~1.4k for the messages, in line with the 12-17k "System tools" Claude Code's /context shows.
Images cost `ceil(width*height/750)` capped at 1600 (Anthropic's published formula) when
the PNG/GIF header gives the size, else 1600; base64 bytes are never measured as text.
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from ccproxy_core.core.wire import JSON

REQUEST_OVERHEAD = 7
MESSAGE_OVERHEAD = 3
BLOCK_OVERHEAD = 23  # tool_use / tool_result framing
TOOLS_PREAMBLE = 346
TOOLS_PREAMBLE_HAIKU = 500
TOOL_OVERHEAD = 12
THINKING_ENABLED = 29
THINKING_ADAPTIVE = 17
IMAGE_TOKENS = 1600  # the cap: larger images are scaled down to about 1.15 megapixels
PDF_TOKENS_PER_100KB = 2000  # a crude page count from the file size; PDFs mix text and page images

_WORD_START = 8  # sixteenths of a token per run of letters
_CHUNK = 4096  # 4096 * 15 < 65521: the Adler-32 sum of one chunk of weights never wraps


def _weight(byte: int) -> int:
    """Sixteenths of a token for one byte (at most 15)."""
    char = chr(byte)
    if byte >= 0xC0:
        return 14  # UTF-8 lead byte
    if byte >= 0x80:
        return 2  # UTF-8 continuation byte
    if char.isalpha():
        return 2
    if char.isdigit():
        return 6
    if char in " \r":
        return 0
    if char == "\n":
        return 8
    if byte < 0x20 or byte == 0x7F:
        return 4
    return 10  # punctuation


_WEIGHTS = bytes(_weight(byte) for byte in range(256))
_LETTER_FLAGS = bytes(1 if chr(byte).isascii() and chr(byte).isalpha() else 0 for byte in range(256))


def _measure(data: bytes) -> int:
    """Sixteenths of a token in `data`, which must start with a non-letter."""
    weights = memoryview(data.translate(_WEIGHTS))
    units = 0
    for start in range(0, len(weights), _CHUNK):
        units += (zlib.adler32(weights[start : start + _CHUNK]) & 0xFFFF) - 1
    words = data.translate(_LETTER_FLAGS).count(b"\x00\x01")
    return units + _WORD_START * words


class _Tally:
    """What one walk over a request collects: text, JSON, and fixed costs."""

    __slots__ = ("fixed", "jsons", "texts")

    def __init__(self) -> None:
        self.texts: list[str] = [""]  # the leading "" makes the joined text start with "\n"
        self.jsons: list[bytes] = [b""]
        self.fixed = REQUEST_OVERHEAD

    def text(self, value: Any) -> None:
        if isinstance(value, str) and value:
            self.texts.append(value)

    def json(self, value: Any) -> None:
        try:
            self.jsons.append(orjson.dumps(value))
        except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits
            self.texts.append(str(value))

    def total(self) -> int:
        text = "\n".join(self.texts).encode("utf-8", "replace")
        sixteenths = _measure(text) + _measure(b"\n".join(self.jsons))
        return self.fixed + sixteenths // 16


def _image_tokens(data: Any) -> int:
    """Tokens of a base64 image: from its pixel size when the header is PNG or GIF."""
    if not isinstance(data, str):
        return IMAGE_TOKENS
    try:
        head = base64.b64decode(data[:32], validate=False)
    except (binascii.Error, ValueError):
        return IMAGE_TOKENS
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        width, height = int.from_bytes(head[6:8], "little"), int.from_bytes(head[8:10], "little")
    else:
        return IMAGE_TOKENS
    return max(1, min(IMAGE_TOKENS, math.ceil(width * height / 750)))


def _pdf_tokens(data: Any) -> int:
    size = len(data) * 3 // 4 if isinstance(data, str) else 0
    return PDF_TOKENS_PER_100KB * max(1, math.ceil(size / 100_000))


def _source(source: Any, tally: _Tally, *, image: bool) -> None:
    if not isinstance(source, dict):
        tally.fixed += IMAGE_TOKENS if image else PDF_TOKENS_PER_100KB
        return
    kind = source.get("type")
    if kind == "text":
        tally.text(source.get("data"))
    elif kind == "content":
        _blocks(source.get("content"), tally)
    elif kind == "base64":
        data = source.get("data")
        tally.fixed += _image_tokens(data) if image else _pdf_tokens(data)
    else:  # url or file: the size is unknown here
        tally.fixed += IMAGE_TOKENS if image else PDF_TOKENS_PER_100KB


def _blocks(content: Any, tally: _Tally) -> None:
    """An Anthropic `content`: a string or a list of blocks of any type."""
    if isinstance(content, str):
        tally.text(content)
        return
    if not isinstance(content, list):
        return
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            tally.text(block.get("text"))
        elif kind == "thinking":
            tally.text(block.get("thinking"))
        elif kind in ("tool_use", "server_tool_use"):
            tally.fixed += BLOCK_OVERHEAD
            tally.text(block.get("id"))
            tally.text(block.get("name"))
            tally.json(block.get("input"))
        elif kind == "tool_result" or (isinstance(kind, str) and kind.endswith("_tool_result")):
            tally.fixed += BLOCK_OVERHEAD
            tally.text(block.get("tool_use_id"))
            _blocks(block.get("content"), tally)
        elif kind == "image":
            _source(block.get("source"), tally, image=True)
        elif kind == "document":
            tally.text(block.get("title"))
            _source(block.get("source"), tally, image=False)
        elif kind == "redacted_thinking":
            data = block.get("data")
            tally.fixed += len(data) // 5 if isinstance(data, str) else 0  # encrypted thinking
        elif kind == "search_result":
            tally.text(block.get("title"))
            tally.text(block.get("source"))
            _blocks(block.get("content"), tally)
        else:
            tally.json(block)


def _tools(body: Mapping[str, Any], tally: _Tally, describe: Iterable[str]) -> None:
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        return
    model = body.get("model")
    tally.fixed += TOOLS_PREAMBLE_HAIKU if isinstance(model, str) and "haiku" in model else TOOLS_PREAMBLE
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        spec = tool.get("function", tool)  # OpenAI nests the definition under "function"
        if not isinstance(spec, dict):
            continue
        tally.fixed += TOOL_OVERHEAD
        tally.text(spec.get("name"))
        tally.text(spec.get("description"))
        for key in describe:
            if key in spec:
                tally.json(spec[key])


def estimate_tokens(body: JSON) -> int:
    """Estimated input tokens of an Anthropic Messages request (the `count_tokens` answer)."""
    tally = _Tally()
    _blocks(body.get("system"), tally)
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        if isinstance(message, dict):
            tally.fixed += MESSAGE_OVERHEAD
            _blocks(message.get("content"), tally)
    _tools(body, tally, ("input_schema",))
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        kind = thinking.get("type")
        if kind == "enabled":
            tally.fixed += THINKING_ENABLED
        elif kind == "adaptive":
            tally.fixed += THINKING_ADAPTIVE
    return tally.total()
