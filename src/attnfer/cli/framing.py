"""``attnfer framing``: measure how each detector's box maps to a model's input, and write it
into the model file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import console, detector_names


def framing(
    model: Annotated[str, typer.Argument(help="Shipped model name, run folder or weights file.")],
    data: Annotated[Path, typer.Option("--data", help="The model's training data set.")],
    out: Annotated[Path, typer.Option("--out", help="The model's .safetensors with framing.")],
    split: Annotated[
        str, typer.Option(help="Split whose faces are placed in photos ('all': every face).")
    ] = "train",
    faces: Annotated[int, typer.Option(help="Faces to place (drawn at random).")] = 1000,
    detectors: Annotated[str, typer.Option(help="'all' or comma-separated names.")] = "all",
    seed: Annotated[int, typer.Option(help="Seed of the faces drawn and the photos.")] = 0,
    half: Annotated[bool, typer.Option("--half", help="Store the weights as fp16.")] = False,
) -> None:
    """Measure how each face detector's box maps to the model's input; write it into the model.

    The model's training faces are placed in photo-like images, each detector runs on them, and
    the median mapping from its box to the face's square goes into the model file. Recognizer,
    video, serve and explain then frame detected faces the way the model was trained."""
    from ..data.readers import load_dataset
    from ..photos import measure_model_framing
    from ..pretrained import load_pretrained

    pre = load_pretrained(model)
    dataset = load_dataset(data)
    part = dataset if split == "all" else dataset.split(split)
    names = detector_names(detectors)
    measured = {}
    for name in names:
        console.print(f"{name}: {min(faces, len(part))} faces of {part.name} placed in photos")
        measured.update(measure_model_framing(part.images, [name], faces, seed))
        m = measured[name]
        console.print(
            f"{name}: scale {m['scale']:.3f}, offset ({m['dx']:+.3f}, {m['dy']:+.3f}) box sides; "
            f"spread {m['spread']['scale']:.3f} / {m['spread']['dx']:.3f} / "
            f"{m['spread']['dy']:.3f}; found {m['found']} of {m['faces']}"
        )
    pre.framing = {**pre.framing, **measured}
    pre.info["framing_data"] = {"data": dataset.name, "split": split, "faces": faces, "seed": seed}
    console.print(f"wrote {pre.save(out, half=half)}")
