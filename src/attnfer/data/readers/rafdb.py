"""RAF-DB basic: ``EmoLabel/list_patition_label.txt`` and ``Image/aligned`` (or ``original``)."""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import DataError
from ..dataset import FaceDataset
from ..decode import Decoder
from ..labels import RAFDB_CODES, index_map
from ._common import Sample, build

LABEL_FILE = "list_patition_label.txt"  # sic: RAF-DB's own spelling
_CODES = index_map(RAFDB_CODES)


def find_label_file(src: Path) -> Path | None:
    """RAF-DB's label list: ``src`` itself, or in ``src`` or ``src/EmoLabel``; None if absent."""
    if src.is_file():
        return src if src.name == LABEL_FILE else None
    for candidate in (src / "EmoLabel" / LABEL_FILE, src / LABEL_FILE):
        if candidate.is_file():
            return candidate
    return None


def _image_dir(label_file: Path, aligned: bool) -> Path:
    base = label_file.parent.parent if label_file.parent.name == "EmoLabel" else label_file.parent
    image_dir = base / "Image" / ("aligned" if aligned else "original")
    if not image_dir.is_dir():
        raise DataError(f"{label_file}: no image folder {image_dir}")
    return image_dir


def _parse_line(line: str) -> tuple[str, int, str] | None:
    """(file name, canonical label, split) from ``train_00001.jpg 5``; None when malformed."""
    fields = line.split()
    if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) not in _CODES:
        return None
    split = fields[0].split("_")[0].lower()
    return (fields[0], _CODES[int(fields[1])], split) if split in ("train", "test") else None


def read_rafdb(
    src: str | os.PathLike, *, aligned: bool = True, decoder: Decoder | None = None
) -> FaceDataset:
    """Read RAF-DB basic; splits train/test from the name prefix (default colour: rgb).

    Lines ``train_00001.jpg 5`` carry labels 1..7 in RAF order (surprise, fear, disgust, happy,
    sad, angry, neutral). ``aligned`` reads ``Image/aligned/train_00001_aligned.jpg``, otherwise
    ``Image/original/train_00001.jpg``.
    """
    decoder = decoder or Decoder()
    src = Path(src)
    label_file = find_label_file(src)
    if label_file is None:
        raise DataError(f"{src}: no RAF-DB {LABEL_FILE} (looked in EmoLabel/ too)")
    image_dir = _image_dir(label_file, aligned)
    samples = []
    try:
        lines = label_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{label_file}: cannot read ({exc})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parsed = _parse_line(line)
        if parsed is None:
            decoder.bad.add(
                f"{label_file}:{number}", "malformed line, expected 'train_00001.jpg 5'"
            )
            continue
        name, label, split = parsed
        stem, ext = os.path.splitext(name)
        path = image_dir / (f"{stem}_aligned{ext}" if aligned else name)
        samples.append(Sample(path, label, split))
    return build(samples, decoder, src, decoder.color or "rgb")
