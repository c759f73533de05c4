"""Clip data sets from videos (paper 004): face-crop caches and frame reduction.

A video clip data set is a label-folder tree of videos, ``<root>/<label>/*.mp4`` (optionally
under ``train`` / ``val`` / ``test`` folders). Every clip becomes its face crops: the largest face
of each frame, detected (every ``every`` frames, tracked in between), enlarged by 25 %,
eye-aligned and resized once. The crops of a video are cached in
``<cache>/<size>-<gray|rgb>/<label>/<clip>.npz`` (uint8, compressed; ``<cache>`` defaults to
``<root>/.attnfer-faces``) and reused while the video's size and modification time are unchanged.
:func:`load_clips` also reads CK+ crops, one clip per sequence
(:func:`attnfer.data.clips.load_ckplus_sequences`).

:func:`distinct_frames` keeps the ``k`` most distinct frames by seeded k-means over frame pixels
or embeddings.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..data.clips import ClipDataset, assemble_clips, load_ckplus_sequences
from ..data.decode import BadSamples, Decoder
from ..data.readers.ckplus import looks_like_crops
from ..data.readers.folder import folder_samples
from ..errors import DataError
from ..faces import Detector, align_face, create_detector, largest
from .io import VIDEO_SUFFIXES, read_frames
from .stream import FaceLocator

if TYPE_CHECKING:
    from ..train.clips import ClipRecipe

CACHE_NAME = ".attnfer-faces"


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
    locator = None
    crops = []
    for frame in read_frames(path):
        # at the frame's own size, as the crops of the clip data sets were cut
        locator = locator or FaceLocator(detector, every, detect_side=max(frame.image.shape[:2]))
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
    return assemble_clips(clips, labels, subjects, names, splits, root.name)


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


def recipe_clips(cr: ClipRecipe) -> ClipDataset:
    """The clips of a clip recipe (``data.source``, read by :func:`load_clips` at the model's
    input size and colour with the recipe's clip settings), split as the recipe says."""
    from ..train.clips import with_clip_splits  # Lightning: the train extra, not video's

    pre, clips = cr.recipe.preprocess, cr.clips
    data = load_clips(
        cr.recipe.data.source, size=pre.size, channels=pre.channels, detector=clips.detector,
        every=clips.every, cache_dir=clips.cache_dir, subject_pattern=clips.subject_pattern,
        max_bad_clips=cr.recipe.data.max_bad_samples,
    )  # fmt: skip
    return with_clip_splits(data, cr)
