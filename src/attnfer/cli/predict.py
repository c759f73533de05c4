"""``attnfer predict`` (expressions of the faces in photos) and ``attnfer export`` (ONNX)."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from ..errors import ConfigError, DataError
from ..faces.draw import STYLES as DRAW_STYLES
from .options import (
    BackendOpt,
    BalanceOpt,
    DetectorOpt,
    ModelOpt,
    complete_from,
    console,
    err_console,
    expand_paths,
)

CHUNK = 8  # images read and classified together
PROGRESS_FROM = 10  # files: show a progress bar from this many on

RESULT_SUFFIXES = (".jsonl", ".csv")


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


def _detected(face: dict[str, Any]) -> str:
    """``yes`` for a box the detector found, ``no`` for the whole image taken as a crop."""
    found = face.get("detected")
    return "" if found is None else ("yes" if found else "no")


def _table(records: list[dict[str, Any]]) -> Table:
    """One row per face; short headers and folded cells keep every value whole in 80 columns."""
    table = Table(title="facial expressions")
    for col in ("file", "face", "box", "found", "expression", "prob.", "runner-up"):
        table.add_column(col, overflow="fold", justify="right" if col == "prob." else "left")
    for rec in records:
        if not rec["faces"]:
            table.add_row(escape(rec["file"]), "-", "", "", "no face found", "", "")
        for i, face in enumerate(rec["faces"], 1):
            ranked = sorted(face["probabilities"].items(), key=lambda kv: -kv[1])
            table.add_row(
                escape(rec["file"]),
                str(i),
                ",".join(map(str, face["box"])),
                _detected(face),
                face["label"],
                f"{100 * ranked[0][1]:.1f}%",
                f"{ranked[1][0]} {100 * ranked[1][1]:.1f}%" if len(ranked) > 1 else "",
            )
    return table


def csv_header(labels: Sequence[str]) -> list[str]:
    """The columns of predict's CSV: one row per face, one row with no face for a file without."""
    return ["file", "face", "x1", "y1", "x2", "y2", "detected", "score", "label", *labels]


def csv_rows(record: dict[str, Any], labels: Sequence[str]) -> list[list[Any]]:
    """One file's rows under :func:`csv_header`."""
    if not record["faces"]:
        return [[record["file"], *([""] * (len(csv_header(labels)) - 1))]]
    rows = []
    for i, face in enumerate(record["faces"], 1):
        probs = [f"{face['probabilities'][name]:.6f}" for name in labels]
        score = "" if face["score"] is None else face["score"]
        rows.append(
            [record["file"], i, *face["box"], _detected(face), score, face["label"], *probs]
        )
    return rows


def _write_csv(records: list[dict[str, Any]], labels: Sequence[str]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(csv_header(labels))
    for rec in records:
        writer.writerows(csv_rows(rec, labels))


def _cut_partial_line(path: Path) -> bytes:
    """The complete lines of ``path``; a last line cut short (a run killed while writing it) is
    removed from the file."""
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with path.open("r+b") as f:
            f.truncate(len(complete))
    return complete


def _jsonl_files(path: Path) -> set[str]:
    done = set()
    for number, line in enumerate(_cut_partial_line(path).splitlines(), 1):
        try:
            done.add(json.loads(line)["file"])
        except (ValueError, KeyError, TypeError):
            raise DataError(f"{path}: line {number} is not a predict result") from None
    return done


def _csv_files(path: Path, labels: Sequence[str]) -> set[str]:
    """The files in a predict CSV; the last file's rows are removed, as they may be incomplete
    (it is predicted again)."""
    lines = _cut_partial_line(path).splitlines(keepends=True)
    if not lines:
        return set()
    header = next(csv.reader([lines[0].decode()]))
    if header != csv_header(labels):
        raise DataError(f"{path}: not a predict CSV for this model's labels ({','.join(labels)})")
    files = [next(csv.reader([line.decode()]))[0] for line in lines[1:]]
    if not files:
        return set()
    last = len(files)
    while last > 0 and files[last - 1] == files[-1]:
        last -= 1
    with path.open("r+b") as f:
        f.truncate(sum(len(line) for line in lines[: 1 + last]))
    return set(files[:last])


class ResultFile:
    """Results written to a .jsonl file (a line per input file) or a .csv file
    (:func:`csv_header`) as they come, each batch flushed; ``done`` holds the files already in
    it when resumed."""

    def __init__(self, path: Path, labels: Sequence[str], resume: bool) -> None:
        if path.suffix.lower() not in RESULT_SUFFIXES:
            raise ConfigError(f"--out {path}: must end in .jsonl or .csv")
        exists = path.is_file() and path.stat().st_size > 0
        if exists and not resume:
            raise ConfigError(f"--out {path}: exists; add --resume to continue it, or remove it")
        self.path, self.labels = path, tuple(labels)
        self.csv = path.suffix.lower() == ".csv"
        self.done: set[str] = set()
        if exists:
            self.done = _csv_files(path, labels) if self.csv else _jsonl_files(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", newline="")
        if self.csv and self._file.tell() == 0:
            self._write([csv_header(self.labels)])

    def _write(self, rows: list[list[Any]]) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        self._file.write(text.getvalue())
        self._file.flush()

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append ``records`` (one per input file) and flush them to the file."""
        if self.csv:
            self._write([row for record in records for row in csv_rows(record, self.labels)])
            return
        self._file.write("".join(json.dumps(record) + "\n" for record in records))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class RateColumn(ProgressColumn):
    """Images per second over the run so far."""

    def render(self, task: Task) -> Text:
        rate = task.completed / task.elapsed if task.elapsed else 0.0
        return Text(f"{rate:.1f} images/s")


def _progress(quiet: bool) -> Progress:
    columns = (
        TextColumn("recognising"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    return Progress(*columns, console=err_console, transient=True, disable=quiet)


def predict(
    paths: Annotated[
        list[str], typer.Argument(help="Image files, folders (searched recursively) or globs.")
    ],
    json_out: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of a table.")
    ] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write the results to this .jsonl (a line per file) or .csv file as they come, "
            "instead of printing them."
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(help="With --out: skip the files already in it and add the others to it."),
    ] = False,
    save_annotated: Annotated[
        Path | None,
        typer.Option(help="Write images with boxes, labels and probability bars to this folder."),
    ] = None,
    style: Annotated[
        str,
        typer.Option(
            help="Annotated images: full (probability bars where they fit) or compact (labels).",
            autocompletion=complete_from(DRAW_STYLES),
        ),
    ] = "full",
    model: ModelOpt = "default",
    tta: Annotated[
        str,
        typer.Option(
            help="Test-time augmentation: flip (each face with its mirror image), none, tencrop.",
            autocompletion=complete_from(("none", "flip", "tencrop")),
        ),
    ] = "flip",
    balance: BalanceOpt = None,
    faces: Annotated[
        str,
        typer.Option(
            help="auto (small images are face crops), crop (whole image), detect.",
            autocompletion=complete_from(("auto", "crop", "detect")),
        ),
    ] = "auto",
    detector: DetectorOpt = "default",
    backend: BackendOpt = "auto",
) -> None:
    """Find the faces in images and recognise their expressions.

    A file that cannot be read is reported and skipped. With --out the results go to a file as
    they come (--resume continues a run that was stopped); without, they are printed at the end.

    Exit codes: 0 every input done; 1 some inputs failed (named on stderr); 2 a usage, model or
    data error.
    """
    from ..faces import annotate, load_image
    from ..recognize import Recognizer

    if json_out + csv_out + (out is not None) > 1:
        raise typer.BadParameter("choose one of --json, --csv and --out")
    if resume and out is None:
        raise typer.BadParameter("--resume continues an --out file; name it with --out")
    if style not in DRAW_STYLES:
        raise typer.BadParameter(f"--style must be one of {', '.join(DRAW_STYLES)}")
    recognizer = Recognizer(model, detector, backend, faces, tta, balance=balance)
    files, problems = expand_paths(paths)
    sink = ResultFile(out, recognizer.label_names, resume) if out is not None else None
    if sink is not None and sink.done:
        files = [path for path in files if str(path) not in sink.done]
        err_console.print(f"{len(sink.done)} files already in {escape(str(out))}: skipped")
    for problem in problems:
        err_console.print(f"[yellow]skipped[/] {escape(problem)}")
    if save_annotated is not None:
        save_annotated.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    n_images = n_faces = 0
    skipped, used = len(problems), set()
    quiet = len(files) < PROGRESS_FROM or not err_console.is_terminal
    with _progress(quiet) as bar:
        task = bar.add_task("predict", total=len(files))
        for chunk in _chunks(files, CHUNK):
            done = []  # files, not arrays: the recognizer decodes large JPEGs at reduced scale
            for path, found in zip(chunk, recognizer.predict_batch(chunk), strict=True):
                if isinstance(found, DataError):
                    err_console.print(f"[yellow]skipped[/] {escape(str(found))}")
                    skipped += 1
                    continue
                done.append({"file": str(path), "faces": [f.to_dict() for f in found]})
                if save_annotated is not None:
                    image = load_image(path, recognizer.max_pixels)
                    target = save_annotated / _annotated_name(path, used)
                    annotate(image, found, style=style).save(target, quality=90)
            n_images, n_faces = n_images + len(done), n_faces + sum(len(r["faces"]) for r in done)
            if sink is not None:
                sink.write(done)
            else:
                records.extend(done)
            bar.advance(task, len(chunk))
    if sink is not None:
        sink.close()
    if json_out:
        typer.echo(json.dumps(records, indent=2))
    elif csv_out:
        _write_csv(records, recognizer.label_names)
    elif records:
        console.print(_table(records))
    err_console.print(f"{n_images} images, {n_faces} faces, {skipped} skipped")
    if skipped:
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
    calibrate: Annotated[
        str | None,
        typer.Option(help="ONNX: write int8, calibrated on 512 faces of this data set."),
    ] = None,
) -> None:
    """Export a trained model to ONNX (fp32 or int8), TorchScript or an attnfer safetensors file.

    The ONNX file carries the labels, preprocessing and framing; --calibrate DATA quantizes it to
    int8 (how the shipped int8 files are made); --half stores safetensors weights as fp16.

    ``attnfer predict --model FILE.onnx`` and ``Recognizer(model=FILE.onnx)`` run the ONNX file.
    """
    from ..export import export_model

    suffix = {"onnx": ".onnx", "torchscript": ".pt"}.get(fmt, ".safetensors")
    target = out or Path("model" + suffix)
    path = export_model(model, target, fmt, half, calibrate)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
