"""Face alignment: level the eyes, enlarge the box, crop and resize to the model's input.

Following paper 004, the detector's box is enlarged by 25 % (each side) around its centre; the
crop is square (the longer side of the box), rotated so that the eye line is horizontal, taken
from the full-resolution image (borders replicated where it runs off the image) and resized with
area averaging to the model's input size, in gray or RGB.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .base import Face

ENLARGE = 0.25


def eye_angle(face: Face) -> float:
    """Angle of the eye line in degrees (positive: the right-hand eye is lower); 0 without marks."""
    if not face.landmarks:
        return 0.0
    (lx, ly), (rx, ry) = face.landmarks[:2]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def alignment_matrix(face: Face, size: int, enlarge: float = ENLARGE) -> np.ndarray:
    """The 2 x 3 affine map from image pixels to a ``size`` x ``size`` aligned crop."""
    x1, y1, x2, y2 = face.box
    centre = ((x1 + x2) / 2, (y1 + y2) / 2)
    side = max(x2 - x1, y2 - y1, 1.0) * (1 + enlarge)
    matrix = cv2.getRotationMatrix2D(centre, eye_angle(face), size / side)
    matrix[:, 2] += (size / 2 - centre[0], size / 2 - centre[1])
    return matrix


def fit_to_input(image: np.ndarray, size: int, channels: int) -> np.ndarray:
    """A uint8 RGB or gray image converted to ``channels`` (1 or 3) and resized to ``size``."""
    if image.ndim == 3 and channels == 1:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    elif image.ndim == 2 and channels == 3:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    height, width = image.shape[:2]
    if (height, width) != (size, size):
        shrink = height > size or width > size
        interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        image = cv2.resize(image, (size, size), interpolation=interpolation)
    return image


def align_face(
    image: np.ndarray, face: Face, size: int, channels: int = 1, enlarge: float = ENLARGE
) -> np.ndarray:
    """The aligned crop of ``face`` from an RGB uint8 ``image``: ``size`` x ``size`` (x 3).

    The crop is first taken at the face's own resolution (at least ``size``), then shrunk with
    area averaging, so that large faces are not aliased.
    """
    x1, y1, x2, y2 = face.box
    work = max(size, math.ceil(max(x2 - x1, y2 - y1) * (1 + enlarge)))
    crop = cv2.warpAffine(
        image,
        alignment_matrix(face, work, enlarge),
        (work, work),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return fit_to_input(crop, size, channels)
