"""Train/val/test splits: stratified fractions, subject-independent k-fold, Deep-Emotion's JAFFE.

Index functions (``*_indices``, :func:`subject_folds`) work on label or subject arrays and return
row indices; the ``*_split`` functions attach them to a FaceDataset with :func:`with_splits`. All
are seeded: the same seed gives the same split.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .dataset import FaceDataset

_DEFAULT_NAMES = {2: ("train", "test"), 3: ("train", "val", "test")}


def parse_fractions(fractions: str | Sequence[float]) -> np.ndarray:
    """Fractions (``0.8,0.1,0.1``, percentages ``80/10/10`` or ``"70/10/20"``) summing to 1."""
    if isinstance(fractions, str):
        try:
            fractions = [float(x) for x in fractions.replace(",", "/").split("/")]
        except ValueError:
            raise ConfigError(f"fractions {fractions!r} are not numbers like 80/10/10") from None
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.ndim != 1 or len(frac) not in _DEFAULT_NAMES or (frac < 0).any() or frac.sum() <= 0:
        raise ConfigError(f"fractions must be 2 or 3 non-negative numbers, got {list(frac)}")
    return frac / frac.sum()


def stratified_indices(
    labels: Sequence[int] | np.ndarray,
    fractions: str | Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Split rows at random in ``fractions`` per class (3 parts: train/val/test; 2: train/test).

    Each class is shuffled and cut at the rounded cumulative fractions, so every part keeps the
    class proportions.
    """
    labels = np.asarray(labels)
    frac = parse_fractions(fractions)
    names = tuple(names or _DEFAULT_NAMES[len(frac)])
    if len(names) != len(frac):
        raise ConfigError(f"{len(frac)} fractions but {len(names)} split names {names}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in frac]
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        cuts = np.rint(np.cumsum(frac)[:-1] * len(rows)).astype(int)
        for part, chunk in zip(parts, np.split(rows, cuts), strict=True):
            part.append(chunk)
    return {name: np.sort(np.concatenate(part)) for name, part in zip(names, parts, strict=True)}


def subject_folds(
    subjects: Sequence[str] | np.ndarray, k: int = 10, seed: int = 0
) -> list[np.ndarray]:
    """``k`` folds of row indices with every subject's rows in exactly one fold.

    Subjects are dealt largest first (ties in seeded random order) to the fold with the fewest
    rows so far, which keeps fold sizes balanced.
    """
    names, inverse, counts = np.unique(np.asarray(subjects, dtype=str), return_inverse=True,
                                       return_counts=True)  # fmt: skip
    if k < 2 or len(names) < k:
        raise DataError(f"cannot make {k} subject-independent folds from {len(names)} subjects")
    order = np.random.default_rng(seed).permutation(len(names))
    order = order[np.argsort(-counts[order], kind="stable")]
    fold_of, sizes = np.empty(len(names), dtype=np.int64), np.zeros(k, dtype=np.int64)
    for subject in order:
        fold = int(np.argmin(sizes))
        fold_of[subject] = fold
        sizes[fold] += counts[subject]
    row_fold = fold_of[inverse.reshape(-1)]
    return [np.flatnonzero(row_fold == fold) for fold in range(k)]


def fold_splits(
    folds: Sequence[np.ndarray], test_fold: int, val_fold: int | None = None
) -> dict[str, np.ndarray]:
    """``train`` (the other folds), ``test`` (fold ``test_fold``) and optionally ``val``."""
    k = len(folds)
    held = {test_fold} | ({val_fold} if val_fold is not None else set())
    if not all(0 <= f < k for f in held) or val_fold == test_fold:
        raise ConfigError(f"folds must be distinct numbers 0..{k - 1}, got {sorted(held)}")
    splits = {"train": np.sort(np.concatenate([f for i, f in enumerate(folds) if i not in held]))}
    if val_fold is not None:
        splits["val"] = np.sort(folds[val_fold])
    splits["test"] = np.sort(folds[test_fold])
    return splits


def deep_emotion_jaffe_indices(
    labels: Sequence[int] | np.ndarray, seed: int = 0, test_per_class: int = 10, n_val: int = 23
) -> dict[str, np.ndarray]:
    """Deep-Emotion's JAFFE split: ``test_per_class`` per emotion in test, ``n_val`` random rows
    of the rest in val, the remainder in train (120 / 23 / 70 for JAFFE's 213 images)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(rows) <= test_per_class:
            raise DataError(f"class {label} has {len(rows)} images, too few for {test_per_class}")
        test.append(rng.choice(rows, test_per_class, replace=False))
    test = np.concatenate(test)
    rest = rng.permutation(np.setdiff1d(np.arange(len(labels)), test))
    if len(rest) <= n_val:
        raise DataError(f"{len(rest)} images left after the test set, too few for {n_val} in val")
    return {"train": np.sort(rest[n_val:]), "val": np.sort(rest[:n_val]), "test": np.sort(test)}


def with_splits(data: FaceDataset, splits: dict[str, np.ndarray]) -> FaceDataset:
    """``data`` with ``splits`` in place of its own; DataError on overlapping or bad indices."""
    rows = np.concatenate([np.asarray(v, dtype=np.int64) for v in splits.values()] or [[]])
    if len(rows) and (rows.min() < 0 or rows.max() >= len(data)):
        raise DataError(f"{data.name}: split indices outside 0..{len(data) - 1}")
    if len(np.unique(rows)) != len(rows):
        raise DataError(f"{data.name}: splits {', '.join(splits)} overlap")
    return dataclasses.replace(data, splits=dict(splits))


def stratified_split(
    data: FaceDataset,
    fractions: str | Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> FaceDataset:
    """``data`` with seeded stratified splits by ``fractions`` (replacing its own splits)."""
    return with_splits(data, stratified_indices(data.labels, fractions, seed, names))


def subject_kfold_split(
    data: FaceDataset, k: int = 10, fold: int = 0, seed: int = 0, val_fold: int | None = None
) -> FaceDataset:
    """``data`` with fold ``fold`` of a subject-independent ``k``-fold split as ``test``."""
    if data.subjects is None:
        raise DataError(f"{data.name}: no subject ids, so no subject-independent folds")
    return with_splits(data, fold_splits(subject_folds(data.subjects, k, seed), fold, val_fold))


def deep_emotion_jaffe_split(data: FaceDataset, seed: int = 0) -> FaceDataset:
    """``data`` (JAFFE) with Deep-Emotion's 120 / 23 / 70 train / val / test split."""
    return with_splits(data, deep_emotion_jaffe_indices(data.labels, seed))


def subject_fraction_splits(
    data: FaceDataset, fractions: Sequence[float], seed: int
) -> dict[str, np.ndarray]:
    """Train/val/test by fractions with no subject on two sides: whole folds of a 10-fold split."""
    folds = subject_folds(data.subjects, 10, seed) if data.subjects is not None else None
    if folds is None:
        raise ConfigError(f"{data.name}: a subject split needs subject ids")
    counts = np.round(np.asarray(fractions, dtype=float) / sum(fractions) * 10).astype(int)
    counts[0] = 10 - counts[1:].sum()
    names = ("train", "val", "test")[: len(counts)]
    bounds = np.cumsum(counts)
    return {
        name: np.sort(np.concatenate(folds[bounds[i] - counts[i] : bounds[i]]))
        for i, name in enumerate(names)
        if counts[i] > 0
    }
