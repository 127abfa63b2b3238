"""`ccproxy init`: write a commented starter config (JSON with `//` comments, mode 0600).

Scope `user` writes `<user config dir>/config.json` (dirs.py), scope `project` writes
`./.ccproxy/config.json`. An existing config (`.json` or `.toml`) is kept unless `--force`.
On a terminal it asks for the Anthropic and OpenAI API keys (typed without echo; empty skips);
otherwise, and for each key skipped, the file holds `${ANTHROPIC_API_KEY:-}`-style references
that the loader expands when ccproxy starts, so the starter loads cleanly with or without them.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

from ccproxy_core.files import atomic_write

EXISTS_MESSAGE = "a config already exists at {path} (use --force to overwrite it)"

TEMPLATE = """\
// ccproxy configuration, written by `ccproxy init`.
// JSON with // comments. Values may be "$VAR" or "${{VAR:-default}}" from the environment
// ("$$" is a literal dollar sign). Precedence, highest first: command-line flags > CCPROXY_*
// environment > --config FILE > ./.ccproxy/config.json > user config > /etc/ccproxy/config.json.
// Check what is in effect with `ccproxy config show`. A running ccproxy applies saved edits
// within a second; the provider API (/providers) edits this file in place, comments kept.
{{
  // Where the proxy listens. Keep 127.0.0.1 unless other machines must reach it; then set
  // "apikey" too (without one, only clients on this machine are served).
  "host": "127.0.0.1",
  "port": 3456,

  // The key clients must send (x-api-key, or Authorization: Bearer). `ccproxy code` and
  // `ccproxy env` hand it to Claude Code for you.
  "apikey": "",

  "log": {{"level": "info"}},

  "providers": [
    {{
      // Anthropic's API (Messages, passed through unchanged). With an empty key, each client's
      // own credentials are forwarded (a Claude Code login, for one).
      "name": "anthropic",
      "kind": "anthropic",
      "api_base_url": "https://api.anthropic.com",
      "api_key": {anthropic_key},
      "models": ["claude-sonnet-4-6", "claude-opus-4-8", "claude-haiku-4-5"]
    }},
    {{
      // Any OpenAI-compatible API (Chat Completions, translated both ways): change the URL for
      // DeepSeek, OpenRouter, Groq, Ollama...
      "name": "openai",
      "kind": "openai",
      "api_base_url": "https://api.openai.com/v1",
      "api_key": {openai_key},
      "models": ["gpt-4.1", "gpt-4.1-mini"]
    }}
  ],

  // Which provider and model serve a request. "model": "" keeps the model the client asked for.
  "routes": {{
    "default": {{"provider": "anthropic", "model": ""}},
    // Claude Code's small background requests (haiku-class models), e.g. to a cheaper model:
    // "background": {{"provider": "openai", "model": "gpt-4.1-mini"}}
    "background": {background}
  }},

  // Requests whose estimated input is above this many tokens use the "longContext" route.
  "router": {{"long_context_threshold": 60000}}
}}
"""


def config_path(scope: str, cwd: Path | None = None) -> Path:
    if scope == "project":
        return (cwd or Path.cwd()) / ".ccproxy" / "config.json"
    from ccproxy_core.config.load import user_config_paths

    return user_config_paths()[0]


def _key(value: str, env_var: str) -> str:
    """A JSON string: the key itself (its `$` escaped from expansion) or an env reference."""
    return orjson.dumps(value.replace("$", "$$") if value else f"${{{env_var}:-}}").decode()


def render(anthropic_key: str = "", openai_key: str = "") -> str:
    background = (
        '{"provider": "openai", "model": "gpt-4.1-mini"}' if openai_key else '{"provider": "anthropic", "model": ""}'
    )
    return TEMPLATE.format(
        anthropic_key=_key(anthropic_key, "ANTHROPIC_API_KEY"),
        openai_key=_key(openai_key, "OPENAI_API_KEY"),
        background=background,
    )


def ask_keys(prompt: Callable[[str], str]) -> tuple[str, str]:
    print(
        "API keys are written to the config file (mode 0600). Press Enter to skip one and read it\n"
        "from the environment ($ANTHROPIC_API_KEY / $OPENAI_API_KEY) when ccproxy starts."
    )
    anthropic = prompt("Anthropic API key: ").strip()
    openai = prompt("OpenAI API key: ").strip()
    return anthropic, openai


def init(*, scope: str, force: bool) -> int:
    path = config_path(scope)
    existing = next((p for p in (path, path.with_suffix(".toml")) if p.exists()), None)
    if existing is not None and not force:
        print(f"ccproxy: {EXISTS_MESSAGE.format(path=existing)}", file=sys.stderr)
        return 1
    interactive = sys.stdin is not None and sys.stdin.isatty()
    anthropic, openai = ask_keys(getpass.getpass) if interactive else ("", "")
    atomic_write(path, render(anthropic, openai).encode(), mode=0o600)

    from ccproxy_core.config.load import read_file
    from ccproxy_core.config.model import ConfigError

    try:
        read_file(path, os.environ)
    except ConfigError as exc:  # a typed key that the loader refuses; say so now, not at start
        problems = "\n  ".join(exc.problems)
        print(f"ccproxy: the config was written but does not load:\n  {problems}", file=sys.stderr)
        return 1
    print(f"wrote {path} (mode 0600)")
    if not (anthropic and openai):
        print(
            "next: set ANTHROPIC_API_KEY / OPENAI_API_KEY in the environment (or edit the file), "
            "then run `ccproxy start` or `ccproxy code`"
        )
    else:
        print("next: `ccproxy start` or `ccproxy code`")
    return 0
