"""Every ``attnfer`` command line in README.md and docs/*.md names a command that exists and
options that command takes, so the docs cannot drift from the CLI unnoticed.

Command lines are read from code blocks and inline code; the words after ``attnfer`` that name
a command (and a subcommand of a group) are looked up in :data:`attnfer.cli.COMMANDS`, and every
``--option`` on the line must be one of that command's parameters.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from attnfer.cli import COMMANDS, load_command
from attnfer.cli.video import RunByDefault

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# "attnfer" at a line's start, after ".venv/bin/", a backtick or a "$ " prompt
LINE = re.compile(r"(?:^|`|\$ |/bin/)attnfer ([^`\n]*)", re.MULTILINE)
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def documented_lines() -> list[tuple[str, str]]:
    """(file name, the words after ``attnfer``) for every command line in the docs."""
    found = []
    for path in DOCS:
        text = path.read_text()
        for match in LINE.finditer(text):
            rest = match.group(1).replace("\\|", "|")
            if rest.split() and rest.split()[0] in COMMANDS:
                found.append((path.name, rest))
    return found


def resolve(words: list[str]) -> click.Command:
    """The click command the words name: a command, a group's subcommand, or ``video``'s
    ``run`` when the word after it is no subcommand (:class:`RunByDefault`)."""
    command = load_command(words[0])
    subcommands = getattr(command, "commands", {})
    if len(words) > 1 and words[1] in subcommands:
        return subcommands[words[1]]
    if isinstance(command, RunByDefault) and len(words) > 1 and not words[1].startswith("-"):
        return subcommands["run"]
    return command


def option_names(command: click.Command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        names.update(n for n in [*param.opts, *param.secondary_opts] if n.startswith("--"))
    return names


LINES = documented_lines()


def test_the_docs_show_command_lines() -> None:
    assert len(LINES) > 40  # README's tour and the docs' examples


@pytest.mark.parametrize(("doc", "line"), LINES, ids=[f"{d}:{line[:40]}" for d, line in LINES])
def test_documented_command_exists_with_its_options(doc: str, line: str) -> None:
    words = line.split()
    command = resolve(words)
    if hasattr(command, "commands"):  # the group itself, e.g. "attnfer data --help"
        assert not OPTION.findall(line) or set(OPTION.findall(line)) <= {"--help"}, line
        return
    unknown = set(OPTION.findall(line)) - option_names(command)
    assert not unknown, f"{doc}: `attnfer {line}` uses {sorted(unknown)}, not options of it"
