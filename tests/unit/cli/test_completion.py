"""`ccproxy completion`: scripts generated from the parser, sourced in real shells and asked to complete."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from ccproxy_core.cli import completion
from ccproxy_core.cli.main import build_parser, main

BASH_ASK = """
source "$1"
shift
for line in "$@"; do
    read -ra COMP_WORDS <<<"$line"
    [ "${line: -1}" = " " ] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _ccproxy
    echo "${COMPREPLY[*]}"
done
"""


def script(tmp_path: Path, shell: str) -> Path:
    path = tmp_path / f"ccproxy.{shell}"
    path.write_text(completion.render(shell, build_parser()))
    return path


def bash_complete(tmp_path: Path, *lines: str) -> list[list[str]]:
    result = subprocess.run(
        ["bash", "-c", BASH_ASK, "bash", str(script(tmp_path, "bash")), *lines],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [line.split() for line in result.stdout.splitlines()]


def test_every_visible_command_and_flag_is_in_the_model() -> None:
    """The walk finds each subcommand the parser shows, with its flags; the unit's `service run` stays hidden."""
    cmds = {c.path: c for c in completion.commands(build_parser())}
    top = [name for name, _ in cmds[()].subcommands]
    assert {"serve", "start", "service", "completion", "import", "auth"} <= set(top)
    assert [n for n, _ in cmds[("service",)].subcommands] == ["install", "uninstall", "status"]
    assert ("service", "run") not in cmds
    env_shell = next(o for o in cmds[("env",)].options if "--shell" in o.flags)
    assert env_shell.choices == ("sh", "fish", "powershell")
    assert cmds[("completion",)].arguments == completion.SHELLS


def test_a_new_subcommand_completes_without_touching_the_scripts() -> None:
    """The scripts come from the parser: a command added to it is in every shell's script."""
    parser = argparse.ArgumentParser(prog="ccproxy")
    sub = parser.add_subparsers()
    sub.add_parser("brand-new", help="a command added today")
    for shell in completion.SHELLS:
        assert "brand-new" in completion.render(shell, parser)


def test_cli_prints_the_script(capsys: pytest.CaptureFixture[str]) -> None:
    """`ccproxy completion fish` prints the fish script."""
    assert main(["completion", "fish"]) == 0
    assert capsys.readouterr().out.startswith("# fish completion for ccproxy")


@pytest.mark.slow
def test_bash_completes_commands_flags_and_choices(tmp_path: Path) -> None:
    """Sourced in bash: `ccproxy se` offers serve and service; flags, choices and subcommands complete."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    got = bash_complete(
        tmp_path,
        "ccproxy se",
        "ccproxy service ",
        "ccproxy env --shell ",
        "ccproxy auth i",
        "ccproxy stop --t",
        "ccproxy completion ",
        "ccproxy code --mo",
    )
    assert got[0] == ["serve", "service"]
    assert got[1][:3] == ["install", "uninstall", "status"]
    assert got[2] == ["sh", "fish", "powershell"]
    assert got[3] == ["import"]
    assert got[4] == ["--timeout"]
    assert got[5][:3] == ["bash", "zsh", "fish"]
    assert got[6] == [], "what follows `code` is claude's"


@pytest.mark.slow
def test_bash_completes_file_names_for_file_flags(tmp_path: Path) -> None:
    """A flag that takes a FILE completes file names."""
    (tmp_path / "my-config.json").write_text("{}")
    got = bash_complete(tmp_path, f"ccproxy serve --config {tmp_path}/my-")
    assert got[0] == [f"{tmp_path}/my-config.json"]


@pytest.mark.slow
def test_fish_completes_commands_and_choices(tmp_path: Path) -> None:
    """Sourced in fish: `ccproxy se` offers serve and service (with their help), and choices complete."""
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed (apt-get install fish; .ci/run installs it)")
    path = script(tmp_path, "fish")
    result = subprocess.run(
        [
            "fish",
            "--no-config",
            "-c",
            f"source {path}; complete -C 'ccproxy se'; echo ---; "
            "complete -C 'ccproxy env --shell '; echo ---; complete -C 'ccproxy auth '",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    first, shells, auth = (part.strip().splitlines() for part in result.stdout.split("---"))
    assert [line.split("\t")[0] for line in first] == ["serve", "service"]
    assert first[0].split("\t")[1] == "run the proxy in the foreground"
    assert sorted(line.split("\t")[0] for line in shells) == ["fish", "powershell", "sh"]
    assert sorted(line.split("\t")[0] for line in auth) == ["import", "login", "login-openai", "status"]


@pytest.mark.slow
def test_zsh_loads_the_script(tmp_path: Path) -> None:
    """Sourced in zsh (through bashcompinit) the completion function is defined."""
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed here; its script is the bash one under bashcompinit")
    path = script(tmp_path, "zsh")
    result = subprocess.run(
        ["zsh", "-f", "-c", f"source {path}; whence -w _ccproxy"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert "_ccproxy: function" in result.stdout, result.stderr
