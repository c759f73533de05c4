"""The labelling tool's per-clip marks (paper 004) and their files.

A mark line has eight integers, tab-separated (runs of spaces are accepted too)::

    start  end  peak  non_correlating  abnormal_limb  low_occlusion  heavy_occlusion  other
    3      89   43    1                0              0              0                0

``start``, ``end`` and ``peak`` are frame numbers counted from 0, ``end`` included, with
``start <= peak <= end``; the five flags are 0 or 1: ``non_correlating`` (the expression shown
is not the expected one), ``abnormal_limb`` (abnormal limb behaviour, e.g. scratching),
``low_occlusion`` (over 30 % of the face covered), ``heavy_occlusion`` (over 60 %) and
``other`` (an edge case). Blank lines and lines starting with ``#`` are ignored.

Two file layouts:

- per clip: ``<clip>.tsv`` next to the clip (``happy/p01.mp4`` and ``happy/p01.tsv``), holding
  one mark line; the emotion is the clip's folder name.
- combined: one TSV whose lines start with the clip's path (relative to the TSV's folder, or
  absolute), then the eight numbers, then optionally the emotion:
  ``happy/p01.mp4<TAB>3<TAB>89<TAB>43<TAB>1<TAB>0<TAB>0<TAB>0<TAB>0[<TAB>happy]``; without
  the emotion column it is the clip's folder name.

Malformed lines raise :class:`DataError` naming the file and line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..data.labels import canonical_name
from ..errors import DataError

FLAGS = ("non_correlating", "abnormal_limb", "low_occlusion", "heavy_occlusion", "other")
FIELDS = ("start", "end", "peak", *FLAGS)


@dataclass(frozen=True)
class Marks:
    """One clip's marks: frames ``start`` to ``end`` (included), the ``peak`` and the flags."""

    start: int
    end: int
    peak: int
    non_correlating: bool = False
    abnormal_limb: bool = False
    low_occlusion: bool = False
    heavy_occlusion: bool = False
    other: bool = False

    @property
    def frames(self) -> int:
        return self.end - self.start + 1

    @property
    def flags(self) -> tuple[str, ...]:
        """The names of the flags that are set."""
        return tuple(name for name in FLAGS if getattr(self, name))

    def line(self) -> str:
        """The mark line, tab-separated."""
        values = [self.start, self.end, self.peak, *(int(getattr(self, f)) for f in FLAGS)]
        return "\t".join(map(str, values))


@dataclass(frozen=True)
class MarkedClip:
    """A clip file, its emotion (canonical name) and its marks."""

    clip: Path
    label: str
    marks: Marks


def _fields(text: str) -> list[str]:
    return [f.strip() for f in text.split("\t")] if "\t" in text else text.split()


def parse_marks(values: list[str], where: str) -> Marks:
    """Eight mark fields as :class:`Marks`; DataError naming ``where`` when they are bad."""
    if len(values) != len(FIELDS):
        raise DataError(
            f"{where}: expected {len(FIELDS)} fields ({' '.join(FIELDS)}), got {len(values)}"
        )
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        raise DataError(f"{where}: fields must be whole numbers, got {' '.join(values)}") from None
    start, end, peak, *flags = numbers
    if start < 0 or end < start:
        raise DataError(f"{where}: needs 0 <= start <= end, got start {start}, end {end}")
    if not start <= peak <= end:
        raise DataError(f"{where}: peak {peak} is outside start..end ({start}..{end})")
    bad = [f"{name}={v}" for name, v in zip(FLAGS, flags, strict=True) if v not in (0, 1)]
    if bad:
        raise DataError(f"{where}: flags must be 0 or 1, got {', '.join(bad)}")
    return Marks(start, end, peak, *(bool(v) for v in flags))


def _lines(path: Path) -> list[tuple[int, str]]:
    """The non-blank, non-comment lines of ``path`` with their numbers."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"{path}: cannot read marks ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    lines = enumerate(text.splitlines(), 1)
    return [(n, line) for n, line in lines if line.strip() and not line.lstrip().startswith("#")]


def _label(name: str, where: str) -> str:
    label = canonical_name(name)
    if label is None:
        raise DataError(f"{where}: {name!r} is not an emotion (folder or label column)")
    return label


def read_clip_marks(path: str | os.PathLike, clip: str | os.PathLike) -> MarkedClip:
    """The per-clip marks file ``path`` (one line) of ``clip``."""
    path = Path(path)
    lines = _lines(path)
    if len(lines) != 1:
        raise DataError(f"{path}: a per-clip marks file holds one line, found {len(lines)}")
    number, line = lines[0]
    where = f"{path}:{number}"
    marks = parse_marks(_fields(line), where)
    return MarkedClip(Path(clip), _label(Path(clip).parent.name, where), marks)


def read_marks_table(path: str | os.PathLike) -> list[MarkedClip]:
    """A combined marks TSV (see the module notes)."""
    path = Path(path)
    out = []
    for number, line in _lines(path):
        where = f"{path}:{number}"
        fields = _fields(line)
        if len(fields) not in (len(FIELDS) + 1, len(FIELDS) + 2):
            raise DataError(
                f"{where}: expected the clip, {len(FIELDS)} mark fields and optionally the "
                f"emotion, got {len(fields)} fields"
            )
        clip = Path(fields[0])
        clip = clip if clip.is_absolute() else path.parent / clip
        marks = parse_marks(fields[1 : 1 + len(FIELDS)], where)
        name = fields[1 + len(FIELDS)] if len(fields) > len(FIELDS) + 1 else clip.parent.name
        out.append(MarkedClip(clip, _label(name, where), marks))
    return out


def find_marks(source: str | os.PathLike, suffixes: frozenset[str]) -> list[MarkedClip]:
    """Marks from a combined TSV file, or from the per-clip ``.tsv`` files beside the clips
    (with one of ``suffixes``) under a folder."""
    source = Path(source)
    if source.is_file():
        return read_marks_table(source)
    if not source.is_dir():
        raise DataError(f"{source}: no such marks file or folder")
    out = []
    for clip in sorted(p for p in source.rglob("*") if p.suffix.lower() in suffixes):
        marks = clip.with_suffix(".tsv")
        if marks.is_file():
            out.append(read_clip_marks(marks, clip))
    if not out:
        raise DataError(f"{source}: no clip has a <clip>.tsv marks file beside it")
    return out
