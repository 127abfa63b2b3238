"""The README's example configuration is a configuration ccproxy accepts, as written."""

from __future__ import annotations

import re
from pathlib import Path

from ccproxy_core.config.load import load

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_example_config_loads(tmp_path: Path) -> None:
    block = re.search(r"```jsonc\n(.*?)```", README.read_text(), re.S)
    assert block, "the README has an example config"
    path = tmp_path / "config.json"
    path.write_text(block.group(1))
    env = {"OPENAI_API_KEY": "sk-o", "DEEPSEEK_API_KEY": "sk-d"}
    config = load(config_file=str(path), env=env, cwd=tmp_path, user_paths=[]).config
    assert [p.name for p in config.providers] == ["anthropic", "claude-max", "openai", "deepseek"]
    assert config.routes["claude-opus-*"].model == "claude-opus-4-8"
    assert config.limits.request_timeout == 600 and config.breaker.open_seconds == 30
