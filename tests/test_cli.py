"""The `attnfer` command line as a whole: every command's help renders and reads as written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from attnfer.cli import app


def command_paths(command=None, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command and group under the app, the app itself first."""
    command = command or get_command(app)
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from command_paths(sub, (*path, name))


def help_text(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="attnfer")
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())  # the words, without the layout


def test_every_command_has_help() -> None:
    paths = list(command_paths())
    assert {("predict",), ("train",), ("video", "run"), ("data", "pack")} <= set(paths)
    for path in paths:
        assert "Usage: attnfer" in help_text(*path), path


def test_help_paragraphs_are_reflowed() -> None:
    # predict's docstring breaks its second paragraph after "at least one"; rendered, the words
    # flow on, where a kept line break would leave "least one" on a short line of its own
    result = CliRunner().invoke(app, ["predict", "--help"], prog_name="attnfer")
    assert any("least one file was processed" in line for line in result.output.splitlines())


@pytest.mark.parametrize(
    ("path", "words"),
    [
        (("train",), "Run folder (default runs/<name>)."),
        (("video", "evaluate-clips"), "Clip folder (<label>/*.mp4) or CK+ crops."),
    ],
)
def test_help_keeps_placeholders(path: tuple[str, ...], words: str) -> None:
    assert words in help_text(*path)  # not eaten as HTML tags nor shown with backticks
