"""FER2013 (the Kaggle CSV ``emotion,pixels,Usage``) and FER+ (``fer2013new.csv`` votes)."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ..dataset import FaceDataset
from ..decode import BadSamples, Decoder, stack_images, to_color
from ..labels import CANONICAL, FERPLUS_COLUMNS, canonical_name
from ._common import assemble, dataset_name, split_name

_USAGE = {"training": "train", "publictest": "val", "privatetest": "test"}
FER2013_CODES = frozenset("0123456")  # the emotion column, exactly (not ``isdigit``: ``²``)
# FER+ vote columns for the eight expressions, as canonical indices.
_FERPLUS_INDEX = [CANONICAL.index(canonical_name(c)) for c in FERPLUS_COLUMNS[:8]]


Row = dict[str, str] | str  # a data row keyed by lower-case column, or why it is unreadable


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[str, Row]]:
    """``(where, row)`` for each data row; a row that is malformed (wrong number of fields),
    not UTF-8 or has a field over the csv module's limit comes as its problem instead.

    Raises DataError when the file cannot be read or its header lacks a ``required`` column.
    """
    try:
        # undecodable bytes come through as lone surrogates, so one bad byte costs its row only
        with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
            reader = csv.reader(f)
            header = [h.strip().lower() for h in next(reader, [])]
            if not _is_text(header):
                raise DataError(f"{path}: the header is not UTF-8 text")
            missing = [c for c in required if c not in header]
            if missing:
                raise DataError(f"{path}: no column {', '.join(missing)} (header: {header})")
            yield from _data_rows(reader, header, path)
    except (OSError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read CSV ({exc})") from None


def _data_rows(reader: Any, header: list[str], path: Path) -> Iterator[tuple[str, Row]]:
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a field over the limit: the reader goes on at the next line
            yield f"{path}:{reader.line_num}", f"unreadable row ({exc})"
            continue
        where = f"{path}:{reader.line_num}"
        if not fields:
            continue
        if not _is_text(fields):
            yield where, "not UTF-8 text"
        elif len(fields) != len(header):
            yield where, "malformed row (wrong number of fields)"
        else:
            yield where, dict(zip(header, fields, strict=True))


def _is_text(fields: list[str]) -> bool:
    """Whether the fields decoded as UTF-8 (no byte was escaped as a lone surrogate)."""
    try:
        "".join(fields).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_pixels(text: str) -> np.ndarray | str:
    """A square uint8 image from space-separated pixel values, or why it is not one."""
    try:
        values = np.fromstring(text, dtype=np.int32, sep=" ")
    except ValueError:
        return "pixels are not space-separated integers"
    side = math.isqrt(len(values))
    if not len(values) or side * side != len(values):
        return f"{len(values)} pixel values do not make a square image"
    if values.min() < 0 or values.max() > 255:
        return "pixel values outside 0..255"
    return values.astype(np.uint8).reshape(side, side)


def _fer2013_rows(path: Path, bad: BadSamples) -> list[tuple[int, np.ndarray, str | None] | None]:
    """Per CSV row, (canonical label, image, split), or None for a row skipped as bad."""
    out: list[tuple[int, np.ndarray, str | None] | None] = []
    for where, row in _rows(path, ("emotion", "pixels")):
        problem, parsed = _parse_fer2013_row(row)
        if problem:
            bad.add(where, problem)
        out.append(parsed)
    return out


def _parse_fer2013_row(row: Row) -> tuple[str | None, tuple[int, np.ndarray, str | None] | None]:
    """(problem, None) for a bad row, else (None, (label, image, split))."""
    if isinstance(row, str):
        return row, None
    code = row["emotion"].strip()
    if code not in FER2013_CODES:
        return f"emotion {code!r} is not a FER2013 code 0..6", None
    image = _parse_pixels(row["pixels"])
    if isinstance(image, str):
        return image, None
    usage = row.get("usage", "").strip()
    split = _USAGE.get(usage.lower()) or split_name(usage)
    if usage and split is None:
        return f"Usage {usage!r} is not Training, PublicTest or PrivateTest", None
    return None, (int(code), image, split)


def read_fer2013_csv(path: str | os.PathLike, *, decoder: Decoder | None = None) -> FaceDataset:
    """Read the Kaggle FER2013 CSV: Training/PublicTest/PrivateTest become train/val/test.

    Labels 0..6 are FER2013's codes, which are the canonical indices. Default colour: gray.
    """
    decoder = decoder or Decoder()
    path = Path(path)
    rows = [r for r in _fer2013_rows(path, decoder.bad) if r is not None]
    if not rows:
        raise DataError(f"{path}: no readable rows")
    color = decoder.color or "gray"
    images = to_color(stack_images([r[1] for r in rows], "gray", decoder.size), color)
    labels = [r[0] for r in rows]
    return assemble(images, labels, dataset_name(path), row_splits=[r[2] for r in rows])


def _ferplus_votes(row: Row) -> np.ndarray | str:
    if isinstance(row, str):
        return row
    try:
        votes = np.array([float(row[c.lower()]) for c in FERPLUS_COLUMNS])
    except ValueError:
        return "vote counts are not numbers"
    if (votes < 0).any() or votes.sum() == 0:
        return "vote counts must be non-negative and not all zero"
    return votes


def _find_fer2013(ferplus: Path, fer2013: str | os.PathLike | None) -> Path:
    if fer2013 is not None:
        return Path(fer2013)
    for candidate in (ferplus.parent / "fer2013.csv", ferplus.parent / "fer2013" / "fer2013.csv"):
        if candidate.is_file():
            return candidate
    raise DataError(
        f"{ferplus}: FER+ votes need the FER2013 CSV for the pixels; put fer2013.csv next to it "
        "or pass fer2013=PATH"
    )


def read_ferplus(
    path: str | os.PathLike,
    *,
    fer2013: str | os.PathLike | None = None,
    decoder: Decoder | None = None,
) -> FaceDataset:
    """Read FER+ (``fer2013new.csv``) joined row by row to the FER2013 CSV.

    ``labels`` is the majority vote (ties go to the first in FER+ column order) and
    ``soft_labels`` the vote distribution over the eight expressions, in canonical order. As in
    the FER+ paper, rows whose majority is 'unknown' or 'not a face' are dropped (counted in
    ``decoder.bad.dropped``). ``fer2013`` defaults to ``fer2013.csv`` beside ``path``.
    """
    decoder = decoder or Decoder()
    path = Path(path)
    fer_path = _find_fer2013(path, fer2013)
    fer_rows = _fer2013_rows(fer_path, decoder.bad)
    votes_rows = list(_rows(path, ("usage", *(c.lower() for c in FERPLUS_COLUMNS))))
    if len(votes_rows) != len(fer_rows):
        raise DataError(
            f"{path}: {len(votes_rows)} rows but {fer_path} has {len(fer_rows)}; FER+ joins the "
            "two row by row"
        )
    kept, labels, soft = [], [], []
    for (where, row), fer_row in zip(votes_rows, fer_rows, strict=True):
        if fer_row is None:
            continue  # already counted as bad in the FER2013 CSV
        votes = _ferplus_votes(row)
        if isinstance(votes, str):
            decoder.bad.add(where, votes)
            continue
        if votes.argmax() >= 8:
            decoder.bad.drop("FER+ majority unknown or not a face")
            continue
        dist = np.zeros(len(CANONICAL), dtype=np.float32)
        dist[_FERPLUS_INDEX] = votes[:8] / votes[:8].sum()
        kept.append(fer_row)
        labels.append(_FERPLUS_INDEX[int(votes.argmax())])
        soft.append(dist)
    if not kept:
        raise DataError(f"{path}: no usable rows")
    color = decoder.color or "gray"
    images = to_color(stack_images([r[1] for r in kept], "gray", decoder.size), color)
    return assemble(
        images,
        labels,
        dataset_name(path),
        row_splits=[r[2] for r in kept],
        soft_labels=np.stack(soft),
        label_names=CANONICAL,
    )
