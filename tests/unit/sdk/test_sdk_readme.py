"""The README's SDK-mode section says what the code does."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from ccproxy_core.config.model import SdkConfig, structure

README = Path(__file__).resolve().parents[3] / "README.md"


def _section() -> str:
    text = README.read_text()
    start = text.index("## SDK mode (local Claude Code)")
    return text[start : text.index("\n## ", start + 1)]


def test_the_sdk_example_config_is_the_default_config() -> None:
    """The README's `sdk` example loads and spells out exactly the defaults."""
    block = re.search(r"```json\n(.*?)```", _section(), re.S)
    assert block
    assert structure(orjson.loads(block.group(1))).sdk == SdkConfig()


def test_every_sdk_setting_is_documented() -> None:
    """Each field of SdkConfig has a row in the README's table."""
    section = _section()
    for name in SdkConfig.__attrs_attrs__:
        assert f"| `{name.name}` |" in section, name.name
