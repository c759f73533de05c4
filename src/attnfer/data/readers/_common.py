"""What the readers share: split-name spellings, file listing and assembling a FaceDataset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..dataset import FaceDataset
from ..decode import Decoder, stack_images
from ..labels import label_names_for

SPLIT_ORDER: tuple[str, ...] = ("train", "val", "test")
SPLIT_ALIASES: dict[str, str] = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val", "publictest": "val",
    "test": "test", "testing": "test", "privatetest": "test",
}  # fmt: skip
_CLUTTER = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})


def split_name(name: str) -> str | None:
    """``train``, ``val`` or ``test`` for a split spelled any common way, or None."""
    return SPLIT_ALIASES.get(name.strip().lower())


def ordered_splits(splits: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``splits`` ordered train, val, test, then any others by name."""
    rank = {name: i for i, name in enumerate(SPLIT_ORDER)}
    return dict(sorted(splits.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def visible(path: Path) -> bool:
    """False for hidden entries and OS clutter (``.DS_Store``, ``__MACOSX``, ``Thumbs.db``)."""
    return not path.name.startswith(".") and path.name not in _CLUTTER


def list_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and visible(p))


def list_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and visible(p))


def dataset_name(src: Path) -> str:
    """A short name for the data set read from ``src``: its folder name or file stem."""
    src = src.resolve()
    return src.name if src.is_dir() else src.stem


@dataclass
class Sample:
    """One image file to decode, with its canonical label and optional split and subject."""

    path: Path
    label: int
    split: str | None = None
    subject: str | None = None


def assemble(
    images: np.ndarray,
    labels: Sequence[int],
    name: str,
    row_splits: Sequence[str | None] | None = None,
    subjects: Sequence[str] | None = None,
    soft_labels: np.ndarray | None = None,
    label_names: tuple[str, ...] | None = None,
) -> FaceDataset:
    """A FaceDataset from decoded rows; ``row_splits`` names each row's split (or None)."""
    groups: dict[str, list[int]] = {}
    for i, split in enumerate(row_splits or ()):
        if split is not None:
            groups.setdefault(split, []).append(i)
    return FaceDataset(
        images=images,
        labels=np.asarray(labels, dtype=np.int64),
        label_names=label_names or label_names_for(labels),
        splits=ordered_splits({s: np.asarray(rows) for s, rows in groups.items()}),
        subjects=None if subjects is None else np.asarray(subjects, dtype=str),
        soft_labels=soft_labels,
        name=name,
    )


def build(samples: Sequence[Sample], decoder: Decoder, src: Path, color: str) -> FaceDataset:
    """Decode ``samples`` read from ``src`` (skipping bad files) into a FaceDataset."""
    arrays = decoder.decode_files([s.path for s in samples], color) if samples else []
    kept = [(s, a) for s, a in zip(samples, arrays, strict=True) if a is not None]
    if not kept:
        found = f"; {decoder.bad.summary()}" if decoder.bad.entries else ""
        raise DataError(f"{src}: no readable images found{found}")
    rows = [s for s, _ in kept]
    has_subjects = all(s.subject is not None for s in rows)
    return assemble(
        stack_images([a for _, a in kept], color, decoder.size),
        [s.label for s in rows],
        dataset_name(src),
        row_splits=[s.split for s in rows],
        subjects=[s.subject for s in rows] if has_subjects else None,
    )
