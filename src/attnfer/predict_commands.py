"""``attnfer predict`` (expressions of the faces in photos) and ``attnfer export`` (ONNX)."""

from __future__ import annotations

import csv
import glob
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .errors import DataError

IMAGE_SUFFIXES = frozenset(
    (".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pnm", ".pgm")
)
CHUNK = 8  # images read and classified together
PROGRESS_FROM = 10  # files: show a progress bar from this many on

console = Console(soft_wrap=True)

# Options shared by the commands that run a Recognizer (predict, serve).
ModelOpt = Annotated[
    str, typer.Option(help="Shipped model name, run folder, .safetensors or .onnx file.")
]
DetectorOpt = Annotated[
    str, typer.Option(help="Face detector: default (mtcnn), mtcnn, yunet, retinaface.")
]
BackendOpt = Annotated[str, typer.Option(help="torch or onnx (onnxruntime).")]
err_console = Console(stderr=True, soft_wrap=True)


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _images_in(paths: Iterator[Path]) -> list[Path]:
    return sorted(p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def expand_paths(args: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Files named, images under folders (recursively) and glob matches; and the problems.

    A named file is read whatever its suffix; folders and globs give files with image suffixes.
    """
    files: dict[Path, None] = {}
    problems = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            found = _images_in(path.rglob("*"))
        elif path.exists():
            found = [path]
        elif _is_glob(arg):
            found = _images_in(Path(p) for p in glob.glob(arg, recursive=True))
        else:
            problems.append(f"{arg}: no such file or folder")
            continue
        if not found:
            problems.append(f"{arg}: no image files found")
        files.update(dict.fromkeys(found))
    return list(files), problems


def _chunks(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _annotated_name(path: Path, used: set[str]) -> str:
    """``<stem>.jpg``, numbered when two inputs share a stem."""
    name, n = f"{path.stem}.jpg", 1
    while name in used:
        name, n = f"{path.stem}_{n}.jpg", n + 1
    used.add(name)
    return name


def _table(records: list[dict[str, Any]]) -> Table:
    table = Table(title="facial expressions")
    table.add_column("file", overflow="fold", min_width=24)
    for col in ("face", "box", "expression", "probability", "runner-up"):
        table.add_column(col, no_wrap=True, justify="right" if col == "probability" else "left")
    for rec in records:
        if not rec["faces"]:
            table.add_row(escape(rec["file"]), "-", "no face found", "", "", "")
        for i, face in enumerate(rec["faces"], 1):
            ranked = sorted(face["probabilities"].items(), key=lambda kv: -kv[1])
            table.add_row(
                escape(rec["file"]),
                str(i),
                ",".join(map(str, face["box"])),
                face["label"],
                f"{100 * ranked[0][1]:.1f}%",
                f"{ranked[1][0]} {100 * ranked[1][1]:.1f}%" if len(ranked) > 1 else "",
            )
    return table


def _write_csv(records: list[dict[str, Any]], labels: Sequence[str]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["file", "face", "x1", "y1", "x2", "y2", "score", "label", *labels])
    for rec in records:
        if not rec["faces"]:
            writer.writerow([rec["file"], "", "", "", "", "", "", "", *([""] * len(labels))])
        for i, face in enumerate(rec["faces"], 1):
            probs = [f"{face['probabilities'][name]:.6f}" for name in labels]
            score = "" if face["score"] is None else face["score"]
            writer.writerow([rec["file"], i, *face["box"], score, face["label"], *probs])


def predict(
    paths: Annotated[
        list[str], typer.Argument(help="Image files, folders (searched recursively) or globs.")
    ],
    json_out: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
    save_annotated: Annotated[
        Path | None,
        typer.Option(help="Write images with boxes, labels and probability bars to this folder."),
    ] = None,
    model: ModelOpt = "default",
    tta: Annotated[str, typer.Option(help="Test-time augmentation: none, flip, tencrop.")] = "none",
    faces: Annotated[
        str, typer.Option(help="auto (small images are face crops), crop (whole image), detect.")
    ] = "auto",
    detector: DetectorOpt = "default",
    backend: BackendOpt = "torch",
) -> None:
    """Find the faces in images and recognise their expressions.

    A file that cannot be read is reported and skipped; the exit code is 0 when at least one
    file was processed, 1 otherwise.
    """
    from .faces import annotate, load_image
    from .recognize import Recognizer

    if json_out and csv_out:
        raise typer.BadParameter("choose one of --json and --csv")
    chosen = "onnx" if model.endswith(".onnx") else backend
    recognizer = Recognizer(model, detector, chosen, faces, tta)
    files, problems = expand_paths(paths)
    for problem in problems:
        err_console.print(f"[yellow]skipped[/] {escape(problem)}")
    if save_annotated is not None:
        save_annotated.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    skipped, used = len(problems), set()
    columns = (TextColumn("recognising"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    quiet = len(files) < PROGRESS_FROM or not err_console.is_terminal
    with Progress(*columns, console=err_console, transient=True, disable=quiet) as bar:
        task = bar.add_task("predict", total=len(files))
        for chunk in _chunks(files, CHUNK):
            loaded = []
            for path in chunk:
                try:
                    loaded.append((path, load_image(path, recognizer.max_pixels)))
                except DataError as exc:
                    err_console.print(f"[yellow]skipped[/] {escape(str(exc))}")
                    skipped += 1
            results = recognizer.predict_batch([image for _, image in loaded])
            for (path, image), found in zip(loaded, results, strict=True):
                assert not isinstance(found, DataError)  # arrays that loaded cannot fail
                records.append({"file": str(path), "faces": [f.to_dict() for f in found]})
                if save_annotated is not None:
                    out = save_annotated / _annotated_name(path, used)
                    annotate(image, found).save(out, quality=90)
            bar.advance(task, len(chunk))
    if json_out:
        typer.echo(json.dumps(records, indent=2))
    elif csv_out:
        _write_csv(records, recognizer.label_names)
    elif records:
        console.print(_table(records))
    n_faces = sum(len(r["faces"]) for r in records)
    err_console.print(f"{len(records)} images, {n_faces} faces, {skipped} skipped")
    if not records:
        raise typer.Exit(1)


def export(
    model: Annotated[
        str, typer.Option(help="Shipped model name, run folder or .safetensors file.")
    ] = "default",
    out: Annotated[
        Path | None, typer.Option(help="Output file (default model.onnx or model.pt).")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="onnx, torchscript or safetensors.")
    ] = "onnx",
    half: Annotated[
        bool, typer.Option(help="safetensors: store the weights as fp16 (half the size).")
    ] = False,
) -> None:
    """Export a trained model to ONNX (with its labels and preprocessing), TorchScript, or an
    attnfer safetensors file (fp16 with --half: how the shipped default is made).

    ``attnfer predict --model FILE.onnx`` and ``Recognizer(model=FILE.onnx)`` run the ONNX file.
    """
    from .recognize import export_model

    suffix = {"onnx": ".onnx", "torchscript": ".pt"}.get(fmt, ".safetensors")
    target = out or Path("model" + suffix)
    path = export_model(model, target, fmt, half)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
