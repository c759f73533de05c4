"""The photo path measured: face crops made into photos, framings measured, photos evaluated.

- :func:`write_photo_set` places each face of a data split into a photo-like image
  (:mod:`attnfer.faces.compose`) and writes a label-folder tree of JPEG files, with
  ``photos.csv`` saying where each face was placed; the same seed gives the same set.
- :func:`measure_model_framing` runs detectors on a model's training faces placed in photos and
  returns the framing per detector that :mod:`attnfer.faces.framing` stores in model files.
- :func:`photo_path_crops` gives each face of a data set as the pipeline would crop it from a
  photo (placed, detected, aligned with the model's framing): training data that teaches a model
  what detection and alignment do to faces.
- :func:`evaluate_photos` runs the full pipeline (decode, detect, align, classify) over labelled
  photos, one face per photo, and reports accuracy with "no face found" counted as wrong, per
  detector.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .data.dataset import FaceDataset, class_set
from .data.decode import Decoder
from .data.labels import label_names_for
from .data.readers import detect_format, load_dataset
from .data.readers.folder import folder_samples
from .errors import DataError
from .faces import create_detector, largest, roll_correction
from .faces.compose import PhotoStyle, compose_photo
from .faces.framing import Placement, best_match, measure_framing
from .recognize import Recognizer
from .train.evaluate import report_over_known_classes

Progress = Callable[[int, int], None]  # (done, total)
MANIFEST = "photos.csv"
JPEG_QUALITY = 92


def _photos(
    images: np.ndarray, seed: int, style: PhotoStyle | None = None
) -> Iterator[tuple[np.ndarray, Placement]]:
    for row, image in enumerate(images):
        yield compose_photo(image, np.random.default_rng([seed, row]), style or PhotoStyle())


def write_photo_set(
    data: FaceDataset,
    out: str | os.PathLike,
    seed: int = 0,
    progress: Progress | None = None,
    style: PhotoStyle | None = None,
) -> Path:
    """Write every face of ``data`` into a photo (drawn from ``style``, by default
    :class:`PhotoStyle`'s ranges) under ``out/<label>/``; returns the manifest.

    Photo ``k`` is drawn from the seed ``[seed, k]``, so a set is the same on every machine and a
    stopped run can simply be run again (files already written are kept).
    """
    out = Path(out)
    stem = re.sub(r"[^\w.-]+", "_", data.name) or "face"
    rows = []
    for row, (photo, placed) in enumerate(_photos(data.images, seed, style)):
        label = data.label_names[data.labels[row]]
        path = out / label / f"{stem}_{row:06d}.jpg"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            bgr = np.ascontiguousarray(photo[..., ::-1])
            if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                raise DataError(f"{path}: cannot write the photo")
        height, width = photo.shape[:2]
        rows.append(
            (path.relative_to(out), row, label, placed.x, placed.y, placed.side, width, height)
        )
        if progress:
            progress(row + 1, len(data))
    manifest = out / MANIFEST
    with manifest.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("file", "row", "label", "x", "y", "side", "width", "height"))
        writer.writerows(rows)
    return manifest


def measure_model_framing(
    images: np.ndarray,
    detectors: Sequence[str],
    faces: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Framing per detector (:func:`attnfer.faces.framing.measure_framing`) on ``faces`` of
    ``images`` (a model's training faces, drawn at random with ``seed``) placed in photos."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(images), min(faces, len(images)), replace=False))
    return {
        name: measure_framing(create_detector(name), _photos(images[chosen], seed), roll_correction)
        for name in detectors
    }


def photo_path_crops(
    data: FaceDataset,
    recognizer: Recognizer,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[FaceDataset, int]:
    """Each face of ``data`` placed in a photo (seed ``[seed, row]``), found by the recognizer's
    detector and aligned as it aligns faces; where the detector misses the face, its own crop is
    kept. Returns the crops as a data set (same labels, splits and soft labels) and the number
    of faces missed."""
    crops, missed = np.empty_like(data.images), 0
    for row, (photo, placed) in enumerate(_photos(data.images, seed)):
        face = best_match(recognizer.detector.detect(photo), placed)
        if face is None:
            crops[row] = data.images[row]
            missed += 1
        else:
            crops[row] = recognizer.align(photo, face).reshape(crops.shape[1:])
        if progress:
            progress(row + 1, len(data))
    out = dataclasses.replace(data, images=crops, name=f"{data.name} photo-path crops")
    return out, missed


@dataclass(frozen=True)
class PhotoSamples:
    """Labelled photos: sources (files, or arrays for data sets that hold no files), canonical
    labels, and the data set's classes and name."""

    sources: list[Path] | np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    classes: tuple[int, ...]
    name: str


def photo_samples(src: str | os.PathLike, split: str = "all") -> PhotoSamples:
    """The photos of a data split (``all``: every photo). A label-folder tree gives its files,
    read at full resolution; other formats give their decoded images."""
    src = Path(src)
    if detect_format(src) == "folder":
        decoder = Decoder()
        samples = [s for s in folder_samples(src, decoder) if split in ("all", s.split)]
        if decoder.bad.entries:
            raise DataError(f"{src}: {decoder.bad.summary()}")
        if not samples:
            raise DataError(f"{src}: no photos in split {split!r}")
        labels = np.asarray([s.label for s in samples], dtype=np.int64)
        names = label_names_for(labels.tolist())
        paths = [s.path for s in samples]
        return PhotoSamples(paths, labels, names, class_set(labels, None), src.name)
    data = load_dataset(src)
    part = data if split == "all" else data.split(split)
    return PhotoSamples(part.images, part.labels, part.label_names, part.classes or (), part.name)


def evaluate_photos(
    recognizer: Recognizer,
    photos: PhotoSamples,
    chunk: int = 32,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Accuracy of the full pipeline over ``photos``, the largest detected face of each, a photo
    with no face found counting as wrong. Photos whose label the model does not know are left
    out, as :func:`attnfer.train.evaluate.evaluate_model` does; unreadable ones count as wrong.

    Returns the evaluation report of the photos where a face was found (``report``, whose rows
    index ``photos``) with ``photos``, ``found``, ``several`` (photos with more than one face),
    ``unreadable``, ``accuracy`` over all photos and ``found_rows``, the photos whose face was
    found.
    """
    known = np.flatnonzero(photos.labels < len(recognizer.label_names))
    probs, rows, several, unreadable = [], [], 0, 0
    for start in range(0, len(known), chunk):
        batch = known[start : start + chunk]
        results = recognizer.predict_batch([photos.sources[i] for i in batch])
        for i, faces in zip(batch, results, strict=True):
            if isinstance(faces, DataError):
                unreadable += 1
                continue
            several += len(faces) > 1
            face = largest(faces)
            if face is not None:
                probs.append([face.probabilities[n] for n in recognizer.label_names])
                rows.append(i)
        if progress:
            progress(min(start + chunk, len(known)), len(known))
    rows_array = np.asarray(rows, dtype=np.int64)
    report = report_over_known_classes(
        np.asarray(probs, np.float32).reshape(len(rows), len(recognizer.label_names)),
        photos.labels[rows_array],
        photos.classes,
        recognizer.label_names,
        rows_array,
    ) if rows else {"accuracy": 0.0}  # fmt: skip
    correct = report["accuracy"] * len(rows)
    return {
        "data": photos.name,
        "detector": recognizer.detector.name,
        "framing": recognizer.framing.to_dict(),
        "photos": len(known),
        "found": len(rows),
        "several": several,
        "unreadable": unreadable,
        "accuracy": correct / len(known) if len(known) else 0.0,
        "report": report,
        "found_rows": [int(i) for i in rows],
    }
