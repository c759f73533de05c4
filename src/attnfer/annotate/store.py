"""The labelling tool's clips and marks files (paper 004).

The clips are the videos under a folder, found recursively and sorted by path; a clip's
emotion is its folder's name (``happy/p01.mp4`` is happy). Videos elsewhere (in the folder
itself or in a folder that names no emotion), videos whose path holds a tab or any character
that breaks a line (``\\n``, ``\\r``, U+2028, ...: it would break ``marks.tsv``) and videos that
would share a marks file (``happy/p01.mp4`` and ``happy/p01.avi``: both ``happy/p01.tsv``) are
listed in ``skipped`` with the reason; hidden files and folders (such as ``.attnfer-faces``) are
passed over.

Saving a clip's marks writes ``<clip>.tsv`` beside it, one mark line in the per-clip format of
:mod:`attnfer.video.marks`, then rewrites the combined table ``<folder>/marks.tsv`` from all
per-clip files (``happy/p01.mp4<TAB>start ... other<TAB>happy``, paths relative to the
folder). Each file goes through :func:`~attnfer.files.write_atomic` (written to a temporary
file, flushed to disk and moved into place), so an interrupted session loses nothing saved. A
new store removes the temporary files a killed session left and rebuilds ``marks.tsv`` from the
per-clip files, which are the record. A clip is labelled when its ``<clip>.tsv`` reads as valid
marks; a session resumes at the first clip that is not.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from ..data.labels import canonical_name
from ..errors import DataError
from ..files import remove_orphans, write_atomic
from ..video.io import VIDEO_SUFFIXES
from ..video.marks import FIELDS, Marks, parse_marks, read_clip_marks

TABLE_NAME = "marks.tsv"
# a tab, and every character str.splitlines() breaks a line at
UNSAFE_CHARACTERS = frozenset("\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


@dataclass(frozen=True)
class Clip:
    """A video to label: its file, its path relative to the folder (``/``-separated) and its
    emotion (canonical name)."""

    path: Path
    name: str
    label: str

    @property
    def marks_file(self) -> Path:
        """The per-clip marks file, ``<clip>.tsv``."""
        return self.path.with_suffix(".tsv")


@dataclass(frozen=True)
class Skipped:
    """A video left out, with the reason."""

    name: str
    reason: str


def find_clips(root: Path) -> tuple[list[Clip], list[Skipped]]:
    """The clips under ``root`` in path order, and the videos left out (see the module notes)."""
    clips, skipped = [], []
    videos = (p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    for path in sorted(videos):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        label = canonical_name(path.parent.name) if len(rel.parts) > 1 else None
        problem = _problem(rel, label)
        if problem:
            skipped.append(Skipped(_printable(rel.as_posix()), problem))
        else:
            clips.append(Clip(path, rel.as_posix(), label))
    return _without_shared_marks(clips, skipped)


def _problem(rel: Path, label: str | None) -> str | None:
    unsafe = sorted({c for c in rel.as_posix() if c in UNSAFE_CHARACTERS})
    if unsafe:
        shown = ", ".join(repr(c) for c in unsafe)
        return f"its path holds {shown} (a tab or line break breaks marks.tsv): rename it"
    if label is None:
        return "not in an emotion folder (happy/, sad/, ...)"
    return None


def _printable(name: str) -> str:
    """``name`` with each unsafe character written as its escape, for one-line messages."""
    return "".join(repr(c)[1:-1] if c in UNSAFE_CHARACTERS else c for c in name)


def _without_shared_marks(
    clips: list[Clip], skipped: list[Skipped]
) -> tuple[list[Clip], list[Skipped]]:
    """Move the clips whose marks file another clip would share into ``skipped``."""
    sharing: dict[Path, list[Clip]] = {}
    for clip in clips:
        sharing.setdefault(clip.marks_file, []).append(clip)
    kept = []
    for clip in clips:
        others = [c.name for c in sharing[clip.marks_file] if c is not clip]
        if others:
            reason = (
                f"shares its marks file {clip.marks_file.name} with {', '.join(others)}: rename one"
            )
            skipped.append(Skipped(clip.name, reason))
        else:
            kept.append(clip)
    return kept, sorted(skipped, key=lambda s: s.name)


class MarksStore:
    """The clips under ``root`` and their saved marks; DataError when there are no clips."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: no such folder")
        self.clips, self.skipped = find_clips(self.root)
        if not self.clips:
            raise DataError(
                f"{self.root}: no clips in emotion folders (happy/p01.mp4, ...); "
                f"videos found elsewhere: {len(self.skipped)}"
            )
        self.table = self.root / TABLE_NAME
        self._lock = threading.Lock()
        for path in (self.table, *(clip.marks_file for clip in self.clips)):
            remove_orphans(path)
        if self.table.is_file() or any(self.labelled()):
            self.write_table()

    def saved(self, index: int) -> Marks | None:
        """Clip ``index``'s saved marks; None when it has no marks file or it does not read."""
        clip = self.clips[index]
        if not clip.marks_file.is_file():
            return None
        try:
            return read_clip_marks(clip.marks_file, clip.path).marks
        except DataError:
            return None

    def labelled(self) -> list[bool]:
        """Whether each clip has saved marks."""
        return [self.saved(i) is not None for i in range(len(self.clips))]

    def first_unlabelled(self) -> int | None:
        """The index of the first clip without saved marks; None when all have them."""
        return next((i for i, done in enumerate(self.labelled()) if not done), None)

    def save(self, index: int, marks: Marks, frames: int | None = None) -> None:
        """Check ``marks`` (by the readers' rules and, with ``frames``, against the clip's
        length), write ``<clip>.tsv`` and rewrite the combined table. DataError when they are
        invalid (nothing is written) or a file cannot be written."""
        clip = self.clips[index]
        parse_marks(marks.line().split("\t"), clip.name)
        if frames is not None and marks.end >= frames:
            raise DataError(f"{clip.name}: end {marks.end} is past the last frame ({frames - 1})")
        with self._lock:
            _write_text(clip.marks_file, f"{marks.line()}\n")
            self.write_table()

    def write_table(self) -> None:
        """Rewrite ``marks.tsv`` from the per-clip files (unless it already holds them)."""
        lines = ["\t".join(("# clip", *FIELDS, "emotion"))]
        for index, clip in enumerate(self.clips):
            marks = self.saved(index)
            if marks is not None:
                lines.append(f"{clip.name}\t{marks.line()}\t{clip.label}")
        text = "\n".join(lines) + "\n"
        if not (self.table.is_file() and self.table.read_bytes() == text.encode("utf-8")):
            _write_text(self.table, text)


def _write_text(path: Path, text: str) -> None:
    try:
        write_atomic(path, lambda f: f.write(text.encode("utf-8")))
    except OSError as exc:
        raise DataError(f"{path}: cannot write the marks ({exc.strerror or exc})") from None
