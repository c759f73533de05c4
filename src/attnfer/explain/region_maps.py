"""Per-emotion region maps (paper 001, figure 12): which face regions matter for which emotion.

Occlusion maps of aligned faces (FER2013, CK+, ...) are averaged per true emotion, for the true
class, and drawn as one grid: a column per emotion, the average face above its average map.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.dataset import FaceDataset
from ..errors import DataError
from ..files import write_atomic
from .api import ModelSource, as_pretrained, preprocess_crops, to_image
from .occlusion import fill_value, occlusion
from .render import Panel, save_panels

log = logging.getLogger(__name__)
CHUNK = 16  # faces occluded per call


@dataclass(frozen=True)
class RegionMaps:
    """Averages per emotion (``label_names``, those with faces; ``counts`` faces each):
    ``faces`` the model input as gray ``[K, H, W]`` in [0, 1], ``drop`` and ``flip`` the
    occlusion maps ``[K, H, W]`` for the true class; ``note``: the occlusion settings."""

    label_names: tuple[str, ...]
    counts: tuple[int, ...]
    faces: np.ndarray
    drop: np.ndarray
    flip: np.ndarray
    note: str


def sample_per_class(labels: np.ndarray, per_class: int | None, seed: int = 0) -> np.ndarray:
    """Row indices: up to ``per_class`` random rows of each label (all rows when None), sorted."""
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = [
        rng.permutation(np.flatnonzero(labels == label))[:per_class] for label in np.unique(labels)
    ]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def _targets(data: FaceDataset, label_names: tuple[str, ...]) -> np.ndarray:
    """The model's class index of each row's label; -1 where the model lacks that class."""
    lookup = np.array([label_names.index(n) if n in label_names else -1 for n in data.label_names])
    missing = sorted({data.label_names[i] for i in np.unique(data.labels) if lookup[i] < 0})
    if missing:
        log.warning("skipping faces of classes the model does not know: %s", ", ".join(missing))
    return lookup[data.labels]


def region_maps(
    model: ModelSource,
    data: FaceDataset,
    *,
    per_class: int | None = None,
    window: int = 8,
    stride: int = 2,
    fill: str = "black",
    seed: int = 0,
    batch_size: int = 256,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> RegionMaps:
    """Average occlusion maps per emotion over ``data`` (aligned face crops).

    ``per_class``: at most this many random faces per emotion (``seed``), for speed; the cost is
    one model call per face and window position. ``progress(done, total)`` is called per chunk.
    """
    pre = as_pretrained(model, device)
    targets = _targets(data, pre.label_names)
    rows = sample_per_class(targets, per_class, seed)
    rows = rows[targets[rows] >= 0]
    if len(rows) == 0:
        raise DataError(f"{data.name or 'data set'}: no faces of a class the model knows")
    k, size = len(pre.label_names), (pre.preprocess.size, pre.preprocess.size)
    sums = {name: np.zeros((k, *size)) for name in ("faces", "drop", "flip")}
    counts = np.zeros(k, dtype=np.int64)
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        x = preprocess_crops(pre, data.images[chunk])
        found = occlusion(
            pre.model,
            x,
            torch.from_numpy(targets[chunk]),
            fill=fill_value(pre.preprocess, fill),
            window=window,
            stride=stride,
            batch_size=batch_size,
        )
        faces = to_image(x, pre.preprocess)
        faces = faces.mean(-1) if faces.ndim == 4 else faces
        for name, value in (("faces", faces), ("drop", found.drop), ("flip", found.flip)):
            np.add.at(sums[name], targets[chunk], np.asarray(value, dtype=np.float64))
        np.add.at(counts, targets[chunk], 1)
        if progress:
            progress(min(start + CHUNK, len(rows)), len(rows))
    kept = np.flatnonzero(counts)
    mean = {
        name: (s[kept] / counts[kept, None, None]).astype(np.float32) for name, s in sums.items()
    }
    return RegionMaps(
        label_names=tuple(pre.label_names[i] for i in kept),
        counts=tuple(int(c) for c in counts[kept]),
        note=f"{window}x{window} {fill} window, stride {stride}",
        **mean,
    )


def save_region_grid(maps: RegionMaps, path: str | os.PathLike, title: str = "") -> Path:
    """One PNG: a column per emotion, its average face above its average probability drop."""
    faces = [
        Panel(f"{name} (n={n})", image=face)
        for name, n, face in zip(maps.label_names, maps.counts, maps.faces, strict=True)
    ]
    drops = []
    for face, drop in zip(maps.faces, maps.drop, strict=True):
        m = max(float(np.abs(drop).max()), 1e-6)
        drops.append(Panel("", image=face, heat=drop, cmap="RdBu_r", vmin=-m, vmax=m))
    title = title or f"occlusion: mean drop of the true class's probability ({maps.note})"
    return save_panels(path, faces + drops, title, columns=len(faces), size=1.6)


def save_region_arrays(maps: RegionMaps, path: str | os.PathLike) -> Path:
    """The averages as one ``.npz`` (``faces``, ``drop``, ``flip``, ``counts``, ``label_names``)."""
    arrays = {
        "faces": maps.faces,
        "drop": maps.drop,
        "flip": maps.flip,
        "counts": np.asarray(maps.counts),
        "label_names": np.asarray(maps.label_names),
    }
    return write_atomic(path, lambda fh: np.savez_compressed(fh, **arrays))
