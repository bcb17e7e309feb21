"""Shell completion scripts for ``stepburst``, generated from its argparse parser.

``stepburst completion bash|zsh|fish`` prints one; the script completes commands (the local
engine's too), their options, and the fixed choices of an option. Being generated from the
parser, it never lists an option the CLI does not take.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field


@dataclass
class _Command:
    options: list[str] = field(default_factory=list)
    # Option or positional choices, e.g. `completion` takes bash, zsh or fish.
    choices: list[str] = field(default_factory=list)
    subcommands: list[str] = field(default_factory=list)


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:  # type: ignore[type-arg]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _describe(parser: argparse.ArgumentParser) -> _Command:
    command = _Command()
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        command.options.extend(s for s in action.option_strings if s.startswith("--"))
        if (
            not action.option_strings
            and action.choices
            and not isinstance(action, argparse._SubParsersAction)
        ):
            command.choices.extend(str(choice) for choice in action.choices)
    found = _subparsers(parser)
    if found is not None:
        command.subcommands = list(found.choices)
    return command


def commands(parser: argparse.ArgumentParser) -> dict[str, _Command]:
    """Every command path ("" for the top level, "local up" for a nested one) and its words."""
    described: dict[str, _Command] = {"": _describe(parser)}
    pending = [("", parser)]
    while pending:
        path, current = pending.pop()
        found = _subparsers(current)
        if found is None:
            continue
        for name, child in found.choices.items():
            child_path = f"{path} {name}".strip()
            described[child_path] = _describe(child)
            pending.append((child_path, child))
    return described


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    described = commands(parser)
    if shell == "bash":
        return _bash(described)
    if shell == "zsh":
        # zsh runs bash completion functions through bashcompinit.
        return "autoload -U +X bashcompinit && bashcompinit\n" + _bash(described)
    if shell == "fish":
        return _fish(described)
    raise ValueError(f"no completion for shell {shell!r}")


def _words(command: _Command) -> str:
    return " ".join([*command.subcommands, *command.choices, *command.options])


def _bash(described: dict[str, _Command]) -> str:
    empty = '""'
    cases = "\n".join(
        f"        {shlex.quote(path) if path else empty}) words={shlex.quote(_words(c))} ;;"
        for path, c in sorted(described.items())
    )
    known = " ".join(path for path in described if path)
    return f"""# stepburst completion for bash (stepburst completion bash)
_stepburst() {{
    local current="${{COMP_WORDS[COMP_CWORD]}}" path="" word candidate words=""
    local known=" {known} "
    for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        candidate="${{path:+$path }}$word"
        case "$known" in *" $candidate "*) path="$candidate" ;; esac
    done
    case "$path" in
{cases}
    esac
    COMPREPLY=($(compgen -W "$words" -- "$current"))
}}
complete -o default -F _stepburst stepburst
"""


def _fish(described: dict[str, _Command]) -> str:
    lines = [
        "# stepburst completion for fish (stepburst completion fish)",
        "complete -c stepburst -f",
    ]
    top = described[""]
    for name in top.subcommands:
        lines.append(f"complete -c stepburst -n __fish_use_subcommand -a {shlex.quote(name)}")
    for option in top.options:
        lines.append(f"complete -c stepburst -n __fish_use_subcommand -l {option[2:]}")
    for path, command in sorted(described.items()):
        if not path:
            continue
        condition = " && ".join(
            f"__fish_seen_subcommand_from {shlex.quote(word)}" for word in path.split()
        )
        for word in [*command.subcommands, *command.choices]:
            lines.append(
                f"complete -c stepburst -n {shlex.quote(condition)} -a {shlex.quote(word)}"
            )
        for option in command.options:
            lines.append(f"complete -c stepburst -n {shlex.quote(condition)} -l {option[2:]}")
    return "\n".join(lines) + "\n"
