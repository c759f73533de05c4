"""The ``attnfer`` command line."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from . import __version__
from .annotate.commands import annotate
from .data.commands import data_app
from .errors import AttnferError
from .explain import commands as explain_commands
from .models.commands import models_command
from .predict_commands import export, predict
from .serve.commands import serve
from .train import commands as train_commands
from .video.commands import video_app

app = typer.Typer(
    help="Facial expression recognition with attention.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
app.command()(predict)
app.command()(export)
app.command()(explain_commands.explain)
app.command("region-maps")(explain_commands.region_maps_command)
app.add_typer(data_app, name="data")
app.add_typer(video_app, name="video")
app.command("models")(models_command)
app.command()(train_commands.train)
app.command()(train_commands.evaluate)
app.command()(train_commands.calibrate)
app.command()(train_commands.cv)
app.command()(train_commands.compare)
app.command()(serve)
app.command()(annotate)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"attnfer {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True)
    ] = None,
) -> None:
    """attnfer: facial expression recognition with attention."""
    logger = logging.getLogger("attnfer")
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler())
        logger.setLevel(logging.INFO)


def run() -> None:
    """Console entry point: an AttnferError becomes one red line and exit code 2."""
    try:
        app()
    except AttnferError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None
