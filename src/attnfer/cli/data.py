"""``attnfer data info|pack|distill|photos``: look at a data set, pack it into one fast-loading
file, pack it with a teacher model's probabilities as soft labels (knowledge distillation), or
place its faces into photo-like images (the photo-path benchmark)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..data.dataset import FaceDataset
from ..data.decode import BadSamples
from ..data.readers import FORMATS, load_dataset
from .options import console, err_console, progress_bar

data_app = typer.Typer(
    help="Inspect face data sets and pack them into one file that loads in a fraction of a second.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

SrcArg = Annotated[Path, typer.Argument(help="Data set: folder, CSV or packed .safetensors file.")]
FormatOpt = Annotated[
    str | None, typer.Option("--format", "-f", help=f"Skip detection: {', '.join(FORMATS)}.")
]
ColorOpt = Annotated[str | None, typer.Option(help="gray or rgb (default: the data set's own).")]
SizeOpt = Annotated[
    int | None, typer.Option(help="Resize to SIZE x SIZE (default: only when sizes differ).")
]
SplitsOpt = Annotated[
    str | None, typer.Option(help="Keep these splits alone, comma-separated: train,val.")
]
OutOpt = Annotated[
    Path, typer.Option("--out", "-o", help="The file to write: .safetensors (.xz: compressed).")
]
MaxBadOpt = Annotated[
    int, typer.Option(help="Stop when more samples than this are unreadable; -1: no limit.")
]


def _load(
    src: Path,
    fmt: str | None,
    color: str | None,
    size: int | None,
    max_bad: int,
    splits: str | None = None,
):
    """Load with a progress bar, keeping only ``splits`` if given; returns (data, bad samples,
    seconds)."""
    bad = BadSamples(None if max_bad < 0 else max_bad)
    columns = (TextColumn("decoding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    start = time.perf_counter()
    quiet = not err_console.is_terminal
    with Progress(*columns, console=err_console, transient=True, disable=quiet) as bar:
        task = bar.add_task("decode", total=None)
        data = load_dataset(
            src,
            format=fmt,
            color=color,
            size=size,
            bad=bad,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if splits:
        data = data.only_splits([name.strip() for name in splits.split(",")])
    return data, bad, time.perf_counter() - start


def counts_table(data: FaceDataset) -> Table:
    """Images per label (rows) and split (columns), with totals."""
    summary = data.summary()
    columns = list(summary) + (["total"] if data.splits else [])
    table = Table()
    table.add_column("label")
    for column in columns:
        table.add_column(column, justify="right")
    overall = data.class_counts()
    for label in data.label_names:
        cells = [summary[s][label] for s in summary] + ([overall[label]] if data.splits else [])
        table.add_row(label, *(f"{n:,}" for n in cells))
    totals = [sum(summary[s].values()) for s in summary] + ([len(data)] if data.splits else [])
    table.add_row("total", *(f"{n:,}" for n in totals), style="bold")
    return table


def describe(data: FaceDataset, bad: BadSamples) -> list[str]:
    """Lines under the table: size, channels, classes, subjects, unsplit rows, bad samples."""
    height, width = data.image_size
    present = [name for name, n in data.class_counts().items() if n]
    colour = "RGB" if data.channels == 3 else "gray as decoded; --color rgb keeps colour"
    lines = [
        f"images: {len(data):,}",
        f"size: {width}x{height} (width x height), channels: {data.channels} ({colour})",
        f"labels: {len(present)} ({', '.join(present)})",
    ]
    if len(present) != data.num_classes:
        lines[-1] += f" of {data.num_classes} classes"
    if data.subjects is not None:
        lines.append(f"subjects: {len(set(data.subjects.tolist())):,}")
    if data.soft_labels is not None:
        lines.append("soft labels: yes")
    in_splits = sum(len(v) for v in data.splits.values())
    if data.splits and in_splits != len(data):
        lines.append(f"not in any split: {len(data) - in_splits:,}")
    lines.append(f"bad samples: {bad.summary()}")
    return lines


@data_app.command()
def info(
    src: SrcArg,
    format: FormatOpt = None,
    color: ColorOpt = None,
    size: SizeOpt = None,
    max_bad_samples: MaxBadOpt = 100,
) -> None:
    """Counts per split and label, image size and channels, subjects and bad samples skipped."""
    data, bad, seconds = _load(src, format, color, size, max_bad_samples)
    console.print(f"[bold]{escape(data.name)}[/bold]: {len(data):,} images", highlight=False)
    console.print(counts_table(data))
    for line in describe(data, bad):
        console.print(line, highlight=False)
    console.print(f"read in {seconds:.2f} s", highlight=False)


@data_app.command()
def pack(
    src: SrcArg,
    out: OutOpt,
    format: FormatOpt = None,
    color: ColorOpt = None,
    size: SizeOpt = None,
    splits: SplitsOpt = None,
    max_bad_samples: MaxBadOpt = 100,
) -> None:
    """Decode SRC once and save it as one safetensors file (then: attnfer data info FILE)."""
    data, bad, seconds = _load(src, format, color, size, max_bad_samples, splits)
    data.save(out)
    start = time.perf_counter()
    FaceDataset.load(out)
    load_seconds = time.perf_counter() - start
    height, width = data.image_size
    console.print(
        f"packed {len(data):,} images ({height}x{width}, {data.channels} channel"
        f"{'s' if data.channels > 1 else ''}) in {seconds:.1f} s -> {out} "
        f"({out.stat().st_size / 1e6:.1f} MB); it loads in {load_seconds:.2f} s",
        highlight=False,
    )
    if bad.entries or bad.dropped:
        console.print(f"bad samples: {bad.summary()}", highlight=False)


@data_app.command()
def distill(
    src: SrcArg,
    teacher: Annotated[str, typer.Option(help="model.safetensors, run folder or 'default'.")],
    out: OutOpt,
    temperature: Annotated[float, typer.Option(help="Softmax temperature (> 1: softer).")] = 2.0,
    tta: Annotated[str, typer.Option(help="Teacher's test-time views: none, flip.")] = "flip",
    format: FormatOpt = None,
    splits: SplitsOpt = None,
    max_bad_samples: MaxBadOpt = 100,
) -> None:
    """Pack SRC with TEACHER's class probabilities as soft labels, to train a student on them
    (recipe: data.source FILE, loss.soft_labels 0.5)."""
    from ..train.distill import distill_dataset

    data, bad, _ = _load(src, format, None, None, max_bad_samples, splits)
    columns = (TextColumn("teacher"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, disable=not err_console.is_terminal) as bar:
        task = bar.add_task("teacher", total=len(data))
        data = distill_dataset(
            data, teacher, temperature, tta, lambda done, _: bar.update(task, completed=done)
        )
    data.save(out)
    agree = float((data.soft_labels.argmax(1) == data.labels).mean())
    console.print(
        f"{out}: {len(data):,} images with {teacher}'s probabilities (T={temperature}, tta={tta}); "
        f"its top class matches the label on {100 * agree:.1f}%",
        highlight=False,
    )
    if bad.entries or bad.dropped:
        console.print(f"bad samples: {bad.summary()}", highlight=False)


@data_app.command()
def photos(
    src: SrcArg,
    out: Annotated[Path, typer.Option("--out", help="Folder for the photo set.")],
    split: Annotated[str, typer.Option(help="Split to place ('all' for every face).")] = "test",
    seed: Annotated[int, typer.Option(help="Seed of the photos.")] = 0,
    face_px: Annotated[
        int | None,
        typer.Option(help="Place every face at this side in pixels (small faces: 16-40)."),
    ] = None,
) -> None:
    """Place every face of a split into a photo-like image (random size, position, background,
    colour), as a label-folder tree of JPEG files with photos.csv saying where each face is:
    the benchmark of the photo path (`attnfer evaluate MODEL --data OUT --faces detect`).
    Running it again keeps the photos already written."""
    from ..faces.compose import PhotoStyle
    from ..photos import write_photo_set

    try:
        style = PhotoStyle(face_px=face_px)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--face-px") from None
    data = load_dataset(src)
    part = data if split == "all" else data.split(split)
    with progress_bar() as bar:
        task = bar.add_task(f"{part.name}: photos", total=len(part))
        manifest = write_photo_set(
            part, out, seed, lambda done, _: bar.update(task, completed=done), style
        )
    console.print(f"wrote {len(part)} photos to {out} ({manifest.name} says where each face is)")


@data_app.command("photo-crops")
def photo_crops(
    src: SrcArg,
    out: Annotated[Path, typer.Option("--out", help="Packed .safetensors file of the crops.")],
    model: Annotated[str, typer.Option(help="Model whose framing aligns the faces.")] = "default",
    detector: Annotated[str, typer.Option(help="Face detector.")] = "default",
    splits: Annotated[
        str | None, typer.Option(help="Comma-separated splits to keep (default: all).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the photos.")] = 0,
    with_crops: Annotated[
        bool, typer.Option("--with-crops", help="Keep the original crops too, in the same splits.")
    ] = False,
) -> None:
    """Pack each face as the photo path crops it: placed in a photo, detected and aligned with
    the model's framing (its own crop where the detector misses it). Training on these teaches
    a model what detection and alignment do to faces; `--with-crops` packs the original crops
    beside them, each split holding both."""
    from ..photos import photo_path_crops
    from ..recognize import Recognizer

    data, _, _ = _load(src, None, None, None, 100, splits)
    recognizer = Recognizer(model, detector=detector, faces="detect")
    with progress_bar() as bar:
        task = bar.add_task(f"{data.name}: photo-path crops", total=len(data))
        crops, missed = photo_path_crops(
            data, recognizer, seed, lambda done, _: bar.update(task, completed=done)
        )
    if with_crops:
        crops = data.with_rows_of(crops)
    crops.save(out)
    console.print(
        f"{out}: {len(crops):,} photo-path crops ({recognizer.detector.name}, {model}'s "
        f"framing); the detector missed {missed} faces, kept as their own crops",
        highlight=False,
    )
