"""``attnfer explain`` (maps of single faces and photos) and ``attnfer region-maps`` (per-emotion
average occlusion maps over a data set split)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..errors import ConfigError, DataError
from .options import (
    BalanceOpt,
    DetectorOpt,
    complete_from,
    complete_model,
    err_console,
    expand_paths,
)

METHODS = ("occlusion", "cbam", "stn", "gradcam")  # those of attnfer.explain.api, kept light
ModelOption = Annotated[
    str,
    typer.Option(
        help="Shipped model name, run folder or .safetensors.", autocompletion=complete_model
    ),
]
WindowOption = Annotated[int, typer.Option(help="Occlusion: side of the square, input pixels.")]
StrideOption = Annotated[int, typer.Option(help="Occlusion: step between squares, pixels.")]
FillOption = Annotated[
    str, typer.Option(help="Occlusion: black (pixel 0, as paper 001) or mean (0 after norm).")
]
DeviceOption = Annotated[str, typer.Option(help="cpu or cuda.")]


def _stems(path: Path, faces: int, used: set[str]) -> list[str]:
    """Output name stems for the faces of one input: ``<stem>`` or ``<stem>_face<i>``, unique."""
    names = [path.stem] if faces == 1 else [f"{path.stem}_face{i}" for i in range(1, faces + 1)]
    unique = []
    for name in names:
        candidate, n = name, 1
        while candidate in used:
            candidate, n = f"{name}_{n}", n + 1
        used.add(candidate)
        unique.append(candidate)
    return unique


def explain(
    images: Annotated[
        list[str],
        typer.Argument(help="Face crops or photos: files, folders (recursive) or globs."),
    ],
    model: ModelOption = "default",
    method: Annotated[
        str,
        typer.Option(
            help="occlusion, cbam, stn or gradcam.", autocompletion=complete_from(METHODS)
        ),
    ] = "occlusion",
    out: Annotated[Path, typer.Option(help="Folder for the PNGs, .npy maps and explain.json.")] = (
        Path("explanations")
    ),
    window: WindowOption = 8,
    stride: StrideOption = 2,
    label: Annotated[
        str | None,
        typer.Option(help="Class to explain (e.g. the true label); default: the predicted one."),
    ] = None,
    fill: FillOption = "black",
    faces: Annotated[
        str, typer.Option(help="auto (small images are face crops), crop (whole image), detect.")
    ] = "auto",
    detector: DetectorOpt = "default",
    device: DeviceOption = "cpu",
    balance: BalanceOpt = None,
) -> None:
    """Explain the model's expression for each face: PNG overlays and raw .npy maps.

    Small images are taken as face crops; in photos the faces are detected and aligned as
    attnfer predict does, and the expression explained is the one it predicts (the same class
    balance). OUT/explain.json lists every face, its prediction and its files.
    """
    from ..explain.api import explain_faces
    from ..explain.render import render_explanation
    from ..files import write_atomic
    from ..models.attention import SpatialTransformer
    from ..pretrained import load_pretrained
    from ..recognize import Recognizer

    pre = load_pretrained(model, device=device)
    if method == "stn" and not any(isinstance(m, SpatialTransformer) for m in pre.model.modules()):
        raise ConfigError(
            f"--method stn needs a model with a spatial transformer; {model} ({pre.arch}) has "
            "none, nor has any shipped model: train one (attnfer train --config "
            "recipes/paper001/deep_emotion_fer2013.yaml) and pass its run folder, or use "
            "--method cbam, gradcam or occlusion"
        )
    recognizer = Recognizer(model, detector, faces=faces, device=device, balance=balance)
    files, problems = expand_paths(images)
    options = {"window": window, "stride": stride, "fill": fill, "device": device}
    records: list[dict[str, Any]] = []
    used: set[str] = set()
    for path in files:
        try:
            explained = explain_faces(recognizer, path, method, model=pre, target=label, **options)
        except DataError as exc:
            problems.append(str(exc))
            continue
        if not explained:
            err_console.print(f"{escape(str(path))}: no face found")
        for e, stem in zip(explained, _stems(path, len(explained), used), strict=True):
            written = render_explanation(e, out, stem)
            err_console.print(
                f"{escape(str(path))}: {e.label} {100 * e.probability:.1f}% -> {stem}.*"
            )
            records.append(
                {
                    "file": str(path),
                    "box": list(e.box) if e.box else None,
                    "label": e.label,
                    "probability": e.probability,
                    "target": e.target,
                    "method": method,
                    "note": e.note,
                    "files": [p.name for p in written],
                }
            )
    for problem in problems:
        err_console.print(f"[yellow]skipped[/] {escape(problem)}")
    text = json.dumps(records, indent=2)
    write_atomic(out / "explain.json", lambda fh: fh.write(text.encode()))
    err_console.print(f"{len(records)} faces explained into {escape(str(out))}")
    if not records:
        raise typer.Exit(1)


def region_maps_command(
    data: Annotated[str, typer.Argument(help="Data set: folder tree, CSV or packed file.")],
    model: ModelOption = "default",
    split: Annotated[
        str | None,
        typer.Option(help="Split to use (default: test when the data set has one, else all)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="The grid PNG (an .npz of the maps goes beside).")] = (
        Path("region_maps.png")
    ),
    per_class: Annotated[
        int | None, typer.Option(help="At most this many random faces per emotion (speed).")
    ] = None,
    window: WindowOption = 8,
    stride: StrideOption = 2,
    fill: FillOption = "black",
    seed: Annotated[int, typer.Option(help="Seed of the per-class sample.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Occluded faces per model call.")] = 256,
    device: DeviceOption = "cpu",
) -> None:
    """Average occlusion maps per emotion over a data set split, as one PNG grid.

    A column per emotion: the average face over the average drop of the true class's
    probability when each region is blacked out (paper 001, figure 12). Faces must be aligned
    crops (FER2013, CK+, ...). Cost: one model call per face and window position.
    """
    from ..data.readers import load_dataset
    from ..explain.region_maps import region_maps, save_region_arrays, save_region_grid

    dataset = load_dataset(data)
    if split is not None or "test" in dataset.splits:
        dataset = dataset.split(split or "test")
    columns = (TextColumn("occluding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("faces", total=None)
        maps = region_maps(
            model,
            dataset,
            per_class=per_class,
            window=window,
            stride=stride,
            fill=fill,
            seed=seed,
            batch_size=batch_size,
            device=device,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    title = f"{dataset.name}: mean drop of P(true class) when occluded ({maps.note})"
    png = save_region_grid(maps, out, title)
    arrays = save_region_arrays(maps, out.with_suffix(".npz"))
    counts = ", ".join(f"{n} {c}" for n, c in zip(maps.label_names, maps.counts, strict=True))
    err_console.print(f"{escape(counts)}\nwrote {escape(str(png))} and {escape(str(arrays))}")
