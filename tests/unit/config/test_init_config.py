"""`ccproxy init`: a commented starter config that loads, in the user or the project scope."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import platformdirs
import pytest

from ccproxy_core.config import starter as init_config
from ccproxy_core.config.load import load


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cwd = tmp_path / "project"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: no questions
    return cwd


def user_config() -> Path:
    return Path(platformdirs.user_config_dir("ccproxy")) / "config.json"


def test_user_scope_writes_a_private_commented_config_that_loads(project: Path) -> None:
    assert init_config.init(scope="user", force=False) == 0
    path = user_config()
    assert str(path).startswith(os.environ["XDG_CONFIG_HOME"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.lstrip().startswith("//")
    assert "${ANTHROPIC_API_KEY:-}" in text
    assert "${OPENAI_API_KEY:-}" in text
    config = load(config_file=str(path)).config
    assert (config.host, config.port) == ("127.0.0.1", 3456)
    assert [p.name for p in config.providers] == ["anthropic", "openai"]
    assert config.routes["default"].provider == "anthropic"
    assert config.router.long_context_threshold == 60000
    assert all(not p.keys for p in config.providers), "no key in the environment: none in the config"


def test_env_references_are_read_when_ccproxy_starts(project: Path) -> None:
    init_config.init(scope="user", force=False)
    env = {"ANTHROPIC_API_KEY": "sk-ant-1", "OPENAI_API_KEY": "sk-2"}
    config = load(config_file=str(user_config()), env=env)
    assert [p.keys for p in config.config.providers] == [("sk-ant-1",), ("sk-2",)]


def test_project_scope_writes_dot_ccproxy_in_the_current_directory(project: Path) -> None:
    assert init_config.init(scope="project", force=False) == 0
    path = project / ".ccproxy" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not user_config().exists()
    assert load(cwd=project, user_paths=[]).files[-1] == path


def test_an_existing_config_is_kept_without_force(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / ".ccproxy" / "config.json"
    path.parent.mkdir()
    path.write_text('{"port": 9999}')
    assert init_config.init(scope="project", force=False) == 1
    assert "already exists" in capsys.readouterr().err
    assert "--force" in init_config.EXISTS_MESSAGE
    assert path.read_text() == '{"port": 9999}'
    assert init_config.init(scope="project", force=True) == 0
    assert load(config_file=str(path)).config.port == 3456


def test_an_existing_toml_config_counts_as_existing(project: Path) -> None:
    toml = project / ".ccproxy" / "config.toml"
    toml.parent.mkdir()
    toml.write_text("port = 9999\n")
    assert init_config.init(scope="project", force=False) == 1
    assert not toml.with_suffix(".json").exists()


def test_on_a_terminal_it_asks_for_the_keys(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", FakeTTY())
    answers = iter(["sk-ant-$ecret", "  sk-openai  "])
    prompts: list[str] = []
    monkeypatch.setattr(init_config.getpass, "getpass", lambda p: prompts.append(p) or next(answers))
    assert init_config.init(scope="user", force=False) == 0
    assert prompts == ["Anthropic API key: ", "OpenAI API key: "]
    config = load(config_file=str(user_config()), env={}).config
    assert [p.keys for p in config.providers] == [("sk-ant-$ecret",), ("sk-openai",)], "`$` is kept literal"
    background = config.routes["background"]
    assert (background.provider, background.model) == ("openai", "gpt-4.1-mini")
    assert "sk-ant" not in capsys.readouterr().out, "keys are never echoed"


def test_a_skipped_key_becomes_an_env_reference(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", FakeTTY())
    answers = iter(["sk-ant", ""])
    monkeypatch.setattr(init_config.getpass, "getpass", lambda _: next(answers))
    assert init_config.init(scope="project", force=False) == 0
    text = (project / ".ccproxy" / "config.json").read_text()
    assert '"sk-ant"' in text
    assert "${OPENAI_API_KEY:-}" in text


@pytest.mark.parametrize(("anthropic", "openai"), [("", ""), ("a", ""), ("", "b"), ('a"b\\c', "d")])
def test_every_rendering_is_valid_config(anthropic: str, openai: str, tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(init_config.render(anthropic, openai))
    keys = [p.keys for p in load(config_file=str(path), env={}, user_paths=[]).config.providers]
    assert keys == [(anthropic,) if anthropic else (), (openai,) if openai else ()]
