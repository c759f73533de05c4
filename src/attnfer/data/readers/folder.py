"""Folder trees: ``<root>/<split>/<label>/*`` or ``<root>/<label>/*``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..dataset import FaceDataset
from ..decode import Decoder
from ..labels import CANONICAL, canonical_name
from ._common import SPLIT_ORDER, Sample, build, list_dirs, list_files, split_name


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def _split_parts(root: Path, decoder: Decoder) -> list[tuple[str | None, Path]]:
    """(split, folder of label folders) pairs: the split folders, or the root itself."""
    dirs = list_dirs(root)
    if not any(split_name(d.name) for d in dirs):
        return [(None, root)]
    parts = []
    for d in dirs:
        split = split_name(d.name)
        if split is None:
            n = sum(len(list_files(sub)) for sub in list_dirs(d))
            decoder.bad.add(d, f"unknown split folder ({_files(n)} skipped)", count=n)
        else:
            parts.append((split, d))
    return sorted(parts, key=lambda part: SPLIT_ORDER.index(part[0]))


def folder_samples(
    root: Path, decoder: Decoder, subject_pattern: str | None = None
) -> list[Sample]:
    """The files of a label-folder tree; unknown label folders go to ``decoder.bad``.

    With ``subject_pattern`` (a regular expression whose first group is the subject id, matched
    against file names) a file whose name does not match is skipped as bad.
    """
    pattern = re.compile(subject_pattern) if subject_pattern else None
    samples = []
    for split, base in _split_parts(root, decoder):
        for label_dir in list_dirs(base):
            files = list_files(label_dir)
            label = canonical_name(label_dir.name)
            if label is None:
                decoder.bad.add(
                    label_dir,
                    f"unknown label folder {label_dir.name!r} ({_files(len(files))} skipped; "
                    f"known: {', '.join(CANONICAL)} and common spellings)",
                    count=len(files),
                )
                continue
            for path in files:
                match = pattern.match(path.name) if pattern else None
                if pattern and not match:
                    decoder.bad.add(path, f"file name has no subject id ({pattern.pattern})")
                    continue
                subject = match.group(1) if match else None
                samples.append(Sample(path, CANONICAL.index(label), split, subject))
    return samples


def read_folder(
    root: str | os.PathLike,
    *,
    subject_pattern: str | None = None,
    decoder: Decoder | None = None,
) -> FaceDataset:
    """Read ``<root>/<split>/<label>/*`` or ``<root>/<label>/*`` (default colour: gray).

    Label folders are matched by common spellings (``anger``/``angry``, ``happiness``, ...),
    split folders ``train``/``training``, ``val``/``valid``/``validation``, ``test``.
    """
    decoder = decoder or Decoder()
    root = Path(root)
    samples = folder_samples(root, decoder, subject_pattern)
    return build(samples, decoder, root, decoder.color or "gray")
