"""Clip data sets (paper 004): clips of face crops with labels, subjects and splits, CK+ sequences
read as clips, frame sampling and clip splits.

A clip is a short run of frames of one face with one label. :class:`ClipDataset` holds clips in
memory; :func:`load_ckplus_sequences` reads CK+ crops as one clip per sequence (video files become
clips in :mod:`attnfer.video.clips`, which detects their faces). :func:`segment_indices` splits a
clip into ``K`` segments and takes one random frame from each (training; K = 3 as in paper 004)
or each segment's middle frame (testing).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .dataset import class_set
from .decode import BadSamples, Decoder
from .labels import CANONICAL, label_names_for
from .readers import ordered_splits
from .readers.ckplus import CKPLUS_NAME
from .readers.folder import folder_samples
from .splits import stratified_indices, subject_fraction_splits


@dataclass
class ClipDataset:
    """Clips of face crops with labels, optional subjects, names and splits.

    ``frames`` holds every clip's frames back to back (N x H x W gray or N x H x W x 3 uint8);
    clip ``i`` is ``frames[offsets[i] : offsets[i] + lengths[i]]``. ``splits`` maps split
    names to clip indices; labels index :data:`attnfer.data.labels.CANONICAL`; ``classes`` are
    the labels the data set has, kept by its splits (as :class:`attnfer.data.dataset.FaceDataset`).
    """

    frames: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    subjects: np.ndarray | None = None
    names: np.ndarray | None = None
    splits: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = ""
    classes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        self.frames = np.ascontiguousarray(self.frames, dtype=np.uint8)
        self.lengths = np.asarray(self.lengths, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.label_names = tuple(self.label_names)
        self.classes = class_set(self.labels, self.classes)
        if len(self.lengths) != len(self.labels) or self.lengths.sum() != len(self.frames):
            raise DataError(
                f"{self.name or 'clips'}: {len(self.labels)} labels, {len(self.lengths)} clips "
                f"of {self.lengths.sum()} frames, but {len(self.frames)} frames"
            )
        if len(self.lengths) and self.lengths.min() < 1:
            raise DataError(f"{self.name or 'clips'}: a clip has no frames")
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.splits = {k: np.asarray(v, dtype=np.int64) for k, v in self.splits.items()}

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def channels(self) -> int:
        return 1 if self.frames.ndim == 3 else 3

    def clip(self, i: int) -> np.ndarray:
        """The frames of clip ``i``."""
        start = self.offsets[i]
        return self.frames[start : start + self.lengths[i]]

    def subset(self, indices, name: str | None = None) -> ClipDataset:
        """Clips ``indices`` as a new data set with no splits."""
        idx = np.asarray(indices, dtype=np.int64)
        frames = [self.clip(i) for i in idx]
        empty = np.zeros((0, *self.frames.shape[1:]), np.uint8)
        return ClipDataset(
            np.concatenate(frames) if frames else empty,
            self.lengths[idx],
            self.labels[idx],
            self.label_names,
            None if self.subjects is None else self.subjects[idx],
            None if self.names is None else self.names[idx],
            name=name or self.name,
            classes=self.classes,
        )

    def split(self, name: str) -> ClipDataset:
        """The clips of split ``name``; DataError naming the splits there are."""
        if name not in self.splits:
            have = ", ".join(self.splits) or "none"
            raise DataError(f"{self.name}: no split {name!r} (splits: {have})")
        return self.subset(self.splits[name], name=f"{self.name}/{name}")


def segment_indices(n: int, k: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """``k`` frame indices of an ``n``-frame clip: one per equal segment, random within it
    (``rng`` given) or its middle frame (evenly spaced). Short clips repeat frames evenly."""
    if n < 1 or k < 1:
        raise ConfigError(f"cannot sample {k} frames from a clip of {n}")
    edges = np.linspace(0, n, k + 1)
    if rng is None:
        return np.minimum(np.floor((edges[:-1] + edges[1:]) / 2), n - 1).astype(np.int64)
    low = np.floor(edges[:-1]).astype(np.int64)
    high = np.maximum(np.floor(edges[1:]).astype(np.int64), low + 1)
    return np.minimum(rng.integers(low, high), n - 1)


def assemble_clips(
    clips: list[np.ndarray],
    labels: list[int],
    subjects: list[str | None],
    names: list[str],
    splits: list[str | None],
    name: str,
) -> ClipDataset:
    """A :class:`ClipDataset` named ``name`` from clips (frame arrays) and their labels, subjects
    (all or none), names and split names (None: in no split); DataError when there are no clips."""
    if not clips:
        raise DataError(f"{name}: no clips found")
    by_split: dict[str, list[int]] = defaultdict(list)
    for i, split in enumerate(splits):
        if split is not None:
            by_split[split].append(i)
    has_subjects = all(s is not None for s in subjects)
    return ClipDataset(
        np.concatenate(clips),
        [len(c) for c in clips],
        labels,
        label_names_for(labels),
        np.asarray(subjects) if has_subjects else None,
        np.asarray(names),
        ordered_splits({k: np.asarray(v) for k, v in by_split.items()}),
        name,
    )


def load_ckplus_sequences(
    root: str | os.PathLike, color: str = "gray", size: int | None = None
) -> ClipDataset:
    """CK+ crops grouped into one clip per sequence (``S005_001_*.png``), frames in order,
    with subject ids (``S005``)."""
    root = Path(root)
    decoder = Decoder(color=color, size=size, bad=BadSamples(None))
    samples = folder_samples(root, decoder, subject_pattern=CKPLUS_NAME.pattern)
    groups: dict[tuple, list] = defaultdict(list)
    for sample in samples:
        match = CKPLUS_NAME.match(sample.path.name)
        assert match is not None  # folder_samples kept only matching names
        key = (sample.split, sample.label, match.group(1), match.group(2))
        groups[key].append((int(match.group(3)), sample.path))
    keys = sorted(groups, key=lambda key: (key[0] or "", *key[1:]))
    paths = [p for key in keys for _, p in sorted(groups[key])]
    images = dict(zip(paths, decoder.decode_files(paths, color), strict=True))
    clips, labels, subjects, names, splits = [], [], [], [], []
    for split, label, subject, sequence in keys:
        frames = [images[p] for _, p in sorted(groups[split, label, subject, sequence])]
        frames = [f for f in frames if f is not None]
        if frames:
            clips.append(np.stack(frames))
            labels.append(label)
            subjects.append(subject)
            names.append(f"{CANONICAL[label]}/{subject}_{sequence}")
            splits.append(split)
    return assemble_clips(clips, labels, subjects, names, splits, root.name)


def clip_splits(
    data: ClipDataset, method: str, fractions: Sequence[float] | None, seed: int
) -> ClipDataset:
    """``data`` with train/val/test splits by ``method``: ``official`` (the split folders),
    ``stratified`` or ``subject`` (seeded, by ``fractions``, default 70/10/20)."""
    fractions = fractions or (0.7, 0.1, 0.2)
    if method == "stratified":
        data.splits = stratified_indices(data.labels, fractions, seed)
    elif method == "subject":
        if data.subjects is None:
            raise ConfigError(f"{data.name}: a subject split needs subject ids (subject_pattern)")
        data.splits = subject_fraction_splits(data, fractions, seed)  # type: ignore[arg-type]
    elif method != "official":
        raise ConfigError(
            f"split {method!r} does not apply to clips: official, stratified, subject"
        )
    return data
