"""A simple IoU tracker: stable face ids across frames, detection every N frames.

On detection frames :meth:`IoUTracker.update` matches the detected faces to the tracks by the
overlap of each face's box with where the track should be now (its last box moved at its
velocity; greedy, highest IoU first, at least ``min_iou``); a track hidden at the last
detection may also take a face left over whose centre is close to where it should be.
A face the detector is unsure of (score below ``sure_score``; often a face half hidden in a
crossing, boxed small) moves its track but sets neither the track's velocity nor its size, and
starts no track. Unmatched sure faces start new tracks (ids 1, 2, ...). A track no face matches
is hidden but kept, moving at its velocity, for ``max_lost`` frames, so a face hidden behind
another for a moment (people crossing) or missed by the detector keeps its id when it shows
again; a track unmatched for longer ends. In between, :meth:`IoUTracker.follow` moves each
visible track by its velocity and refines the position by template matching in a small search
window (normalised cross-correlation on a downscaled gray frame), so a face is followed without
running the detector.

Why our own and not a tracking library: it follows faces between detections by their pixels,
where the SORT family (``trackers``, ``norfair``) predicts boxes from motion alone, and it adds
no dependency; measured against them on the crossing-faces clip of ``tests/test_tracking.py``
(``benchmarks/tracking.py``, ``docs/video.md``), none keeps identities better.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..faces import Face
from ..faces.base import iou_matrix

TEMPLATE_SIDE = 32  # template width in pixels after downscaling
MIN_MATCH = 0.5  # correlation below which the velocity prediction is kept
REMATCH_SHIFT = 0.75  # a hidden track takes a face this many box widths from its prediction


def greedy_match(overlap: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """(row, column) pairs, highest overlap first, each row and column used once."""
    pairs = []
    overlap = overlap.copy()
    while overlap.size and overlap.max() >= min_iou:
        row, col = np.unravel_index(int(np.argmax(overlap)), overlap.shape)
        pairs.append((int(row), int(col)))
        overlap[row, :] = -1.0
        overlap[:, col] = -1.0
    return pairs


def moved(face: Face, box: np.ndarray) -> Face:
    """``face`` with box ``box``; the landmarks follow the box's shift and scale."""
    old = np.asarray(face.box, float)
    marks = None
    if face.landmarks:
        scale = (box[2] - box[0]) / max(old[2] - old[0], 1e-6)
        marks = tuple(
            (float(box[0] + (x - old[0]) * scale), float(box[1] + (y - old[1]) * scale))
            for x, y in face.landmarks
        )
    return Face(tuple(float(v) for v in box), face.score, marks)  # type: ignore[arg-type]


@dataclass
class Track:
    """One followed face: id, current face and the frame it is at, the last detection (box and
    frame), the velocity of the box centre in pixels per frame, detections missed since, and
    the template."""

    id: int
    face: Face
    detected: np.ndarray
    frame: int
    at: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    missed: int = 0
    template: np.ndarray | None = None
    scale: float = 1.0
    size: float = 0.0  # the width of the last box the detector was sure of

    def predicted(self, frame: int) -> np.ndarray:
        """The current box moved by the velocity to ``frame``."""
        shift = self.velocity * (frame - self.at)
        return np.asarray(self.face.box, float) + np.concatenate([shift, shift])


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:]) / 2


def _centres(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, :2] + boxes[:, 2:]) / 2


class IoUTracker:
    """Stable ids for faces across frames (see the module notes)."""

    def __init__(
        self,
        min_iou: float = 0.3,
        max_lost: int = 25,
        refine: bool = True,
        sure_score: float = 0.9,
    ) -> None:
        self.min_iou = min_iou
        self.sure_score = sure_score
        self.max_lost = max_lost
        self.refine = refine
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(
        self, faces: list[Face], frame: int, gray: np.ndarray | None = None
    ) -> list[tuple[int, Face]]:
        """Match a detection frame's faces to the tracks; the visible (id, face) pairs."""
        predicted = np.array([t.predicted(frame) for t in self.tracks]).reshape(-1, 4)
        boxes = np.array([f.box for f in faces], float).reshape(-1, 4)
        pairs = greedy_match(iou_matrix(predicted, boxes), self.min_iou)
        pairs += self._rematch_hidden(predicted, boxes, pairs)
        matched_tracks = {row for row, _ in pairs}
        matched_faces = {col for _, col in pairs}
        sure = [f.score is None or f.score >= self.sure_score for f in faces]
        for row, col in pairs:
            track = self.tracks[row]
            step = (_centre(boxes[col]) - _centre(track.detected)) / max(frame - track.frame, 1)
            if sure[col]:
                track.velocity = 0.5 * track.velocity + 0.5 * step
                track.size = boxes[col, 2] - boxes[col, 0]
            track.face, track.detected, track.missed = faces[col], boxes[col], 0
            track.frame = track.at = frame
        for row, track in enumerate(self.tracks):
            if row not in matched_tracks:
                track.missed += 1
        self.tracks = [t for t in self.tracks if frame - t.frame <= self.max_lost]
        for col, face in enumerate(faces):
            if col not in matched_faces and sure[col]:
                width = boxes[col, 2] - boxes[col, 0]
                self.tracks.append(Track(self._next_id, face, boxes[col], frame, frame, size=width))
                self._next_id += 1
        if gray is not None and self.refine:
            for track in self.tracks:
                if track.missed == 0:
                    self._store_template(track, gray)
        return self.visible()

    def _rematch_hidden(
        self, predicted: np.ndarray, boxes: np.ndarray, pairs: list[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        """Hidden tracks matched to the faces left over by centre distance: a face whose centre
        is within ``REMATCH_SHIFT`` box widths of where the track should be (a face showing
        again from behind another is often boxed smaller, overlapping less)."""
        rows = [r for r, t in enumerate(self.tracks) if t.missed > 0 and r not in dict(pairs)]
        cols = [c for c in range(len(boxes)) if c not in {col for _, col in pairs}]
        if not rows or not cols:
            return []
        tracks, faces = predicted[rows], boxes[cols]
        distance = np.linalg.norm(
            _centres(tracks)[:, None, :] - _centres(faces)[None, :, :], axis=-1
        )
        widths = np.maximum(tracks[:, 2] - tracks[:, 0], [self.tracks[r].size for r in rows])
        reach = REMATCH_SHIFT * widths[:, None]
        closeness = 1 - distance / np.maximum(reach, 1e-6)
        return [(rows[r], cols[c]) for r, c in greedy_match(closeness, 1e-6)]

    def follow(self, frame: int, gray: np.ndarray | None = None) -> list[tuple[int, Face]]:
        """Move the tracks to a frame without detections; the visible (id, face) pairs.

        A visible track's box is refined by template matching; a hidden one moves at its
        velocity (its template would find the face that hides it)."""
        for track in self.tracks:
            box = track.predicted(frame)
            if gray is not None and track.template is not None and track.missed == 0:
                box = self._match(track, gray, box)
            track.face, track.at = moved(track.face, box), frame
        return self.visible()

    def visible(self) -> list[tuple[int, Face]]:
        """Tracks matched at the last detection, as (id, face), left to right."""
        shown = [(t.id, t.face) for t in self.tracks if t.missed == 0]
        return sorted(shown, key=lambda item: item[1].box[0])

    def _store_template(self, track: Track, gray: np.ndarray) -> None:
        x1, y1, x2, y2 = (round(v) for v in track.face.box)
        patch = gray[max(y1, 0) : y2, max(x1, 0) : x2]
        if patch.size == 0 or min(patch.shape) < 8:
            track.template = None
            return
        track.scale = min(1.0, TEMPLATE_SIDE / patch.shape[1])
        size = (
            max(1, round(patch.shape[1] * track.scale)),
            max(1, round(patch.shape[0] * track.scale)),
        )
        track.template = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)

    def _match(self, track: Track, gray: np.ndarray, box: np.ndarray) -> np.ndarray:
        """``box`` moved to where the track's template matches best near it."""
        template, s = track.template, track.scale
        assert template is not None
        w, h = box[2] - box[0], box[3] - box[1]
        x1, y1 = int(max(box[0] - w / 2, 0)), int(max(box[1] - h / 2, 0))
        x2, y2 = int(min(box[2] + w / 2, gray.shape[1])), int(min(box[3] + h / 2, gray.shape[0]))
        region = gray[y1:y2, x1:x2]
        size = (round(region.shape[1] * s), round(region.shape[0] * s))
        if size[0] <= template.shape[1] or size[1] <= template.shape[0]:
            return box
        region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
        scores = cv2.matchTemplate(region, template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (mx, my) = cv2.minMaxLoc(scores)
        if best < MIN_MATCH:
            return box
        left, top = x1 + mx / s, y1 + my / s
        return np.array([left, top, left + w, top + h])
