"""Per-frame expression recognition over a video file, a stream URL or a camera.

``iter_video(recognizer, source, every=N, smooth=W)`` yields one :class:`FrameResult` per
frame, lazily: faces are detected every ``N`` frames (on the frame shrunk to ``detect_side``
pixels; by default :func:`detection_side`: half the frame's longer side, from 480 to 960) and
tracked in between (stable track ids, see
:mod:`attnfer.video.track`), aligned on the full frame as for photos, classified in batches of
frames, and their probabilities averaged per track over the last ``W`` frames. Memory stays
flat: at most one batch of frames is held.

:class:`FrameCSV` writes one row per face and frame (time, frame, track id, box, label, the
class probabilities); :class:`TrackSummary` gives each track's dominant emotion and its share of
time per emotion.
"""

from __future__ import annotations

import csv
import os
from collections import Counter, defaultdict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..faces import Detector, Face
from ..faces.base import MAX_SIDE
from ..recognize import FaceResult, Recognizer
from .io import MAX_BAD_FRAMES, Frame, Source, VideoReader
from .track import IoUTracker

BATCH_FRAMES = 16  # frames whose faces are classified in one model call
DETECT_SIDE = 480  # the least longer side frames are shrunk to for detection by default


@dataclass(frozen=True)
class TrackedFace(FaceResult):
    """A :class:`~attnfer.recognize.FaceResult` in one frame of a video, with its track id. Its
    probabilities (and label) are smoothed over the track; ``detected`` is False, and ``score``
    None, on frames where the tracker carried the box from an earlier detection."""

    track_id: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the track id (``track``) and the face's."""
        return {"track": self.track_id, **super().to_dict()}


@dataclass(frozen=True)
class FrameResult:
    """A frame's index, time in seconds, RGB pixels and faces."""

    index: int
    time: float
    image: np.ndarray
    faces: tuple[TrackedFace, ...]


def detection_side(width: int, height: int) -> int:
    """The longer side a ``width`` x ``height`` frame is shrunk to for detection by default: half
    its own, at least ``DETECT_SIDE`` and at most the photos' fine pass (``MAX_SIDE``): a 640 x 480
    webcam at 480 px, a 1920 x 1080 video at 960 (docs/video.md, "Small faces in HD video")."""
    return min(MAX_SIDE, max(DETECT_SIDE, max(width, height) // 2))


class FaceLocator:
    """Faces with track ids: the detector every ``every`` frames, the tracker in between.

    Detection runs on the frame shrunk to ``detect_side`` pixels on its longer side (None:
    :func:`detection_side`); boxes and landmarks are scaled back to the frame.
    """

    def __init__(
        self,
        detector: Detector,
        every: int = 5,
        detect_side: int | None = None,
        tracker: IoUTracker | None = None,
    ) -> None:
        self.detector = detector
        self.every = max(1, int(every))
        self.detect_side = detect_side
        self.tracker = tracker or IoUTracker()
        self._count = 0

    def detect(self, image: np.ndarray) -> list[Face]:
        """The detector's faces in ``image``, found in one pass at ``detect_side`` pixels at
        most (the same size every frame, so that boxes do not jump between passes)."""
        height, width = image.shape[:2]
        return self.detector.detect_at(image, self.detect_side or detection_side(width, height))

    def locate(self, frame: Frame) -> tuple[list[tuple[int, Face]], bool]:
        """(track id, face) pairs in ``frame`` (frames must come in order), and whether the
        detector ran on it."""
        gray = cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)
        detect = self._count % self.every == 0
        self._count += 1
        if detect:
            return self.tracker.update(self.detect(frame.image), frame.index, gray), True
        return self.tracker.follow(frame.index, gray), False


class Smoother:
    """Moving average of each track's probabilities over its last ``window`` frames."""

    def __init__(self, window: int = 5) -> None:
        self.window = max(1, int(window))
        self._history: dict[int, deque[np.ndarray]] = {}

    def __call__(self, track_id: int, probs: np.ndarray) -> np.ndarray:
        history = self._history.setdefault(track_id, deque(maxlen=self.window))
        history.append(probs)
        return np.mean(history, axis=0)

    def keep(self, track_ids: set[int]) -> None:
        """Forget the tracks not in ``track_ids``."""
        for gone in set(self._history) - track_ids:
            del self._history[gone]


def _tracked(
    track_id: int, face: Face, probs: np.ndarray, labels: Sequence[str], detected: bool
) -> TrackedFace:
    box = tuple(round(v) for v in face.box)
    marks = face.landmarks and tuple((round(x), round(y)) for x, y in face.landmarks)
    score = round(face.score, 4) if detected and face.score is not None else None
    named = {name: float(p) for name, p in zip(labels, probs, strict=True)}
    label = labels[int(np.argmax(probs))]
    return TrackedFace(box, score, marks, named, label, detected, track_id)  # type: ignore[arg-type]


class VideoRecognition:
    """Per-frame recognition of one video (see the module notes); iterate for the results.

    The source is opened at once, so a bad file raises DataError here; ``info`` describes it
    and ``skipped`` counts its undecodable frames.
    """

    def __init__(
        self,
        recognizer: Recognizer,
        source: Source,
        every: int = 5,
        smooth: int = 5,
        batch_frames: int = BATCH_FRAMES,
        max_bad_frames: int = MAX_BAD_FRAMES,
        detect_side: int | None = None,
    ) -> None:
        self.recognizer = recognizer
        self.reader = VideoReader(source, max_bad_frames)
        self.info = self.reader.info
        self.locator = FaceLocator(recognizer.detector, every, detect_side)
        self.smoother = Smoother(smooth)
        self.batch_frames = max(1, int(batch_frames))

    @property
    def skipped(self) -> int:
        return self.reader.skipped

    def __enter__(self) -> VideoRecognition:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.reader.close()

    def __iter__(self) -> Iterator[FrameResult]:
        batch: list[tuple[Frame, list[tuple[int, Face]], bool]] = []
        for frame in self.reader:
            batch.append((frame, *self.locator.locate(frame)))
            if len(batch) == self.batch_frames:
                yield from self._classify(batch)
                batch = []
        yield from self._classify(batch)

    def _classify(
        self, batch: list[tuple[Frame, list[tuple[int, Face]], bool]]
    ) -> Iterator[FrameResult]:
        crops = [
            self.recognizer.align(frame.image, face)
            for frame, faces, _ in batch
            for _, face in faces
        ]
        probs = iter(self.recognizer.probabilities(np.stack(crops)) if crops else [])
        labels = self.recognizer.label_names
        for frame, faces, detected in batch:
            results = []
            for track_id, face in faces:
                smoothed = self.smoother(track_id, next(probs))
                results.append(_tracked(track_id, face, smoothed, labels, detected))
            self.smoother.keep({t.id for t in self.locator.tracker.tracks})
            yield FrameResult(frame.index, frame.time, frame.image, tuple(results))


def iter_video(
    recognizer: Recognizer,
    source: Source,
    every: int = 5,
    smooth: int = 5,
    batch_frames: int = BATCH_FRAMES,
    max_bad_frames: int = MAX_BAD_FRAMES,
    detect_side: int | None = None,
) -> Iterator[FrameResult]:
    """Per-frame results for a video file, stream URL or camera index, lazily.

    The generator closes the video when it is exhausted or closed.
    """
    with VideoRecognition(
        recognizer, source, every, smooth, batch_frames, max_bad_frames, detect_side
    ) as run:
        yield from run


def csv_header(labels: Sequence[str]) -> list[str]:
    """The per-frame CSV's columns."""
    return ["time", "frame", "track", "x1", "y1", "x2", "y2", "label", *labels]


class FrameCSV:
    """Writes one CSV row per face and frame (columns: :func:`csv_header`)."""

    def __init__(self, path: str | os.PathLike, labels: Sequence[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.labels = tuple(labels)
        self._file = self.path.open("w", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(csv_header(self.labels))

    def write(self, result: FrameResult) -> None:
        for face in result.faces:
            probs = [f"{face.probabilities[name]:.5f}" for name in self.labels]
            self._writer.writerow(
                [f"{result.time:.3f}", result.index, face.track_id, *face.box, face.label, *probs]
            )

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FrameCSV:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class TrackReport:
    """One track over the video: frames seen, first and last time, dominant emotion and the
    share of its frames per emotion (summing to 1)."""

    track_id: int
    frames: int
    first: float
    last: float
    dominant: str
    shares: dict[str, float]


class TrackSummary:
    """Counts each track's per-frame labels; :meth:`report` summarises them."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)
        self._counts: dict[int, Counter[str]] = defaultdict(Counter)
        self._times: dict[int, list[float]] = {}

    def add(self, result: FrameResult) -> None:
        for face in result.faces:
            self._counts[face.track_id][face.label] += 1
            span = self._times.setdefault(face.track_id, [result.time, result.time])
            span[1] = result.time

    def report(self) -> list[TrackReport]:
        out = []
        for track_id in sorted(self._counts):
            counts = self._counts[track_id]
            total = sum(counts.values())
            shares = {name: counts[name] / total for name in self.labels}
            first, last = self._times[track_id]
            dominant = max(self.labels, key=lambda name: counts[name])
            out.append(TrackReport(track_id, total, first, last, dominant, shares))
        return out
