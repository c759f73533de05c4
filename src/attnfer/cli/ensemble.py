"""``attnfer ensemble``: several trained models into one model file that averages them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError
from .options import console


def _weights(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise ConfigError(f"--weights takes numbers separated by commas, got {text!r}") from None


def ensemble(
    models: Annotated[
        list[str], typer.Argument(help="Two or more shipped names, run folders or model files.")
    ],
    out: Annotated[Path, typer.Option("--out", help="The ensemble's .safetensors file.")],
    weights: Annotated[
        str | None, typer.Option(help="One weight per model, comma-separated (default: equal).")
    ] = None,
    half: Annotated[bool, typer.Option("--half", help="Store the weights as fp16.")] = False,
    by_reference: Annotated[
        bool,
        typer.Option(
            "--by-reference",
            help="Store the member files' names and checksums, not their weights: the members "
            "must be files in --out's folder and stay there unchanged.",
        ),
    ] = False,
) -> None:
    """Combine trained models into one ensemble file whose probabilities are the weighted mean of
    theirs; every command takes it as a model. It carries the first model's framing.

    Choose members and weights on val (`python benchmarks/ensemble.py`), never on test."""
    from ..pretrained import save_ensemble

    path = save_ensemble(models, out, _weights(weights), half, by_reference)
    console.print(f"wrote {path} ({len(models)} members, {path.stat().st_size / 1e6:.1f} MB)")
