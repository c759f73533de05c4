"""Splits: stratified fractions, subject-independent folds, Deep-Emotion's JAFFE split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnfer.data.dataset import FaceDataset
from attnfer.data.readers import read_ckplus
from attnfer.data.splits import (
    deep_emotion_jaffe_indices,
    deep_emotion_jaffe_split,
    fold_splits,
    parse_fractions,
    stratified_indices,
    stratified_split,
    subject_folds,
    subject_kfold_split,
    with_splits,
)
from attnfer.errors import ConfigError, DataError

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
# JAFFE's images per expression (angry .. neutral): 213 in all.
JAFFE_COUNTS = [30, 29, 32, 31, 31, 30, 30]


def make_data(labels, subjects=None) -> FaceDataset:
    labels = np.asarray(labels)
    return FaceDataset(
        images=np.zeros((len(labels), 4, 4), dtype=np.uint8),
        labels=labels,
        label_names=("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
        subjects=subjects,
        name="toy",
    )


def assert_partition(splits: dict[str, np.ndarray], n: int) -> None:
    rows = np.concatenate(list(splits.values()))
    assert len(rows) == n and set(rows.tolist()) == set(range(n))


def test_parse_fractions():
    np.testing.assert_allclose(parse_fractions("70/10/20"), [0.7, 0.1, 0.2])
    np.testing.assert_allclose(parse_fractions([80, 10, 10]), [0.8, 0.1, 0.1])
    for bad in ("80/x/10", [1.0], [0.5, -0.1, 0.6], [0, 0, 0]):
        with pytest.raises(ConfigError):
            parse_fractions(bad)


@pytest.mark.parametrize("fractions", [(0.8, 0.1, 0.1), "70/10/20"])
def test_stratified_indices_keep_class_proportions(fractions):
    labels = np.repeat(np.arange(7), [400, 50, 300, 700, 200, 100, 250])
    splits = stratified_indices(labels, fractions, seed=3)
    assert list(splits) == ["train", "val", "test"]
    assert_partition(splits, len(labels))
    frac = parse_fractions(fractions)
    for label, total in enumerate(np.bincount(labels)):
        for part, f in zip(splits.values(), frac, strict=True):
            assert abs(np.sum(labels[part] == label) - f * total) <= 1


def test_stratified_indices_are_seeded():
    labels = np.repeat(np.arange(3), 50)
    a, b = stratified_indices(labels, seed=1), stratified_indices(labels, seed=1)
    c = stratified_indices(labels, seed=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["train"], c["train"])
    two = stratified_indices(labels, (0.9, 0.1))
    assert list(two) == ["train", "test"] and len(two["test"]) == 15


def test_stratified_split_replaces_splits():
    data = with_splits(make_data(np.repeat(np.arange(7), 20)), {"train": np.arange(140)})
    split = stratified_split(data, [70, 10, 20], seed=0)
    assert [len(v) for v in split.splits.values()] == [98, 14, 28]
    assert split.split("test").class_counts()["angry"] == 4


def test_subject_folds_keep_each_subject_in_one_fold():
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 20, size=60)
    subjects = np.repeat([f"S{i:03d}" for i in range(60)], counts)
    folds = subject_folds(subjects, k=10, seed=0)
    assert len(folds) == 10
    assert_partition(dict(enumerate(folds)), len(subjects))
    fold_of = {}
    for k, rows in enumerate(folds):
        for subject in set(subjects[rows].tolist()):
            assert fold_of.setdefault(subject, k) == k
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= counts.max()
    again = subject_folds(subjects, k=10, seed=0)
    assert all(np.array_equal(x, y) for x, y in zip(folds, again, strict=True))
    with pytest.raises(DataError, match="11 subject-independent folds from 10 subjects"):
        subject_folds(subjects[: counts[:10].sum()], k=11)


def test_splits_and_subsets_keep_their_data_sets_classes():
    data = with_splits(make_data([0, 1, 3, 5, 5]), {"train": np.arange(3), "test": np.arange(3, 5)})
    assert data.classes == (0, 1, 3, 5)  # no disgust's index 2, no neutral's 6
    assert data.split("test").classes == data.classes  # its faces are all surprise
    assert data.subset([4]).classes == data.classes
    assert make_data([5, 0], None).classes == (0, 5)


def test_fold_splits_and_subject_kfold_split():
    folds = [np.array([0, 1]), np.array([2]), np.array([3, 4])]
    splits = fold_splits(folds, test_fold=1, val_fold=2)
    assert {k: v.tolist() for k, v in splits.items()} == {
        "train": [0, 1],
        "val": [3, 4],
        "test": [2],
    }
    with pytest.raises(ConfigError):
        fold_splits(folds, test_fold=1, val_fold=1)
    with pytest.raises(ConfigError):
        fold_splits(folds, test_fold=3)
    subjects = np.repeat(["A", "B", "C", "D"], 5)
    data = subject_kfold_split(make_data(np.arange(20) % 7, subjects), k=4, fold=2)
    assert len(data.splits["test"]) == 5 and len(data.splits["train"]) == 15
    assert not set(subjects[data.splits["test"]]) & set(subjects[data.splits["train"]])
    with pytest.raises(DataError, match="no subject ids"):
        subject_kfold_split(make_data(np.zeros(20, dtype=int)))


def test_deep_emotion_jaffe_split():
    labels = np.repeat(np.arange(7), JAFFE_COUNTS)
    splits = deep_emotion_jaffe_indices(labels, seed=0)
    assert [len(v) for v in splits.values()] == [120, 23, 70]
    assert_partition(splits, 213)
    assert np.bincount(labels[splits["test"]]).tolist() == [10] * 7
    data = deep_emotion_jaffe_split(make_data(labels), seed=5)
    assert [len(v) for v in data.splits.values()] == [120, 23, 70]
    with pytest.raises(DataError, match="too few for 10"):
        deep_emotion_jaffe_indices(np.repeat(np.arange(7), 10))


def test_with_splits_rejects_overlap_and_bad_rows():
    data = make_data(np.zeros(10, dtype=int))
    with pytest.raises(DataError, match="overlap"):
        with_splits(data, {"train": np.arange(6), "test": np.arange(5, 10)})
    with pytest.raises(DataError, match=r"outside 0\.\.9"):
        with_splits(data, {"train": np.array([3, 10])})


def test_real_ckplus48_ten_fold_subject_split():
    root = DATASETS / "ckplus48"
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    data = read_ckplus(root)
    folds = subject_folds(data.subjects, k=10, seed=0)
    fold_subjects = [set(data.subjects[f].tolist()) for f in folds]
    for i in range(10):
        for j in range(i + 1, 10):
            assert not fold_subjects[i] & fold_subjects[j], f"folds {i} and {j} share a subject"
    assert sum(len(f) for f in folds) == 981
    assert set().union(*fold_subjects) == set(data.subjects.tolist())
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 15, sizes
