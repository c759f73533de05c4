"""``attnfer video``: recognition over videos and streams, and the clip data tools.

``attnfer video INPUT ...`` is short for ``attnfer video run INPUT ...`` (an INPUT named like a
subcommand needs the long form).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from ..errors import AttnferError, DataError
from .options import BalanceOpt, console, err_console


class RunByDefault(TyperGroup):
    """A group whose first argument, when it is no subcommand or option, goes to ``run``."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


video_app = typer.Typer(
    cls=RunByDefault,
    help="Expressions in videos and streams (attnfer video INPUT), and the clip data tools.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def _shares(shares: dict[str, float], top: int = 3) -> str:
    ranked = sorted(shares.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{name} {100 * share:.0f}%" for name, share in ranked if share > 0)


def _progress(total: int | None) -> Progress:
    columns = (
        TextColumn("recognising"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:.1f} frames/s"),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=err_console, transient=True,
                    disable=not err_console.is_terminal)  # fmt: skip


@video_app.command("run")
def run(
    source: Annotated[str, typer.Argument(help="Video file, camera index (0) or stream URL.")],
    out: Annotated[
        Path | None, typer.Option(help="Write the annotated video (boxes, labels, bars) here.")
    ] = None,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Write one row per face and frame here.")
    ] = None,
    every: Annotated[
        int, typer.Option(min=1, help="Detect faces every N frames, track in between.")
    ] = 5,
    smooth: Annotated[
        int, typer.Option(min=1, help="Average each track's probabilities over W frames.")
    ] = 5,
    model: Annotated[str, typer.Option(help="Shipped model name, run folder or file.")] = "default",
    detector: Annotated[
        str, typer.Option(help="Face detector: default (retinaface), retinaface, mtcnn, yunet.")
    ] = "default",
    max_frames: Annotated[
        int | None, typer.Option(help="Stop after this many frames (cameras, streams).")
    ] = None,
    detect_side: Annotated[
        int | None,
        typer.Option(
            min=64,
            help="Detect on frames shrunk to this longer side (pixels); default: half the "
            "frame's, from 480 to 960.",
        ),
    ] = None,
    balance: BalanceOpt = None,
) -> None:
    """Recognise the expressions of the faces in a video, frame by frame, with stable track ids.

    Prints a per-track summary: dominant emotion and share of time per emotion.
    """
    import numpy as np

    from ..faces import annotate
    from ..recognize import Recognizer
    from ..video.io import VideoWriter
    from ..video.stream import FrameCSV, TrackSummary, VideoRecognition

    recognizer = Recognizer(model, detector, faces="detect", balance=balance)
    recognition = VideoRecognition(recognizer, source, every, smooth, detect_side=detect_side)
    summary = TrackSummary(recognizer.label_names)
    writer = VideoWriter(out, recognition.info.fps) if out else None
    table = FrameCSV(csv_path, recognizer.label_names) if csv_path else None
    start, count = time.perf_counter(), 0
    total = recognition.info.frames if max_frames is None else max_frames
    failure: AttnferError | None = None
    try:
        with _progress(total) as bar:
            task = bar.add_task("video", total=total, fps=0.0)
            for result in recognition:
                summary.add(result)
                if table:
                    table.write(result)
                if writer:
                    writer.write(np.asarray(annotate(result.image, result.faces)))
                count += 1
                bar.update(task, advance=1, fps=count / (time.perf_counter() - start))
                if max_frames is not None and count >= max_frames:
                    break
    except AttnferError as exc:  # a damaged or truncated video: said once the files are closed
        failure = exc
    finally:
        recognition.close()
        for sink in (writer, table):
            if sink is not None:
                sink.close()
    if failure is not None:
        raise DataError(_after_failure(failure, count, [p for p in (out, csv_path) if p]))
    seconds = time.perf_counter() - start
    _print_summary(summary)
    err_console.print(
        f"{count} frames in {seconds:.1f} s ({count / max(seconds, 1e-9):.1f} frames/s), "
        f"{recognition.skipped} undecodable frames skipped"
    )
    for path in (out, csv_path):
        if path is not None:
            err_console.print(f"wrote {escape(str(path))}")


def _after_failure(error: AttnferError, frames: int, outputs: list[Path]) -> str:
    """The error and what became of ``outputs``: deleted when no frame reached them (a CSV would
    hold its header only), else kept with the frames before the error."""
    if not outputs:
        return str(error)
    names = " and ".join(str(path) for path in outputs)
    if frames == 0:
        for path in outputs:
            path.unlink(missing_ok=True)
        return f"{error}; no frame was recognised, so {names} not written"
    return f"{error}; {names} hold the {frames} frames recognised before it"


def _print_summary(summary) -> None:
    reports = summary.report()
    if not reports:
        console.print("no face found")
        return
    table = Table(title="tracks")
    for col in ("track", "frames", "seconds", "dominant", "share of time"):
        table.add_column(col)
    for r in reports:
        table.add_row(
            str(r.track_id), str(r.frames), f"{r.first:.2f}-{r.last:.2f}", r.dominant,
            _shares(r.shares),
        )  # fmt: skip
    console.print(table)


@video_app.command("split-beeps")
def split_beeps(
    recording: Annotated[Path, typer.Argument(help="Session recording with trigger beeps.")],
    out: Annotated[Path, typer.Option(help="Folder for the clips and cuts.tsv.")],
    freq: Annotated[float, typer.Option(help="Beep frequency in Hz.")] = 1000.0,
    min_gap: Annotated[float, typer.Option(help="Seconds between two beeps at least.")] = 1.0,
    threshold: Annotated[
        float, typer.Option(help="Least share of a window's power at the frequency (0-1).")
    ] = 0.5,
    min_level: Annotated[float, typer.Option(help="Least RMS level (full scale 1).")] = 0.01,
    min_duration: Annotated[float, typer.Option(help="Shortest beep in seconds.")] = 0.05,
    offset: Annotated[
        float, typer.Option(help="Start each clip this many seconds after its beep.")
    ] = 0.0,
    length: Annotated[
        float | None, typer.Option(help="Clip length in seconds (default: up to the next beep).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Only report the beeps; cut nothing.")] = False,
) -> None:
    """Find the trigger beeps in a recording's audio and cut it into clips at them."""
    from ..video.beeps import cut_times, find_beeps, split_at_beeps

    beeps = find_beeps(recording, freq, min_gap, threshold, min_level, min_duration)
    if not beeps:
        err_console.print(f"no beep at {freq:g} Hz found in {escape(str(recording))}")
        raise typer.Exit(1)
    table = Table(title=f"{len(beeps)} beeps at {freq:g} Hz")
    for col in ("clip", "beep (s)", "start (s)", "end (s)", "frames"):
        table.add_column(col)
    if dry_run:
        times = cut_times(beeps, offset, length)
        for n, (beep, (start, end)) in enumerate(zip(beeps, times, strict=True), 1):
            stop = "end" if end is None else f"{end:.3f}"
            table.add_row(str(n), f"{beep.start:.3f}", f"{start:.3f}", stop, "")
    else:
        cuts = split_at_beeps(recording, out, beeps, offset, length)
        for beep, cut in zip(beeps, cuts, strict=True):
            row = (escape(cut.path.name), f"{beep.start:.3f}", f"{cut.start:.3f}", f"{cut.end:.3f}")
            table.add_row(*row, str(cut.frames))
    console.print(table)


@video_app.command("trim")
def trim(
    marks: Annotated[
        Path, typer.Option(help="Combined marks TSV, or a folder of clips with `<clip>.tsv` files.")
    ],
    out: Annotated[Path, typer.Option(help="Folder for the per-emotion folders and trim.tsv.")],
    keep_flag: Annotated[
        list[str] | None,
        typer.Option(help="Keep clips with this flag set (repeatable; 'all' keeps every one)."),
    ] = None,
) -> None:
    """Re-trim clips to their marked start..end frames and sort them by emotion.

    Flagged clips are dropped unless kept with --keep-flag; see docs/video.md for the format.
    The exit code is 1 when no clip was written.
    """
    from collections import Counter

    from ..video.io import VIDEO_SUFFIXES
    from ..video.marks import find_marks
    from ..video.trim import REPORT_NAME, check_flags, trim_clips

    check_flags(keep_flag or ())
    results = trim_clips(find_marks(marks, VIDEO_SUFFIXES), out, keep_flag or ())
    written = Counter(r.label for r in results if r.out is not None)
    table = Table(title="trimmed clips per emotion")
    table.add_column("emotion")
    table.add_column("clips")
    for label, n in sorted(written.items()):
        table.add_row(label, str(n))
    console.print(table)
    for r in results:
        if r.skipped and r.skipped.startswith("error"):
            err_console.print(f"[yellow]skipped[/] {escape(r.skipped)}")
    dropped = sum(1 for r in results if r.skipped)
    err_console.print(
        f"{sum(written.values())} written, {dropped} left out; see {out / REPORT_NAME}"
    )
    if not written:
        raise typer.Exit(1)


ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Clip recipe YAML file.")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a recipe key: clips.frames=5.")
]


@video_app.command("train-clips")
def train_clips(
    config: ConfigOpt,
    overrides: SetOpt = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default `runs/<name>`).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the run folder's last.ckpt.")] = False,
) -> None:
    """Train a clip classifier (FAN or a frame-wise model) on a clip data set."""
    from ..train.clips import fit_clips, load_clip_recipe
    from ..video.clips import recipe_clips

    cr = load_clip_recipe(config, overrides)
    result = fit_clips(cr, out or Path("runs") / cr.name, recipe_clips(cr), resume=resume)
    console.print(f"model: {result.model_path}  ({result.seconds / 60:.1f} min)")
    if result.best_val_acc is not None:
        console.print(f"best val accuracy: {100 * result.best_val_acc:.2f}%")
    if result.test_report:
        console.print(f"test accuracy: {100 * result.test_report['accuracy']:.2f}%")


@video_app.command("evaluate-clips")
def evaluate_clips_command(
    model: Annotated[str, typer.Argument(help="Run folder or model.safetensors of a clip run.")],
    data: Annotated[Path, typer.Option(help="Clip folder (`<label>/*.mp4`) or CK+ crops.")],
    split: Annotated[str, typer.Option(help="Split to evaluate ('all' for every clip).")] = "test",
    aggregation: Annotated[
        str | None, typer.Option(help="decision, mean or attention (default: the model's).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the JSON/Markdown/PNG report.")
    ] = None,
) -> None:
    """Clip-level accuracy, per-class scores and confusion matrix of a trained clip model.

    Without split folders in the data, the split is remade as the run made it (its method,
    fractions and seed are stored in the model file).
    """
    from ..train.evaluate import write_report
    from ..video.evaluate import evaluate_clip_model

    report = evaluate_clip_model(model, data, split, aggregation)
    console.print(
        f"{report['data']}: {report['samples']} clips, accuracy {100 * report['accuracy']:.2f}%, "
        f"macro-F1 {100 * report['macro_f1']:.2f}% (aggregation {report['aggregation']})"
    )
    if out is not None:
        for path in write_report(report, out / f"eval_{split}_{report['aggregation']}"):
            console.print(f"wrote {escape(str(path))}")
