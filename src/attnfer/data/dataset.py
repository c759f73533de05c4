"""``FaceDataset``: the one in-memory form of every image data set.

Images are decoded once into a uint8 array (N x H x W for gray, N x H x W x 3 for colour); labels
are indices into :data:`attnfer.data.labels.CANONICAL`. A data set packs into one safetensors file
that loads in a fraction of a second, or, named ``*.safetensors.xz``, into an xz-compressed one
(FER2013's faces: 65 MB against 83; a few seconds to load) for where bytes count.
"""

from __future__ import annotations

import json
import lzma
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load, load_file, save

from ..errors import DataError
from .labels import CANONICAL


def class_set(labels: np.ndarray, classes: Sequence[int] | None) -> tuple[int, ...]:
    """``classes`` as sorted ints, or the set of ``labels`` when None."""
    return tuple(sorted(int(c) for c in (np.unique(labels) if classes is None else classes)))


@dataclass
class FaceDataset:
    """Face images with labels, optional subjects and soft labels, and named splits.

    ``splits`` maps a split name (``train``, ``val``, ``test``, ...) to sorted row indices.
    ``label_names`` are the classes a model trained on this data predicts: ``CANONICAL[:7]`` or
    all eight when contempt occurs. ``classes`` are the label indices the data set has (CK+: no
    neutral), its labels' set unless given; splits and subsets keep their data set's, so a test
    split that lacks a class is still scored over every class of its data set.
    """

    images: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    splits: dict[str, np.ndarray] = field(default_factory=dict)
    subjects: np.ndarray | None = None
    soft_labels: np.ndarray | None = None
    name: str = ""
    classes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        self.images = np.ascontiguousarray(self.images, dtype=np.uint8)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.label_names = tuple(self.label_names)
        self.classes = class_set(self.labels, self.classes)
        if self.images.ndim not in (3, 4) or len(self.images) != len(self.labels):
            raise DataError(
                f"{self.name or 'dataset'}: images {self.images.shape} do not match "
                f"{len(self.labels)} labels"
            )
        if self.label_names != CANONICAL[: len(self.label_names)]:
            raise DataError(f"label names must be a prefix of {CANONICAL}, got {self.label_names}")
        if len(self.labels) and self.labels.max() >= len(self.label_names):
            raise DataError(f"{self.name}: a label index exceeds {len(self.label_names)} classes")
        self.splits = {k: np.asarray(v, dtype=np.int64) for k, v in self.splits.items()}

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    @property
    def channels(self) -> int:
        return 1 if self.images.ndim == 3 else 3

    def subset(self, indices, name: str | None = None) -> FaceDataset:
        """Rows ``indices`` as a new data set with no splits."""
        idx = np.asarray(indices, dtype=np.int64)
        return FaceDataset(
            images=self.images[idx],
            labels=self.labels[idx],
            label_names=self.label_names,
            subjects=None if self.subjects is None else self.subjects[idx],
            soft_labels=None if self.soft_labels is None else self.soft_labels[idx],
            name=name or self.name,
            classes=self.classes,
        )

    def split(self, name: str) -> FaceDataset:
        """The rows of split ``name``; raises DataError naming the splits there are."""
        if name not in self.splits:
            have = ", ".join(self.splits) or "none"
            raise DataError(f"{self.name}: no split {name!r} (splits: {have})")
        return self.subset(self.splits[name], name=f"{self.name}/{name}")

    def only_splits(self, names: list[str]) -> FaceDataset:
        """The rows of splits ``names`` alone, keeping those splits (a smaller pack)."""
        for name in names:
            if name not in self.splits:
                self.split(name)  # raises DataError naming the splits there are
        rows = np.unique(np.concatenate([self.splits[n] for n in names]))
        kept = self.subset(rows)
        kept.splits = {n: np.searchsorted(rows, self.splits[n]) for n in names}
        return kept

    def with_rows_of(self, other: FaceDataset) -> FaceDataset:
        """This data set followed by ``other``'s rows (same label names and image size), each
        split holding its rows from both."""
        if other.label_names != self.label_names or other.images.shape[1:] != self.images.shape[1:]:
            raise DataError(f"{other.name}: labels or image size differ from {self.name}'s")
        n = len(self)
        splits = {
            k: np.concatenate([v, other.splits[k] + n]) for k, v in self.splits.items()
            if k in other.splits
        }  # fmt: skip
        soft = None
        if self.soft_labels is not None and other.soft_labels is not None:
            soft = np.concatenate([self.soft_labels, other.soft_labels])
        return FaceDataset(
            images=np.concatenate([self.images, other.images]),
            labels=np.concatenate([self.labels, other.labels]),
            label_names=self.label_names,
            splits=splits,
            subjects=None,
            soft_labels=soft,
            name=self.name,
            classes=self.classes,
        )

    def class_counts(self) -> dict[str, int]:
        counts = Counter(self.labels.tolist())
        return {n: counts.get(i, 0) for i, n in enumerate(self.label_names)}

    def summary(self) -> dict[str, dict[str, int]]:
        """Counts per label for each split (or for ``all`` when there are no splits)."""
        parts = {s: self.split(s) for s in self.splits} or {"all": self}
        return {s: d.class_counts() for s, d in parts.items()}

    def save(self, path: str | os.PathLike) -> Path:
        """Pack into one safetensors file (xz-compressed if ``path`` ends in ``.xz``), written
        atomically."""
        path = Path(path)
        tensors = {"images": self.images, "labels": self.labels}
        tensors.update({f"split.{k}": v for k, v in self.splits.items()})
        meta = {"name": self.name, "label_names": json.dumps(self.label_names)}
        if self.subjects is not None:
            names, codes = np.unique(self.subjects.astype(str), return_inverse=True)
            tensors["subjects"] = codes.astype(np.int64)
            meta["subject_names"] = json.dumps(names.tolist())
        if self.soft_labels is not None:
            tensors["soft_labels"] = np.asarray(self.soft_labels, dtype=np.float32)
        blob = save(tensors, metadata=meta)
        if path.name.endswith(".xz"):
            blob = lzma.compress(blob)
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(blob)
            os.replace(tmp, path)
        except OSError as exc:
            raise DataError(f"{path}: cannot write ({exc.strerror or exc})") from None
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> FaceDataset:
        """Load a file written by :meth:`save`."""
        path = Path(path)
        try:
            if path.name.endswith(".xz"):
                blob = lzma.decompress(path.read_bytes())
                tensors = load(blob)
                header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])
                meta = header.get("__metadata__") or {}
            else:
                with safe_open(str(path), framework="numpy") as f:
                    meta = f.metadata() or {}
                tensors = load_file(str(path))
            label_names = tuple(json.loads(meta["label_names"]))
        except Exception as exc:  # safetensors, lzma and json raise their own error types
            raise DataError(f"{path}: not a packed attnfer data set ({exc})") from None
        subjects = None
        if "subjects" in tensors:
            subjects = np.asarray(json.loads(meta["subject_names"]))[tensors["subjects"]]
        return cls(
            images=tensors["images"],
            labels=tensors["labels"],
            label_names=label_names,
            splits={k[6:]: v for k, v in tensors.items() if k.startswith("split.")},
            subjects=subjects,
            soft_labels=tensors.get("soft_labels"),
            name=meta.get("name", path.stem),
        )
