"""The ``attnfer`` command line: the app, and :data:`COMMANDS`, each command's module in this
package (one per command group; the options several share are in :mod:`.options`).

Commands parse their arguments, call the library and print. They are imported when they run (or
when their help or completion is asked for), so ``attnfer --help`` answers without importing
PyTorch. Exit codes: 0 all done, 1 some inputs failed, 2 a usage, model or data error (one line
on stderr).
"""

from __future__ import annotations

import ast
import importlib
import logging
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from .. import __version__
from ..errors import AttnferError

EXIT_CODES = "Exit codes: 0 all done; 1 some inputs failed; 2 a usage, model or data error."

# name: (module, attribute): a command function or a Typer app
COMMANDS: dict[str, tuple[str, str]] = {
    "predict": ("attnfer.cli.predict", "predict"),
    "export": ("attnfer.cli.predict", "export"),
    "ensemble": ("attnfer.cli.ensemble", "ensemble"),
    "explain": ("attnfer.cli.explain", "explain"),
    "region-maps": ("attnfer.cli.explain", "region_maps_command"),
    "models": ("attnfer.cli.models", "models_command"),
    "train": ("attnfer.cli.train", "train"),
    "evaluate": ("attnfer.cli.train", "evaluate"),
    "calibrate": ("attnfer.cli.train", "calibrate"),
    "framing": ("attnfer.cli.framing", "framing"),
    "cv": ("attnfer.cli.train", "cv"),
    "compare": ("attnfer.cli.train", "compare"),
    "serve": ("attnfer.cli.serve", "serve"),
    "annotate": ("attnfer.cli.annotate", "annotate"),
    "data": ("attnfer.cli.data", "data_app"),
    "video": ("attnfer.cli.video", "video_app"),
}


def first_sentence(text: str) -> str:
    """The first sentence of a help text's first paragraph, on one line."""
    paragraph = " ".join(text.split("\n\n")[0].split())
    found = re.match(r"(.+?\.)(\s|$)", paragraph)
    return found.group(1) if found else paragraph


def _source_help(module: str, attribute: str) -> str:
    """The help of a command function (its docstring) or a Typer app (its ``help=``), read from
    the module's source without importing it."""
    path = Path(__file__).parents[1].joinpath(*module.split(".")[1:]).with_suffix(".py")
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef) and node.name == attribute:
            return ast.get_docstring(node) or ""
        named = isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == attribute for t in node.targets
        )
        if named and isinstance(node.value, ast.Call):
            helps = [k.value for k in node.value.keywords if k.arg == "help"]
            return ast.literal_eval(helps[0]) if helps else ""
    return ""


def short_help(name: str) -> str:
    """The line the command listing shows for ``name``: the first sentence of its help."""
    return first_sentence(_source_help(*COMMANDS[name]))


Command = TyperCommand | TyperGroup


def flags_without_type(command: Command) -> Command:
    """``command`` and its subcommands with boolean flags shown as ``--json``, not
    ``--json <bool>`` (they take no value)."""
    help_option = command.get_help_option(typer.Context(command))
    for param in [*command.params, *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        flags_without_type(sub)
    return command


def load_command(name: str) -> Command:
    """The click command ``name`` of :data:`COMMANDS`, imported now."""
    module, attribute = COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    if not isinstance(target, typer.Typer):
        single = typer.Typer(rich_markup_mode="markdown", add_completion=False)
        single.command(name)(target)
        target = single
    command = typer.main.get_command(target)
    command.name = name
    return flags_without_type(command)


class LazyGroup(TyperGroup):
    """The root group: lists :data:`COMMANDS` with :func:`short_help` and imports a command
    only to run it, complete it or show its own help."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._loaded: dict[str, Command] = {}
        self._listing = False

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Command | None:
        if cmd_name not in COMMANDS:
            return None
        if self._listing:
            return TyperCommand(cmd_name, short_help=short_help(cmd_name))
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = load_command(cmd_name)
        return self._loaded[cmd_name]

    def format_help(self, ctx: typer.Context, formatter) -> None:
        flags_without_type(self)
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    cls=LazyGroup,
    help="Facial expression recognition with attention.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)


class StderrHandler(logging.StreamHandler):
    """Log records to ``sys.stderr`` as it is when they are written, not as it was when the
    handler was made (a captured or replaced stream may be closed by then)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it; sys.stderr is used
        pass


def _version(value: bool) -> None:
    if value:
        typer.echo(f"attnfer {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = None,
) -> None:
    """attnfer: facial expression recognition with attention."""
    logger = logging.getLogger("attnfer")
    if not logger.handlers:
        logger.addHandler(StderrHandler())
        logger.setLevel(logging.INFO)


def run() -> None:
    """Console entry point: an AttnferError becomes one red line and exit code 2."""
    try:
        app()
    except AttnferError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None
