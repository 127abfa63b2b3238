"""`ccproxy completion bash|zsh|fish`: shell completion generated from the argparse parser itself.

The scripts are rendered from the same `build_parser()` that parses the command line, so a new
command or flag completes as soon as it exists, and a removed one stops completing: there is no
second list to forget. `commands(parser)` walks the parser into plain `Command` values (pure);
one renderer per shell turns those into a script:

    bash   a table of "command path -> words" in `case` statements and one `_ccproxy` function
    zsh    the bash script under zsh's `bashcompinit` (zsh ships it for exactly this)
    fish   one `complete -c ccproxy` line per command and flag, with the help text as description

Flags with choices complete their choices; flags taking a FILE complete file names; everything
after `ccproxy code` belongs to `claude` and is left to the shell's default.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from attrs import frozen

from ccproxy_core.cli.ops_commands import SHELLS as SHELLS

PROG = "ccproxy"
_PASS_THROUGH = frozenset({"code"})  # its arguments are claude's, not ours


@frozen
class Option:
    flags: tuple[str, ...]
    help: str = ""
    takes_value: bool = False
    choices: tuple[str, ...] = ()


@frozen
class Command:
    path: tuple[str, ...]  # () for ccproxy itself, ("auth", "import") for `ccproxy auth import`
    help: str = ""
    subcommands: tuple[tuple[str, str], ...] = ()  # (name, help), visible ones only
    options: tuple[Option, ...] = ()
    arguments: tuple[str, ...] = ()  # the choices of positional arguments (`completion bash`)


def _help(text: str | None) -> str:
    return "" if not text or text == argparse.SUPPRESS else " ".join(text.split())


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), help_text: str = "") -> Iterator[Command]:
    """Every command of `parser`, depth first, with its visible subcommands and flags."""
    options: list[Option] = []
    subs: list[tuple[str, str]] = []
    children: list[tuple[str, argparse.ArgumentParser, str]] = []
    arguments: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            shown = {a.dest: _help(a.help) for a in action._choices_actions}
            for name, child in action.choices.items():
                if name in shown:
                    subs.append((name, shown[name]))
                    children.append((name, child, shown[name]))
        elif not action.option_strings and action.choices:
            arguments += [str(c) for c in action.choices]
        elif action.option_strings and action.help != argparse.SUPPRESS:
            options.append(
                Option(
                    flags=tuple(action.option_strings),
                    help=_help(action.help),
                    takes_value=action.nargs != 0,
                    choices=tuple(str(c) for c in action.choices or ()),
                )
            )
    yield Command(
        path=path, help=help_text, subcommands=tuple(subs), options=tuple(options), arguments=tuple(arguments)
    )
    for name, child, child_help in children:
        yield from commands(child, (*path, name), child_help)


def _quote_sh(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def render_bash(cmds: list[Command]) -> str:
    """A bash completion script: `source <(ccproxy completion bash)`."""
    subs, words, choices, files = [], [], [], []
    for c in cmds:
        key = " ".join(c.path)
        if c.path and c.path[0] in _PASS_THROUGH:
            continue
        flags = [f for o in c.options for f in o.flags]
        subs.append(f"        {_quote_sh(key)}) echo {_quote_sh(' '.join(n for n, _ in c.subcommands))} ;;")
        listed = [n for n, _ in c.subcommands] + list(c.arguments) + flags
        words.append(f"        {_quote_sh(key)}) echo {_quote_sh(' '.join(listed))} ;;")
        for o in c.options:
            for flag in o.flags:
                pattern = _quote_sh(f"{key} {flag}".strip())
                if o.choices:
                    choices.append(f"        {pattern}) echo {_quote_sh(' '.join(o.choices))} ;;")
                elif o.takes_value:
                    files.append(pattern)
    file_case = f"        {'|'.join(files)}) return 0 ;;" if files else ""
    return f"""# bash completion for {PROG}, generated from its argument parser by `{PROG} completion bash`.
# Load it now with: source <({PROG} completion bash)
# or for good:      {PROG} completion bash > ~/.local/share/bash-completion/completions/{PROG}

_{PROG}_subcommands() {{
    case "$1" in
{chr(10).join(subs)}
    esac
}}

_{PROG}_words() {{
    case "$1" in
{chr(10).join(words)}
    esac
}}

_{PROG}_choices() {{
    case "$1" in
{chr(10).join(choices)}
    esac
}}

_{PROG}_takes_value() {{
    case "$1" in
{file_case}
    esac
    return 1
}}

_{PROG}() {{
    local cur prev word path="" i
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev=""
    [ "$COMP_CWORD" -gt 1 ] && prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        case " $(_{PROG}_subcommands "$path") " in
            *" $word "*) path="${{path:+$path }}$word" ;;
        esac
        case "$path" in
            {"|".join(sorted(_PASS_THROUGH))}) COMPREPLY=(); return 0 ;;
        esac
    done
    local key="${{path:+$path }}$prev" choices
    choices="$(_{PROG}_choices "$key")"
    if [ -n "$choices" ]; then
        mapfile -t COMPREPLY < <(compgen -W "$choices" -- "$cur")
        return 0
    fi
    if [ -n "$prev" ] && _{PROG}_takes_value "$key"; then
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return 0
    fi
    mapfile -t COMPREPLY < <(compgen -W "$(_{PROG}_words "$path")" -- "$cur")
}}

complete -o default -F _{PROG} {PROG}
"""


def render_zsh(cmds: list[Command]) -> str:
    """A zsh completion script: the bash one, loaded through zsh's own `bashcompinit`."""
    return (
        f"#compdef {PROG}\n# zsh completion for {PROG}: `source <({PROG} completion zsh)` in ~/.zshrc\n"
        "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n\n" + render_bash(cmds)
    )


def _quote_fish(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_condition(path: tuple[str, ...], siblings: tuple[str, ...]) -> str:
    if not path:
        return "__fish_use_subcommand"
    parts = [f"__fish_seen_subcommand_from {p}" for p in path]
    if siblings:
        parts.append(f"not __fish_seen_subcommand_from {' '.join(siblings)}")
    return "; and ".join(parts)


def render_fish(cmds: list[Command]) -> str:
    """A fish completion script: `ccproxy completion fish | source`."""
    lines = [
        f"# fish completion for {PROG}, generated from its argument parser by `{PROG} completion fish`.",
        f"# Load it for good: {PROG} completion fish > ~/.config/fish/completions/{PROG}.fish",
        f"complete -c {PROG} -e",
    ]
    for c in cmds:
        if c.path and c.path[0] in _PASS_THROUGH and len(c.path) > 1:
            continue
        sub_names = tuple(n for n, _ in c.subcommands)
        cond = _fish_condition(c.path, sub_names)
        for name, help_text in c.subcommands:
            lines.append(f"complete -c {PROG} -f -n {_quote_fish(cond)} -a {name} -d {_quote_fish(help_text)}")
        if c.path and c.path[0] in _PASS_THROUGH:
            continue
        if c.arguments:
            lines.append(f"complete -c {PROG} -f -n {_quote_fish(cond)} -a {_quote_fish(' '.join(c.arguments))}")
        for o in c.options:
            words = []
            for flag in o.flags:
                words.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
            value = f" -x -a {_quote_fish(' '.join(o.choices))}" if o.choices else (" -r -F" if o.takes_value else "")
            lines.append(f"complete -c {PROG} -n {_quote_fish(cond)} {' '.join(words)}{value} -d {_quote_fish(o.help)}")
    return "\n".join(lines) + "\n"


def render(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for `shell` (one of SHELLS)."""
    cmds = list(commands(parser))
    return {"bash": render_bash, "zsh": render_zsh, "fish": render_fish}[shell](cmds)


def main(shell: str) -> int:
    """`ccproxy completion SHELL`: print the script."""
    from ccproxy_core.cli.parser import build_parser

    print(render(shell, build_parser()), end="")
    return 0
