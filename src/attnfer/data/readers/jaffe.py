"""JAFFE: 213 TIFF images whose names carry subject and expression (``KA.AN1.39.tiff``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..dataset import FaceDataset
from ..decode import Decoder
from ..labels import CANONICAL, canonical_name
from ._common import Sample, build, list_files

# <subject>.<expression code><pose number>.<image number>.tiff; codes AN DI FE HA NE SA SU.
JAFFE_NAME = re.compile(r"^([A-Z]{2})\.([A-Z]{2})\d*\.\d+\.tiff?$", re.IGNORECASE)


def _is_tiff(path: Path) -> bool:
    return path.suffix.lower() in (".tif", ".tiff")


def read_jaffe(root: str | os.PathLike, *, decoder: Decoder | None = None) -> FaceDataset:
    """Read the JAFFE folder; subject ``KA`` and label from each name (default colour: gray).

    Files other than TIFF (the README) are ignored; a TIFF whose name has no expression code is
    skipped as bad.
    """
    decoder = decoder or Decoder()
    root = Path(root)
    samples = []
    for path in filter(_is_tiff, list_files(root)):
        match = JAFFE_NAME.match(path.name)
        label = canonical_name(match.group(2)) if match else None
        if label is None:
            decoder.bad.add(path, "name has no JAFFE expression code (as in KA.AN1.39.tiff)")
            continue
        samples.append(Sample(path, CANONICAL.index(label), None, match.group(1).upper()))
    return build(samples, decoder, root, decoder.color or "gray")


def looks_like_jaffe(root: Path) -> bool:
    """True when most TIFF files directly in ``root`` are named the JAFFE way."""
    tiffs = [p.name for p in filter(_is_tiff, list_files(root))]
    return bool(tiffs) and sum(bool(JAFFE_NAME.match(n)) for n in tiffs) * 2 > len(tiffs)
