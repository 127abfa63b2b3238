"""`ccproxy import`: each foreign format becomes a commented native config that loads to the same providers and routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccproxy_core.cli import importer
from ccproxy_core.config.load import load

CCR = Path(__file__).resolve().parents[2] / "fixtures" / "ccr"

GO = """\
// Go ccproxy config.json
{
  "host": "127.0.0.1", "port": 3456, "log": true, "apikey": "${PROXY_KEY}",
  "providers": [
    {"name": "anthropic", "api_key": "${ANTHROPIC_API_KEY}", "api_base_url": "https://api.anthropic.com",
     "models": ["claude-sonnet-4-20250514"], "enabled": true, "created_at": "2025-07-20T10:00:00Z"},
    {"name": "deepseek", "api_key": "sk-d", "api_base_url": "https://api.deepseek.com",
     "models": ["deepseek-chat"], "transformers": [{"name": "deepseek"}]}
  ],
  "routes": {
    "default": {"provider": "anthropic", "model": "claude-sonnet-4-20250514"},
    "think": {"provider": "deepseek", "model": "deepseek-reasoner", "parameters": {"temperature": 0.6}}
  },
  "performance": {"request_timeout": "30s", "metrics_enabled": true},
  "proxy_url": "http://proxy:8080"
}
"""

NPM = """\
{
  "server": {"port": 8082, "host": "127.0.0.1"},
  "providers": {
    "openai": {"apiKey": "$OPENAI_KEY", "baseURL": "https://api.openai.com/v1", "responseStyle": "openai"},
    "anthropic": {"apiKey": "sk-ant-x", "baseURL": "https://api.anthropic.com", "responseStyle": "anthropic",
                  "timeout": 30}
  },
  "models": {"bigModel": "gpt-4.1@openai", "smallModel": "gpt-4.1-mini@openai", "preferredProvider": "openai"},
  "logging": {"level": "info", "format": "json"}
}
"""

CCPROXY_API = """\
# ccproxy-api .ccproxy.toml
[server]
host = "127.0.0.1"
port = 8000
log_level = "DEBUG"
workers = 2

[security]
auth_token = "tok-123"

[claude]
cli_path = "/usr/local/bin/claude"
"""

ENV = {
    "PROXY_KEY": "pk",
    "ANTHROPIC_API_KEY": "sk-ant-env",
    "OPENAI_KEY": "sk-oai",
    "DEEPSEEK_KEY": "k1",
    "CLAUDE_KEY": "k2",
}


def loaded(path: Path, home: Path) -> tuple[object, object, object, object, str]:
    config = load(config_file=str(path), env=ENV, cwd=home, user_paths=[]).config
    return config.providers, config.routes, config.router, config.limits, config.apikey


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("go.json", GO),
        ("settings.json", NPM),
        ("ccr.json", (CCR / "readme-example.json").read_text()),
        ("ccr5.json", (CCR / "json5-env.json").read_text()),
        ("ccproxy.toml", CCPROXY_API),
    ],
)
def test_import_round_trips(isolated_home: Path, name: str, text: str) -> None:
    """Loading the imported file gives the providers, routes, router, limits and apikey of the original."""
    source = isolated_home / name
    source.write_text(text, encoding="utf-8")
    out = isolated_home / "imported.json"
    assert importer.run(str(source), str(out), force=False, when="2026-01-01", say=lambda _: None) == 0
    assert loaded(out, isolated_home) == loaded(source, isolated_home)


def test_secrets_from_the_environment_stay_references(isolated_home: Path) -> None:
    """`${ANTHROPIC_API_KEY}` is written as a reference, never as its value."""
    source = isolated_home / "go.json"
    source.write_text(GO)
    printed: list[str] = []
    importer.run(str(source), None, force=False, when="2026-01-01", say=printed.append)
    assert '"api_key": "${ANTHROPIC_API_KEY}"' in printed[0]
    assert "sk-ant-env" not in printed[0]


def test_output_is_commented_and_names_what_was_dropped(isolated_home: Path) -> None:
    """The header names the source and format; each dropped setting is its own comment line."""
    source = isolated_home / "ccr.json"
    source.write_bytes((CCR / "readme-example.json").read_bytes())
    printed: list[str] = []
    importer.run(str(source), None, force=False, when="2026-01-01", say=printed.append)
    text = printed[0]
    assert text.startswith(
        f"// ccproxy config, converted by `ccproxy import` from {source}\n"
        "// (claude-code-router config.json) on 2026-01-01."
    )
    assert "//   - PROXY_URL (set HTTPS_PROXY in the environment instead)" in text
    assert "//   - LOG (ccproxy always logs, and `ccproxy logs` shows the background server's log)\n" in text
    assert "//   - Providers.deepseek.transformer.deepseek-chat (per-model transformers)" in text
    assert "    // deepseek: openai, https://api.deepseek.com" in text
    assert "  // which provider and model serve each scenario" in text


def test_format_names(isolated_home: Path) -> None:
    """Each format is named in the header as what it is."""
    for name, text, expected in [
        ("go.json", GO, "Go ccproxy config.json"),
        ("settings.json", NPM, "npm claude-code-proxy settings.json"),
        ("c.toml", CCPROXY_API, "ccproxy-api / ccproxy-multi TOML"),
    ]:
        path = isolated_home / name
        path.write_text(text)
        assert importer.native_of(path, text)[2] == expected


def test_an_existing_output_is_not_overwritten_without_force(isolated_home: Path) -> None:
    """OUT that exists is refused unless --force."""
    source = isolated_home / "go.json"
    source.write_text(GO)
    out = isolated_home / "out.json"
    out.write_text("{}")
    with pytest.raises(FileExistsError, match="--force"):
        importer.run(str(source), str(out), force=False, when="x", say=lambda _: None)
    importer.run(str(source), str(out), force=True, when="x", say=lambda _: None)
    assert out.read_text().startswith("// ccproxy config")


def test_the_cli_writes_out(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ccproxy import FILE -o OUT` writes OUT and says what it did; a second run without --force is one line."""
    from ccproxy_core.cli.main import main

    source = isolated_home / "go.json"
    source.write_text(GO)
    out = isolated_home / "out.json"
    assert main(["import", str(source), "-o", str(out)]) == 0
    assert f"wrote {out} (Go ccproxy config.json -> ccproxy;" in capsys.readouterr().out
    assert main(["import", str(source), "-o", str(out)]) == 1
    assert capsys.readouterr().err == f"ccproxy: {out} exists; pass --force to replace it\n"
