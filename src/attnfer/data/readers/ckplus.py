"""CK+: a folder of face crops such as CK+48, or the original images with ``Emotion/`` labels."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ...errors import ConfigError
from ..dataset import FaceDataset
from ..decode import Decoder
from ..labels import CKPLUS_CODES, index_map
from ._common import Sample, build, list_dirs, list_files
from .folder import folder_samples

# CK+ frame files: S<subject>_<sequence>_<frame>.png; group 1 is the subject id.
CKPLUS_NAME = re.compile(r"^(S\d+)_(\d+)_(\d+)\.\w+$")
_CODES = index_map(CKPLUS_CODES)


def original_layout(root: Path) -> tuple[Path, Path] | None:
    """(images folder, ``Emotion`` folder) of the original CK+ release under ``root``, or None."""
    images = root / "cohn-kanade-images"
    for emotion in (root / "Emotion", root / "Emotion_labels" / "Emotion"):
        if images.is_dir() and emotion.is_dir():
            return images, emotion
    return None


def _sequence_samples(images: Path, emotion: Path, frames: int, decoder: Decoder) -> list[Sample]:
    """The last ``frames`` frames of every sequence that has an emotion label file."""
    samples = []
    for label_file in sorted(emotion.glob("*/*/*_emotion.txt")):
        subject, sequence = label_file.parent.parent.name, label_file.parent.name
        try:
            code = int(float(label_file.read_text().split()[0]))
            label = _CODES[code]
        except (OSError, ValueError, IndexError, KeyError):
            decoder.bad.add(label_file, "not a CK+ emotion file (one code 0..7)")
            continue
        seq_dir = images / subject / sequence
        files = list_files(seq_dir) if seq_dir.is_dir() else []
        if not files:
            decoder.bad.add(seq_dir, "labelled sequence has no image frames")
            continue
        samples += [Sample(path, label, None, subject) for path in files[-frames:]]
    return samples


def read_ckplus(
    root: str | os.PathLike, *, frames: int = 3, decoder: Decoder | None = None
) -> FaceDataset:
    """Read CK+ with subject ids (``S005``) from the file names (default colour: gray).

    Either crops in label folders (``<root>/<label>/S005_001_00000011.png``, as CK+48), or the
    original release (``cohn-kanade-images/S005/001/*.png`` with labels in
    ``Emotion/S005/001/*_emotion.txt``), where the last ``frames`` frames of each labelled
    sequence are taken.
    """
    if frames < 1:
        raise ConfigError(f"frames must be at least 1, got {frames}")
    decoder = decoder or Decoder()
    root = Path(root)
    layout = original_layout(root)
    if layout is None:
        samples = folder_samples(root, decoder, subject_pattern=CKPLUS_NAME.pattern)
    else:
        samples = _sequence_samples(*layout, frames, decoder)
    return build(samples, decoder, root, decoder.color or "gray")


def looks_like_crops(root: Path) -> bool:
    """True when ``root``'s label folders hold CK+ frame files (checks a few per folder)."""
    names = [p.name for d in list_dirs(root) for p in list_files(d)[:3]]
    return bool(names) and all(CKPLUS_NAME.match(n) for n in names)
