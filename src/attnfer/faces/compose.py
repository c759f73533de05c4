"""Photo-like images made from face crops, for measuring what the photo path does to a model.

:func:`compose_photo` pastes one face crop (a FER2013 or CK+48 face, say) into a larger image
at a known place: upscaled to a random side, its edges carried outwards and feathered into a
background (flat, gradient, noise, texture or shapes), optionally tinted to colour. Everything
is drawn from a seeded generator, so the same seed gives the same photo. The result is what a
detector sees in a real photo closely enough to measure framing and accuracy, and the known
placement says where the model's training crop lies. :func:`compose_group` pastes many crops
of mixed sizes, none overlapping, into one larger photo: a group photo, a class or a crowd.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .framing import Placement

GROUP_TRIES = 50  # random spots tried for each face of a group photo
BACKGROUNDS = ("flat", "gradient", "noise", "texture", "shapes")


@dataclass(frozen=True)
class PhotoStyle:
    """Ranges composed photos are drawn from: photo sides, the face's side as a fraction of the
    photo's shorter side (at least the crop's own), the share of colour photos. ``face_px`` places
    every face at that side in pixels instead, smaller than its crop if need be (a small face in a
    group photo or a video frame)."""

    min_side: int = 320
    max_side: int = 640
    min_face: float = 0.2
    max_face: float = 0.7
    colour: float = 0.5
    face_px: int | None = None

    def __post_init__(self) -> None:
        if self.face_px is not None and not 8 <= self.face_px <= self.min_side:
            raise ValueError(f"face_px must be 8 to {self.min_side} pixels, got {self.face_px}")


@dataclass(frozen=True)
class GroupStyle:
    """Ranges group photos are drawn from: the photo's longer side (4:3, landscape), the faces'
    sides in pixels (log-uniform: as many small faces as large ones) and the share of colour
    photos."""

    min_side: int = 1280
    max_side: int = 4032
    min_px: int = 24
    max_px: int = 256
    colour: float = 0.5

    def __post_init__(self) -> None:
        if not 8 <= self.min_px <= self.max_px <= self.min_side * 3 // 8:
            raise ValueError(
                f"face sides must lie within 8 and {self.min_side * 3 // 8} px, low to high; got "
                f"{self.min_px} to {self.max_px}"
            )


def _background(rng: np.random.Generator, height: int, width: int, colour: bool) -> np.ndarray:
    """A float32 H x W x 3 background of a random kind (``BACKGROUNDS``), gray unless ``colour``."""
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    base = rng.uniform(30, 225, 3)
    if kind == "flat":
        image = np.broadcast_to(base, (height, width, 3)).astype(np.float32)
    elif kind == "gradient":
        other = rng.uniform(30, 225, 3)
        t = np.linspace(0, 1, width if rng.random() < 0.5 else height, dtype=np.float32)
        ramp = t[None, :, None] if len(t) == width else t[:, None, None]
        image = np.broadcast_to(base + (other - base) * ramp, (height, width, 3)).astype(np.float32)
    elif kind == "noise":
        image = base + rng.normal(0, rng.uniform(5, 25), (height, width, 3))
    elif kind == "texture":
        noise = rng.normal(0, 1, (max(2, height // 16), max(2, width // 16), 3))
        smooth = cv2.resize(
            noise.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC
        )
        image = base + smooth * rng.uniform(15, 45)
    else:
        image = np.broadcast_to(base, (height, width, 3)).astype(np.float32).copy()
        for _ in range(rng.integers(3, 9)):
            fill = tuple(float(c) for c in rng.uniform(20, 235, 3))
            p1 = (int(rng.integers(width)), int(rng.integers(height)))
            p2 = (int(rng.integers(width)), int(rng.integers(height)))
            cv2.rectangle(image, p1, p2, fill, -1)
    image = np.asarray(image, np.float32)
    return image if colour else np.repeat(image.mean(2, keepdims=True), 3, axis=2)


def _face(crop: np.ndarray, side: int, gains: np.ndarray | None) -> np.ndarray:
    """A gray or RGB uint8 crop as a float32 ``side`` x ``side`` x 3 face (area averaging down,
    bicubic up), its channels times ``gains`` where given."""
    resample = cv2.INTER_AREA if side < crop.shape[0] else cv2.INTER_CUBIC
    face = cv2.resize(crop, (side, side), interpolation=resample).astype(np.float32)
    if face.ndim == 2:
        face = np.repeat(face[..., None], 3, axis=2)
    return face if gains is None else face * gains


def _tint(rng: np.random.Generator) -> np.ndarray:
    """Per-channel gains that turn a gray face into a skin-like colour."""
    warmth = rng.uniform(0.0, 0.35)
    return np.array([1.0, 1.0 - 0.45 * warmth, 1.0 - 0.8 * warmth], np.float32)


def _paste(photo: np.ndarray, face: np.ndarray, x: int, y: int) -> None:
    """Paste the float32 ``face`` (side x side x 3) into the float32 ``photo`` at ``(x, y)``, in
    place: its edges carried outwards a quarter side and faded into what lies around it.

    The fade is worked out in a window around the face only (twice the blur's reach), which gives
    the same pixels as working it out over the whole photo, at a cost that does not grow with it.
    """
    height, width = photo.shape[:2]
    side = face.shape[0]
    margin = max(1, side // 4)
    sigma = max(1.0, margin / 2.5)
    reach = 2 * (math.ceil(4 * sigma) + 2)
    # The window, in the coordinates of the photo padded by ``margin`` on every side.
    top, left = max(0, y - reach), max(0, x - reach)
    bottom = min(height + 2 * margin, y + side + 2 * margin + reach)
    right = min(width + 2 * margin, x + side + 2 * margin + reach)
    padded = (
        slice(y - top, y - top + side + 2 * margin),
        slice(x - left, x - left + side + 2 * margin),
    )
    alpha = np.zeros((bottom - top, right - left), np.float32)
    alpha[padded] = 1.0
    alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
    canvas = np.zeros((bottom - top, right - left, 3), np.float32)
    canvas[padded] = cv2.copyMakeBorder(face, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
    # The part of the window inside the photo.
    rows = slice(max(top, margin) - top, min(bottom, height + margin) - top)
    cols = slice(max(left, margin) - left, min(right, width + margin) - left)
    alpha, canvas = alpha[rows, cols], canvas[rows, cols]
    y0, x0 = y + margin - top - rows.start, x + margin - left - cols.start
    alpha[y0 : y0 + side, x0 : x0 + side] = 1.0
    under = photo[
        top + rows.start - margin : top + rows.stop - margin,
        left + cols.start - margin : left + cols.stop - margin,
    ]
    under[...] = under * (1 - alpha[..., None]) + canvas * alpha[..., None]


def compose_photo(
    crop: np.ndarray, rng: np.random.Generator, style: PhotoStyle = PhotoStyle()
) -> tuple[np.ndarray, Placement]:
    """A photo (H x W x 3 RGB uint8) holding ``crop`` (gray or RGB uint8 face), and where."""
    height, width = (int(v) for v in rng.integers(style.min_side, style.max_side + 1, 2))
    if style.face_px is None:
        side = int(rng.uniform(style.min_face, style.max_face) * min(height, width))
        side = max(side, crop.shape[0])
    else:
        side = style.face_px
    x = int(rng.integers(0, width - side + 1))
    y = int(rng.integers(0, height - side + 1))
    colour = rng.random() < style.colour
    face = _face(crop, side, _tint(rng) if colour else None)
    photo = _background(rng, height, width, colour)
    _paste(photo, face, x, y)
    return np.clip(np.rint(photo), 0, 255).astype(np.uint8), Placement(x, y, side)


def compose_group(
    crops: Sequence[np.ndarray], rng: np.random.Generator, style: GroupStyle = GroupStyle()
) -> tuple[np.ndarray, list[Placement | None]]:
    """A photo (H x W x 3 RGB uint8) holding as many of ``crops`` as fit without overlapping, and
    where each was placed (None for one that found no room after many tries)."""
    width = int(rng.integers(style.min_side, style.max_side + 1))
    height = width * 3 // 4
    colour = rng.random() < style.colour
    photo = _background(rng, height, width, colour)
    taken: list[tuple[int, int, int, int]] = []  # squares with a margin of half a side each
    placed: list[Placement | None] = []
    for crop in crops:
        side = round(float(np.exp(rng.uniform(np.log(style.min_px), np.log(style.max_px)))))
        for _ in range(GROUP_TRIES):
            x = int(rng.integers(0, width - side + 1))
            y = int(rng.integers(0, height - side + 1))
            box = (x - side // 2, y - side // 2, x + side + side // 2, y + side + side // 2)
            if all(
                box[2] <= t[0] or t[2] <= box[0] or box[3] <= t[1] or t[3] <= box[1] for t in taken
            ):
                break
        else:
            placed.append(None)
            continue
        taken.append(box)
        _paste(photo, _face(crop, side, _tint(rng) if colour else None), x, y)
        placed.append(Placement(x, y, side))
    return np.clip(np.rint(photo), 0, 255).astype(np.uint8), placed
