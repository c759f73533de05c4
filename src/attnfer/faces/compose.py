"""Photo-like images made from face crops, for measuring what the photo path does to a model.

:func:`compose_photo` pastes one face crop (a FER2013 or CK+48 face, say) into a larger image
at a known place: upscaled to a random side, its edges carried outwards and feathered into a
background (flat, gradient, noise, texture or shapes), optionally tinted to colour. Everything
is drawn from a seeded generator, so the same seed gives the same photo. The result is what a
detector sees in a real photo closely enough to measure framing and accuracy, and the known
placement says where the model's training crop lies.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .framing import Placement

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


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
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
            colour = tuple(float(c) for c in rng.uniform(20, 235, 3))
            p1 = (int(rng.integers(width)), int(rng.integers(height)))
            p2 = (int(rng.integers(width)), int(rng.integers(height)))
            cv2.rectangle(image, p1, p2, colour, -1)
    return np.asarray(image, np.float32)


def _tint(rng: np.random.Generator) -> np.ndarray:
    """Per-channel gains that turn a gray face into a skin-like colour."""
    warmth = rng.uniform(0.0, 0.35)
    return np.array([1.0, 1.0 - 0.45 * warmth, 1.0 - 0.8 * warmth], np.float32)


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
    resample = cv2.INTER_AREA if side < crop.shape[0] else cv2.INTER_CUBIC
    face = cv2.resize(crop, (side, side), interpolation=resample).astype(np.float32)
    if face.ndim == 2:
        face = np.repeat(face[..., None], 3, axis=2)
    colour = rng.random() < style.colour
    if colour:
        face = face * _tint(rng)
    background = _background(rng, height, width)
    if not colour:
        background = np.repeat(background.mean(2, keepdims=True), 3, axis=2)
    # The crop's edges carried outwards a quarter side and faded into the background.
    margin = max(1, side // 4)
    padded = cv2.copyMakeBorder(face, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
    alpha = np.zeros((height + 2 * margin, width + 2 * margin), np.float32)
    alpha[y : y + side + 2 * margin, x : x + side + 2 * margin] = 1.0
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(1.0, margin / 2.5))[margin:-margin, margin:-margin]
    alpha[y : y + side, x : x + side] = 1.0
    canvas = np.zeros((height + 2 * margin, width + 2 * margin, 3), np.float32)
    canvas[y : y + side + 2 * margin, x : x + side + 2 * margin] = padded
    canvas = canvas[margin:-margin, margin:-margin]
    photo = background * (1 - alpha[..., None]) + canvas * alpha[..., None]
    return np.clip(np.rint(photo), 0, 255).astype(np.uint8), Placement(x, y, side)
