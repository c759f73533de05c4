"""Face alignment: frame the box as the model was trained, turn back a strong lean, crop, resize.

The crop is the square a :class:`~attnfer.faces.framing.Framing` puts around the detector's box
(the model's own, from its file; by default the box's longer side enlarged by 25 % around its
centre, as paper 004 does), turned by :func:`roll_correction`, taken from the full-resolution
image (borders replicated where it runs off the image) and resized with area averaging to the
model's input size, in gray or RGB.

Faces keep a lean of up to ``KEPT_TILT`` degrees: the training faces lean as people do and a
lean carries expression, so levelling every eye line costs accuracy (``docs/model_card.md``,
"Photos"); a stronger lean is turned back to that.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .base import Face
from .framing import LEGACY_FRAMING, Framing

KEPT_TILT = 15.0  # degrees of lean a face keeps (module notes)


def eye_angle(face: Face) -> float:
    """Angle of the eye line in degrees (positive: the right-hand eye is lower); 0 without marks."""
    if not face.landmarks:
        return 0.0
    (lx, ly), (rx, ry) = face.landmarks[:2]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def roll_correction(face: Face, kept_tilt: float = KEPT_TILT) -> float:
    """The angle in degrees the crop of ``face`` is turned by: its eye line's lean beyond
    ``kept_tilt`` (0 for faces that lean less, or without marks; ``kept_tilt`` 0 levels the
    eyes, 180 never turns)."""
    angle = eye_angle(face)
    return math.copysign(max(0.0, abs(angle) - kept_tilt), angle)


def alignment_matrix(
    face: Face, size: int, framing: Framing = LEGACY_FRAMING, kept_tilt: float = KEPT_TILT
) -> np.ndarray:
    """The 2 x 3 affine map from image pixels to a ``size`` x ``size`` aligned crop."""
    angle = roll_correction(face, kept_tilt)
    cx, cy, side = framing.square(face, angle)
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, size / side)
    matrix[:, 2] += (size / 2 - cx, size / 2 - cy)
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
    image: np.ndarray,
    face: Face,
    size: int,
    channels: int = 1,
    framing: Framing = LEGACY_FRAMING,
    kept_tilt: float = KEPT_TILT,
) -> np.ndarray:
    """The aligned crop of ``face`` from an RGB uint8 ``image``: ``size`` x ``size`` (x 3),
    turned by :func:`roll_correction`.

    The crop is first taken at the face's own resolution (at least ``size``), then shrunk with
    area averaging, so that large faces are not aliased.
    """
    x1, y1, x2, y2 = face.box
    work = max(size, math.ceil(max(x2 - x1, y2 - y1) * framing.scale))
    crop = cv2.warpAffine(
        image,
        alignment_matrix(face, work, framing, kept_tilt),
        (work, work),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return fit_to_input(crop, size, channels)
