"""The generic CSV of image paths and labels, such as AffectNet's ``training.csv``."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from ...errors import DataError
from ..dataset import FaceDataset
from ..decode import BadSamples, Decoder
from ..labels import AFFECTNET_CODES, CANONICAL, FER2013_CODES, canonical_name, index_map
from ._common import Sample, build, split_name

PATH_COLUMNS = ("path", "file", "filename", "file_name", "image", "image_path", "filepath",
                "subdirectory_filepath")  # fmt: skip
LABEL_COLUMNS = ("label", "expression", "emotion", "class", "category")
SPLIT_COLUMNS = ("split", "usage", "subset")
SUBJECT_COLUMNS = ("subject", "subject_id", "person")
_AFFECTNET_OTHER = {8: "none", 9: "uncertain", 10: "no face"}


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    return next((header.index(n) for n in names if n in header), None)


def _label(text: str, codes: dict[int, int], affectnet: bool, bad: BadSamples, where: str):
    """The canonical index for a label name or code; None (recorded) when it has none."""
    text = text.strip()
    if text.isdigit():
        code = int(text)
        if code in codes:
            return codes[code]
        if affectnet and code in _AFFECTNET_OTHER:
            bad.drop(f"AffectNet {_AFFECTNET_OTHER[code]!r}, not an expression")
            return None
    else:
        name = canonical_name(text)
        if name is not None:
            return CANONICAL.index(name)
    bad.add(where, f"unknown label {text!r}")
    return None


def read_image_csv(
    path: str | os.PathLike,
    *,
    image_root: str | os.PathLike | None = None,
    codes: dict[int, str] | None = None,
    decoder: Decoder | None = None,
) -> FaceDataset:
    """Read a CSV of image paths (relative to ``image_root``, default the CSV's folder) and labels.

    Columns are found by name (``path``/``file``/``image``/``subDirectory_filePath``;
    ``label``/``expression``/``emotion``; optional ``split``/``usage`` and ``subject``), or are
    the first two of a headerless file. Labels are names in any common spelling or integer
    ``codes`` (default: FER2013's order; AffectNet's when the column is ``expression``, whose
    codes 8..10 are dropped). Default colour: gray.
    """
    decoder = decoder or Decoder()
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read CSV ({exc})") from None
    header = [h.strip().lower() for h in rows[0]] if rows else []
    path_col, label_col = _column(header, PATH_COLUMNS), _column(header, LABEL_COLUMNS)
    first = 1
    if path_col is None or label_col is None:
        path_col, label_col, first = 0, 1, 0
        if len(header) < 2:
            raise DataError(f"{path}: expected columns path,label (header: {header})")
    affectnet = first == 1 and header[label_col] == "expression" and codes is None
    code_map = index_map(codes or (AFFECTNET_CODES if affectnet else FER2013_CODES))
    split_col = _column(header, SPLIT_COLUMNS) if first else None
    subject_col = _column(header, SUBJECT_COLUMNS) if first else None
    samples = []
    for number, fields in enumerate(rows[first:], first + 1):
        where = f"{path}:{number}"
        if not fields:
            continue
        if len(fields) < len(header) or len(fields) <= max(path_col, label_col):
            decoder.bad.add(where, "malformed row (too few fields)")
            continue
        label = _label(fields[label_col], code_map, affectnet, decoder.bad, where)
        if label is None:
            continue
        split = split_name(fields[split_col]) if split_col is not None else None
        subject = fields[subject_col].strip() if subject_col is not None else None
        samples.append(Sample(root / fields[path_col].strip(), label, split, subject))
    return build(samples, decoder, path, decoder.color or "gray")
