"""Framing: where a model's input square lies relative to a face detector's box.

A model is trained on face crops framed one way (FER2013's 48 x 48 faces show the forehead to
the chin and little else); each detector draws its box another way (MTCNN's box is tight around
the eyebrows and mouth, RetinaFace's reaches below the chin). :class:`Framing` maps one detector's
box to the model's input square: the square's side is ``scale`` times the box's longer side, and
its centre lies ``(dx, dy)`` box sides from the box's centre, along the face's own axes (rotated
turned with the crop where alignment turns back a strong lean; see :mod:`attnfer.faces.align`).

A model file carries one framing per detector, measured by :func:`measure_framing` on its
training faces placed in larger images (see :mod:`attnfer.faces.compose`). A file without one,
or a detector the file does not name, uses :data:`LEGACY_FRAMING`: the box enlarged by 25 % and
centred, what every model file was given before framings were measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import ModelError
from .base import Detector, Face, largest

FRAMING_KEYS = ("scale", "dx", "dy")


@dataclass(frozen=True)
class Framing:
    """The input square of a model relative to a detector's box (module notes)."""

    scale: float = 1.25
    dx: float = 0.0
    dy: float = 0.0

    def __post_init__(self) -> None:
        values = (self.scale, self.dx, self.dy)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise ModelError(f"framing values must be finite numbers, got {values}")
        if not 0.2 <= self.scale <= 5.0 or max(abs(self.dx), abs(self.dy)) > 1.0:
            raise ModelError(
                f"framing out of range: scale {self.scale} (0.2 to 5), offsets "
                f"{self.dx}, {self.dy} (at most 1 box side)"
            )

    def square(self, face: Face, angle: float) -> tuple[float, float, float]:
        """The input square of ``face`` as ``(centre x, centre y, side)`` in image pixels, for
        a face whose eye line is at ``angle`` degrees."""
        x1, y1, x2, y2 = face.box
        side = max(x2 - x1, y2 - y1, 1.0)
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        ox, oy = self.dx * side, self.dy * side
        cx = (x1 + x2) / 2 + ox * cos - oy * sin
        cy = (y1 + y2) / 2 + ox * sin + oy * cos
        return cx, cy, side * self.scale

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in asdict(self).items()}


LEGACY_FRAMING = Framing()


def framings_from_info(raw: Any, where: str) -> dict[str, Framing]:
    """The per-detector framings stored in a model file (``{detector: {scale, dx, dy, ...}}``);
    ModelError naming ``where`` when they are malformed. Extra keys (counts, spreads) are kept
    in the file for people and ignored here."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ModelError(f"{where}: framing must be a mapping of detector names, got {raw!r}")
    framings = {}
    for name, entry in raw.items():
        if not isinstance(entry, Mapping) or not set(FRAMING_KEYS) <= set(entry):
            raise ModelError(f"{where}: framing of {name!r} needs {', '.join(FRAMING_KEYS)}")
        try:
            framings[str(name)] = Framing(*(float(entry[k]) for k in FRAMING_KEYS))
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{where}: framing of {name!r}: {exc}") from None
        except ModelError as exc:
            raise ModelError(f"{where}: framing of {name!r}: {exc}") from None
    return framings


@dataclass(frozen=True)
class Placement:
    """A face crop pasted into a photo: the crop's square ``(x, y, side)`` in photo pixels."""

    x: float
    y: float
    side: float


def best_match(faces: list[Face], placed: Placement) -> Face | None:
    """The detected face whose box centre lies in the placed square, largest first."""
    inside = [
        f
        for f in faces
        if placed.x <= (f.box[0] + f.box[2]) / 2 <= placed.x + placed.side
        and placed.y <= (f.box[1] + f.box[3]) / 2 <= placed.y + placed.side
    ]
    return largest(inside)


def framing_sample(face: Face, placed: Placement, angle: float) -> tuple[float, float, float]:
    """``(scale, dx, dy)`` that maps ``face``'s box onto the placed square exactly."""
    x1, y1, x2, y2 = face.box
    side = max(x2 - x1, y2 - y1, 1.0)
    ox = placed.x + placed.side / 2 - (x1 + x2) / 2
    oy = placed.y + placed.side / 2 - (y1 + y2) / 2
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return placed.side / side, (ox * cos + oy * sin) / side, (-ox * sin + oy * cos) / side


def measure_framing(
    detector: Detector,
    photos: Iterable[tuple[np.ndarray, Placement]],
    roll: Callable[[Face], float],
) -> dict[str, Any]:
    """The framing of ``detector`` measured on photos of known placement: medians of the exact
    per-face mappings, with their spread (robust standard deviations) and counts.

    Returns ``{scale, dx, dy, spread: {scale, dx, dy}, faces, found}``; ModelError when the
    detector found none of the faces.
    """
    samples = []
    total = 0
    for photo, placed in photos:
        total += 1
        face = best_match(detector.detect(photo), placed)
        if face is not None:
            samples.append(framing_sample(face, placed, roll(face)))
    if not samples:
        raise ModelError(f"{detector.name}: found none of {total} placed faces")
    values = np.asarray(samples)
    median = np.median(values, axis=0)
    spread = 1.4826 * np.median(np.abs(values - median), axis=0)  # MAD as a standard deviation
    framing = Framing(*(float(v) for v in median)).to_dict()
    return {
        **framing,
        "spread": {k: round(float(s), 4) for k, s in zip(FRAMING_KEYS, spread, strict=True)},
        "faces": total,
        "found": len(samples),
    }
