"""The face detector interface: :class:`Face` and the :class:`Detector` base class.

Every back end returns faces in the pixel coordinates of the image it was given, with a box
``(x1, y1, x2, y2)``, a confidence score and five landmarks in a fixed order: the eye on the
image's left, the eye on the image's right, the nose tip, the mouth corner on the image's left and
the one on the image's right. Boxes and landmarks are in the full image's pixels, whatever size
detection ran at.

Detection runs coarse to fine: first on the image downscaled to ``first_side`` (its longest side),
which finds the large faces of portraits and selfies in a third of the time; then, only when that
pass finds no face or a face smaller than ``REFINE_BELOW`` pixels at its scale (a sign that smaller
ones may have been missed), again at ``max_side``. ``first_side=None`` skips the coarse pass. An
image shrunk for a pass by a factor of at most 2 is resized bilinearly (as RetinaFace's own code
does); a stronger shrink averages whole blocks of pixels first, so that it does not alias
(:func:`resized`). Where the pass at ``max_side`` finds a face smaller than ``SMALL`` pixels at its
scale (a sign that still smaller ones were missed, as in a group photo), a last pass (``enlarge``,
on by default) looks closer: on an image smaller than ``max_side``, enlarged to it; on a larger one,
at ``CLOSER`` times ``max_side`` (enlarged if need be). The small faces it finds (under ``SMALL``
pixels at the fine pass's scale, which saw larger ones) that the passes before did not join them. An
image smaller than ``max_side`` gets that pass also where no face was found, and keeps every face it
finds (it costs one fine pass; a larger image's would cost four, and an image without faces gives no
sign to look for). Faces of 20-40 px, too small for the detector's smallest anchors at the first
passes' scale, become findable (docs/model_card.md, "Small faces" and "Group photos").
"""

from __future__ import annotations

import importlib
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import ClassVar, Protocol, TypeVar

import cv2
import numpy as np

from ..errors import DataError, ModelError

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
MAX_SIDE = 960  # longest side of the fine pass; larger images are downscaled for it
FIRST_SIDE = 320  # longest side of the coarse pass
REFINE_BELOW = 96  # a face smaller than this (pixels, at the coarse pass's scale) asks for the fine
SMALL = 64  # a face smaller than this (pixels, at the max_side pass's scale) asks for a closer look
CLOSER = 2  # a large image's closer look runs at this many times max_side
SAME_FACE = 0.4  # boxes of two passes overlapping more than this (IoU) are the same face
LINEAR_DOWNSCALE = 0.5  # images shrunk less than this for a pass are resized bilinearly alone

Point = tuple[float, float]


class Boxed(Protocol):
    box: tuple[float, float, float, float] | tuple[int, int, int, int]


F = TypeVar("F", bound=Boxed)


@dataclass(frozen=True)
class Face:
    """One face: box ``(x1, y1, x2, y2)`` in pixels, detector score (None when the face was not
    detected but given, as a whole-image crop) and five landmarks or None."""

    box: tuple[float, float, float, float]
    score: float | None = None
    landmarks: tuple[Point, ...] | None = None

    def scaled(self, factor: float) -> Face:
        """The same face in an image ``factor`` times as large."""
        box = tuple(v * factor for v in self.box)
        marks = self.landmarks and tuple((x * factor, y * factor) for x, y in self.landmarks)
        return Face(box, self.score, marks)  # type: ignore[arg-type]

    def clipped(self, width: int, height: int) -> Face:
        """The face with its box clipped to a ``width`` x ``height`` image."""
        x1, y1, x2, y2 = self.box
        box = (max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2))
        return Face(box, self.score, self.landmarks)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 H x W (x 1 or 3) image as a contiguous H x W x 3 RGB array."""
    if image.dtype != np.uint8:
        raise DataError(f"face detection needs a uint8 image, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"face detection needs an H x W or H x W x 3 image, got {image.shape}")
    return np.ascontiguousarray(image)


def require(module: str, pip_name: str, detector: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` for ``detector``; ModelError saying what to install when it is missing."""
    try:
        with warnings.catch_warnings():  # old detector packages warn on import (imghdr, 'is')
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", SyntaxWarning)
            return importlib.import_module(module)
    except ImportError as exc:
        hint = f"pip install {pip_name}" + (
            f"  (or pip install 'attnfer[{extra}]')" if extra else ""
        )
        raise ModelError(
            f"the {detector!r} face detector needs the {pip_name} package ({exc}): {hint}"
        ) from None


def largest(faces: Iterable[F]) -> F | None:
    """The face (anything with a ``box``) whose box has the largest area; None for none."""
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]), default=None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` (N x 4) with every box of ``b`` (M x 4)."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``size`` (width, height) for a pass: bilinearly, and where it shrinks
    by more than ``1 / LINEAR_DOWNSCALE``, after averaging whole blocks of k x k pixels (k the
    whole part of the factor), so that it does not alias. OpenCV averages whole blocks in a tenth
    of the time it takes for areas of any size; the last k - 1 rows and columns at most are left
    out of the blocks."""
    height, width = image.shape[:2]
    k = min(width // size[0], height // size[1])
    if k >= 2 and size[0] < width * LINEAR_DOWNSCALE:
        block = image[: height - height % k, : width - width % k]
        image = cv2.resize(block, (width // k, height // k), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def longer_side(face: Boxed) -> float:
    """The longer side of a face's box."""
    return max(face.box[2] - face.box[0], face.box[3] - face.box[1])


def merged(found: list[Face], more: list[Face]) -> list[Face]:
    """The faces ``found`` by a pass, and those of a further pass, ``more``, that are new: that
    overlap none found by more than ``SAME_FACE`` (IoU); left to right."""
    if not found or not more:
        return sorted(found or more, key=lambda f: f.box[0] + f.box[2])
    overlaps = iou_matrix([f.box for f in more], [f.box for f in found])
    new = [f for f, row in zip(more, overlaps, strict=True) if row.max() <= SAME_FACE]
    return sorted(found + new, key=lambda f: f.box[0] + f.box[2])


class Detector(ABC):
    """Finds faces in RGB uint8 images; subclasses implement :meth:`_detect`.

    ``min_score`` None keeps the back end's own threshold; ``max_side`` is the longest side
    the fine pass runs at, ``first_side`` that of the coarse pass, ``enlarge`` whether a closer
    look follows where the fine pass found small faces (or, in a small image, none; module
    notes).
    """

    name: ClassVar[str]
    default_score: ClassVar[float]

    def __init__(
        self,
        min_score: float | None = None,
        max_side: int = MAX_SIDE,
        first_side: int | None = FIRST_SIDE,
        enlarge: bool = True,
    ) -> None:
        self.min_score = self.default_score if min_score is None else float(min_score)
        self.max_side = int(max_side)
        self.first_side = None if first_side is None else min(int(first_side), self.max_side)
        self.enlarge = bool(enlarge)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an H x W x 3 RGB (or H x W gray) uint8 image, left to right."""
        image = as_rgb(image)
        longest = max(image.shape[:2])
        if self.first_side and longest > self.first_side:
            faces = self.detect_at(image, self.first_side)
            if faces and min(map(longer_side, faces)) * self.first_side / longest >= REFINE_BELOW:
                return faces
        faces = self.detect_at(image, self.max_side)
        scale = min(longest, self.max_side) / longest  # the fine pass's
        small = bool(faces) and min(map(longer_side, faces)) * scale < SMALL
        if self.enlarge and (small or (not faces and longest < self.max_side)):
            closer = self.max_side if longest < self.max_side else CLOSER * self.max_side
            more = self.detect_at(image, closer, enlarge=closer > longest)
            if faces:  # beside faces found, only small ones are new: the fine pass saw larger
                more = [f for f in more if longer_side(f) * scale < SMALL]
            faces = merged(faces, more)
        return faces

    def detect_at(self, image: np.ndarray, side: int, enlarge: bool = False) -> list[Face]:
        """Faces found in one pass with the image downscaled to ``side`` pixels (its longest
        side) at most, or with ``enlarge`` resized to exactly that; in full-image pixels, left to
        right."""
        image = as_rgb(image)
        height, width = image.shape[:2]
        scale = side / max(height, width)
        if not enlarge:
            scale = min(1.0, scale)
        if scale != 1.0:
            image = resized(image, (max(1, round(width * scale)), max(1, round(height * scale))))
        faces = [f.scaled(1.0 / scale).clipped(width, height) for f in self._detect(image)]
        faces = [f for f in faces if f.box[2] > f.box[0] and f.box[3] > f.box[1]]
        return sorted(faces, key=lambda f: f.box[0] + f.box[2])

    @abstractmethod
    def _detect(self, image: np.ndarray) -> list[Face]:
        """Faces scoring at least ``min_score`` in a contiguous RGB uint8 image."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(min_score={self.min_score}, max_side={self.max_side}, "
            f"first_side={self.first_side}, enlarge={self.enlarge})"
        )
