"""Every ``attnfer`` command line in README.md and docs/*.md names a command that exists and
options that command takes, so the docs cannot drift from the CLI unnoticed; the model card's
accuracy tables are rerun.

Command lines are read from code blocks and inline code; the words after ``attnfer`` that name
a command (and a subcommand of a group) are looked up in :data:`attnfer.cli.COMMANDS`, and every
``--option`` on the line must be one of that command's parameters.

Then they run: each row of the model card's tables that names an ``attnfer evaluate`` command
runs it, and the accuracy and macro-F1 it prints must be the row's; every other complete command
line (no placeholder such as ``SRC`` or ``[--out F]``) that neither trains, prepares training data
nor starts a server runs too, and must succeed (an fp32 evaluation must print an accuracy its page
states).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from typer.testing import CliRunner

from attnfer.cli import COMMANDS, app, load_command
from attnfer.cli.video import RunByDefault

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# "attnfer" at a line's start, after ".venv/bin/", a backtick or a "$ " prompt
LINE = re.compile(r"(?:^|`|\$ |/bin/)attnfer ([^`\n]*)", re.MULTILINE)
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
DATASETS = ROOT.parent / "shared" / "datasets"
# Commands that train, write model files or training data, or serve until stopped: documented,
# checked, not run.
NOT_RUN = {"train", "cv", "compare", "calibrate", "framing", "ensemble", "serve", "annotate"}
NOT_RUN_SUB = {("data", "distill"), ("data", "photos"), ("data", "photo-crops"), ("data", "pack")}
NOT_RUN_SUB |= {("video", "train-clips"), ("video", "trim"), ("video", "split-beeps")}
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]{1,}\b|[\[|<]|\.\.\.")
# | what | accuracy % (...) | macro-F1 % (...) | `attnfer evaluate ...` |
FIGURE_ROW = re.compile(
    r"^\s*\|[^|\n]*\|\s*\**([\d.]+) %\**[^|\n]*\|\s*([\d.]+) %[^|\n]*\|"
    r"\s*`attnfer (evaluate [^`]+)`",
    re.MULTILINE,
)


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


def documented_figures() -> list[tuple[str, float, float]]:
    """(command after ``attnfer``, accuracy %, macro-F1 %) of each model card table row."""
    text = (ROOT / "docs" / "model_card.md").read_text()
    return [(m[3].strip(), float(m[1]), float(m[2])) for m in FIGURE_ROW.finditer(text)]


FIGURES = documented_figures()


def test_the_model_card_tables_name_their_commands() -> None:
    models = {line.split()[1] for line, _, _ in FIGURES}
    assert len(FIGURES) >= 7 and models == {"default", "fast", "ensemble"}, FIGURES


@pytest.mark.slow
@pytest.mark.skipif(not DATASETS.is_dir(), reason="needs ../shared/datasets")
@pytest.mark.parametrize(("line", "accuracy", "macro_f1"), FIGURES, ids=[f[0] for f in FIGURES])
def test_model_card_figures_come_from_their_commands(
    line: str, accuracy: float, macro_f1: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the card's data paths are relative to the checkout
    result = CliRunner().invoke(app, shlex.split(line), prog_name="attnfer")
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())
    assert f"accuracy {accuracy:.2f}%" in printed, (line, printed)
    assert f"macro-F1 {macro_f1:.2f}%" in printed, (line, printed)


def runnable(line: str) -> bool:
    """A complete command line (two words at least, no placeholder) that may be run here."""
    words = line.split()
    if len(words) < 2 or PLACEHOLDER.search(line) or words[0] in NOT_RUN:
        return False
    return tuple(words[:2]) not in NOT_RUN_SUB


FIGURE_LINES = {("model_card.md", line) for line, _, _ in FIGURES}
RUNNABLE = sorted(
    {(doc, line.strip()) for doc, line in LINES if runnable(line)} - set(FIGURE_LINES)
)


def test_the_runnable_lines_are_the_examples() -> None:
    assert ("README.md", "predict examples/astronaut.jpg") in RUNNABLE, RUNNABLE
    assert all(not line.startswith(("train ", "serve ")) for _, line in RUNNABLE)


@pytest.mark.slow
@pytest.mark.skipif(not DATASETS.is_dir(), reason="needs ../shared/datasets")
@pytest.mark.parametrize(("doc", "line"), RUNNABLE, ids=[f"{d}:{line}" for d, line in RUNNABLE])
def test_documented_command_runs(doc: str, line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, shlex.split(line), prog_name="attnfer")
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())
    if line.startswith("evaluate ") and "--bf16" not in line:  # bf16 rounds as the CPU does
        accuracy = re.search(r"accuracy (\d+\.\d+)%", printed)
        assert accuracy, printed
        page = (ROOT / ("README.md" if doc == "README.md" else f"docs/{doc}")).read_text()
        assert f"{accuracy[1]} %" in page, f"{doc} does not state {accuracy[1]} %: {printed}"
