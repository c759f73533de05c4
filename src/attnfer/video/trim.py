"""Re-trim clips by the labelling tool's marks and sort them into one folder per emotion.

Each marked clip is cut to its frames ``start`` to ``end`` (included; audio kept in sync) and
written to ``<out>/<emotion>/<clip name>.mp4``. Clips with a flag set (see
:mod:`attnfer.video.marks`) are dropped unless the flag is in ``keep_flags`` (``all`` keeps
every flagged clip). A clip that cannot be read, or whose marks run past its end, is reported
and skipped. ``<out>/trim.tsv`` lists every clip: where it went, its frames and its peak within
the trimmed clip, or why it was left out.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DataError
from .io import cut_segment, probe
from .marks import FLAGS, MarkedClip

REPORT_NAME = "trim.tsv"


@dataclass(frozen=True)
class Trimmed:
    """What became of one marked clip: ``out`` (None when left out), its frame count and the
    reason it was left out (None when written)."""

    clip: Path
    label: str
    out: Path | None
    frames: int
    peak: int | None
    skipped: str | None = None


def check_flags(keep_flags: Collection[str]) -> frozenset[str]:
    """The flag names to keep (``all``: every flag); ConfigError for unknown names."""
    keep = frozenset(keep_flags)
    if "all" in keep:
        return frozenset(FLAGS)
    unknown = keep - set(FLAGS)
    if unknown:
        raise ConfigError(f"unknown flag(s) {sorted(unknown)}; flags: {', '.join(FLAGS)}, all")
    return keep


def _target(out_dir: Path, item: MarkedClip, used: set[Path]) -> Path:
    """``<out>/<label>/<stem>.mp4``, numbered when two clips share a stem."""
    target, n = out_dir / item.label / f"{item.clip.stem}.mp4", 2
    while target in used:
        target, n = out_dir / item.label / f"{item.clip.stem}_{n}.mp4", n + 1
    used.add(target)
    return target


def trim_one(item: MarkedClip, target: Path) -> Trimmed:
    """Cut one clip to its marks; DataError when it cannot be read or is too short."""
    info = probe(item.clip)
    marks = item.marks
    if info.frames and marks.end >= info.frames:
        raise DataError(
            f"{item.clip}: marks end at frame {marks.end}, but the clip has {info.frames} frames"
        )
    frames = cut_segment(item.clip, target, marks.start / info.fps, (marks.end + 1) / info.fps)
    if frames != marks.frames:
        target.unlink(missing_ok=True)
        raise DataError(
            f"{item.clip}: frames {marks.start}..{marks.end} gave {frames} frames, "
            f"not {marks.frames} (the clip is shorter than its marks?)"
        )
    return Trimmed(item.clip, item.label, target, frames, marks.peak - marks.start)


def trim_clips(
    marked: Sequence[MarkedClip], out_dir: str | os.PathLike, keep_flags: Collection[str] = ()
) -> list[Trimmed]:
    """Trim and sort ``marked`` clips into ``out_dir`` (see the module notes)."""
    keep = check_flags(keep_flags)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results, used = [], set()
    for item in marked:
        dropped = [f for f in item.marks.flags if f not in keep]
        if dropped:
            results.append(
                Trimmed(item.clip, item.label, None, 0, None, f"flagged {','.join(dropped)}")
            )
            continue
        try:
            results.append(trim_one(item, _target(out_dir, item, used)))
        except DataError as exc:
            results.append(Trimmed(item.clip, item.label, None, 0, None, f"error: {exc}"))
    write_report(results, out_dir / REPORT_NAME)
    return results


def write_report(results: Sequence[Trimmed], path: Path) -> None:
    """One TSV row per clip: clip, label, output, frames, peak, skipped reason."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["clip", "label", "out", "frames", "peak", "skipped"])
        for r in results:
            out = "" if r.out is None else str(r.out)
            peak = "" if r.peak is None else r.peak
            writer.writerow([str(r.clip), r.label, out, r.frames, peak, r.skipped or ""])
