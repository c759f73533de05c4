"""Clip data sets for clip-level classification (paper 004): loading, face-crop caches, sampling.

A clip data set is a label-folder tree of videos, ``<root>/<label>/*.mp4`` (optionally under
``train`` / ``val`` / ``test`` folders), or CK+ frame crops (``<root>/<label>/S005_001_*.png``,
each sequence one clip). Every clip becomes its face crops: the largest face of each frame,
detected (every ``every`` frames, tracked in between), enlarged by 25 %, eye-aligned and resized
once. The crops of a video are cached in ``<cache>/<size>-<gray|rgb>/<label>/<clip>.npz`` (uint8,
compressed; ``<cache>`` defaults to ``<root>/.attnfer-faces``) and reused while the video's size
and modification time are unchanged.

Frame sampling: :func:`segment_indices` splits a clip into ``K`` segments and takes one random
frame from each (training; K = 3 as in paper 004) or each segment's middle frame (testing).
:func:`distinct_frames` keeps the ``k`` most distinct frames by seeded k-means over frame pixels
or embeddings.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..data.dataset import class_set
from ..data.decode import BadSamples, Decoder
from ..data.labels import CANONICAL, label_names_for
from ..data.readers._common import ordered_splits
from ..data.readers.ckplus import CKPLUS_NAME, looks_like_crops
from ..data.readers.folder import folder_samples
from ..errors import ConfigError, DataError
from ..faces import Detector, align_face, create_detector, largest
from .io import VIDEO_SUFFIXES, read_frames
from .stream import FaceLocator

CACHE_NAME = ".attnfer-faces"


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


def kmeans(
    x: np.ndarray, k: int, seed: int = 0, iterations: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded k-means (k-means++ start, Lloyd steps): centroids (k x d) and assignments (n)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    rng = np.random.default_rng(seed)
    centroids = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        dist = np.min(((x[:, None] - np.array(centroids)[None]) ** 2).sum(-1), axis=1)
        total = dist.sum()
        pick = rng.choice(len(x), p=dist / total) if total > 0 else rng.integers(len(x))
        centroids.append(x[pick])
    c = np.array(centroids)
    assign = np.zeros(len(x), dtype=np.int64)
    for _ in range(iterations):
        dist = ((x[:, None] - c[None]) ** 2).sum(-1)
        new = dist.argmin(1)
        for j in range(k):
            members = x[new == j]
            c[j] = members.mean(0) if len(members) else x[dist[:, j].argmax()]
        if np.array_equal(new, assign):
            break
        assign = new
    return c, assign


def distinct_frames(features: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``k`` distinct frames: per k-means cluster, the frame nearest its
    centroid. ``features`` is n x d (pixels or embeddings); all frames when n <= k."""
    n = len(features)
    if n <= k:
        return np.arange(n)
    x = np.asarray(features, dtype=np.float64).reshape(n, -1)
    centroids, assign = kmeans(x, k, seed)
    picks = []
    for j in range(k):
        members = np.flatnonzero(assign == j)
        if len(members):
            dist = ((x[members] - centroids[j]) ** 2).sum(1)
            picks.append(int(members[dist.argmin()]))
    return np.array(sorted(set(picks)), dtype=np.int64)


def pixel_features(frames: np.ndarray, side: int = 16) -> np.ndarray:
    """Frames shrunk to ``side`` x ``side`` and flattened, as floats in [0, 1]."""
    small = [cv2.resize(f, (side, side), interpolation=cv2.INTER_AREA) for f in frames]
    return np.stack(small).reshape(len(frames), -1).astype(np.float32) / 255.0


def reduce_frames(
    frames: np.ndarray,
    k: int,
    embed: Callable[[np.ndarray], np.ndarray] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Indices of the ``k`` most distinct frames of a clip, by k-means over ``embed(frames)``
    (e.g. a model's frame embeddings) or, without ``embed``, over shrunk pixels."""
    features = embed(frames) if embed is not None else pixel_features(frames)
    return distinct_frames(features, k, seed)


def video_faces(
    path: str | os.PathLike, size: int, channels: int, detector: Detector, every: int = 1
) -> np.ndarray:
    """The aligned crops of the largest face in each frame of a video (frames with none are
    left out); DataError naming the video when it has no face at all."""
    locator = FaceLocator(detector, every, detect_side=None)
    crops = []
    for frame in read_frames(path):
        faces, _ = locator.locate(frame)
        if faces:
            face = largest(f for _, f in faces)
            crops.append(align_face(frame.image, face, size, channels))
    if not crops:
        raise DataError(f"{path}: no face found in any frame")
    return np.stack(crops)


def cached_faces(
    path: Path,
    cache_file: Path,
    size: int,
    channels: int,
    detector: Detector | Callable[[], Detector],
    every: int = 1,
) -> np.ndarray:
    """:func:`video_faces` of ``path``, read from ``cache_file`` when it is up to date."""
    stat = path.stat()
    stamp = np.array([stat.st_size, stat.st_mtime_ns], dtype=np.int64)
    if cache_file.is_file():
        try:
            with np.load(cache_file) as cached:
                if np.array_equal(cached["stamp"], stamp):
                    return cached["frames"]
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache: rebuilt below
    found = detector if isinstance(detector, Detector) else detector()
    crops = video_faces(path, size, channels, found, every)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(cache_file.name + ".tmp.npz")
    np.savez_compressed(tmp, frames=crops, stamp=stamp)
    os.replace(tmp, cache_file)
    return crops


def _assemble(
    clips: list[np.ndarray],
    labels: list[int],
    subjects: list[str | None],
    names: list[str],
    splits: list[str | None],
    name: str,
) -> ClipDataset:
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
    return _assemble(clips, labels, subjects, names, splits, root.name)


def load_video_clips(
    root: str | os.PathLike,
    size: int = 112,
    channels: int = 3,
    detector: str | Detector = "default",
    every: int = 1,
    cache_dir: str | os.PathLike | None = None,
    subject_pattern: str | None = None,
    max_bad_clips: int | None = 100,
) -> ClipDataset:
    """A ``<root>/<label>/*.mp4`` tree as face-crop clips (see the module notes).

    ``subject_pattern`` (a regular expression whose group 1 is the subject id, matched against
    file names) gives subject ids for subject-independent splits. Unreadable clips and clips
    with no face are skipped and counted; past ``max_bad_clips`` a DataError lists them.
    """
    root = Path(root)
    cache = Path(cache_dir) if cache_dir else root / CACHE_NAME
    cache = cache / f"{size}-{'gray' if channels == 1 else 'rgb'}"
    bad = BadSamples(max_bad_clips)
    samples = [
        s
        for s in folder_samples(root, Decoder(bad=bad), subject_pattern)
        if s.path.suffix.lower() in VIDEO_SUFFIXES
    ]
    made: list[Detector] = []

    def lazy_detector() -> Detector:
        if not made:
            made.append(detector if isinstance(detector, Detector) else create_detector(detector))
        return made[0]

    clips, labels, subjects, names, splits = [], [], [], [], []
    for sample in samples:
        rel = sample.path.relative_to(root)
        try:
            crops = cached_faces(
                sample.path, cache / rel.with_suffix(".npz"), size, channels, lazy_detector, every
            )
        except DataError as exc:
            bad.add(sample.path, str(exc).removeprefix(f"{sample.path}: "))
            continue
        clips.append(crops)
        labels.append(sample.label)
        subjects.append(sample.subject)
        names.append(str(rel.with_suffix("")))
        splits.append(sample.split)
    return _assemble(clips, labels, subjects, names, splits, root.name)


def load_clips(
    root: str | os.PathLike, size: int | None = None, channels: int = 1, **video_options
) -> ClipDataset:
    """CK+ sequences when ``root`` holds CK+ crops, else a video clip tree (``size`` default
    112; ``video_options`` go to :func:`load_video_clips`)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such clip folder")
    if looks_like_crops(root):
        return load_ckplus_sequences(root, "gray" if channels == 1 else "rgb", size)
    return load_video_clips(root, size or 112, channels, **video_options)
