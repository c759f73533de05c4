"""Annotated images: a box and label per face, landmarks, and a panel of probability bars.

Labels and panels are laid out so that they cover no other face and no other label or panel: a
label goes above its face, else inside the top of its box, else below it; its text is sized to
the face. A panel goes below, right of, left of or above its face at the first place that is free,
in a smaller font if need be, and is left out where there is none (a crowd). Style ``compact``
draws labels alone. A face with a ``track_id`` (video) is labelled ``#id label p%``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLORS: dict[str, tuple[int, int, int]] = {
    "angry": (230, 57, 70),
    "disgust": (106, 153, 78),
    "fear": (142, 68, 173),
    "happy": (244, 162, 97),
    "sad": (69, 123, 157),
    "surprise": (42, 157, 143),
    "neutral": (160, 160, 160),
    "contempt": (141, 110, 99),
}
_FALLBACK = (255, 214, 10)
STYLES = ("full", "compact")
MIN_TEXT, MAX_TEXT = 9, 40  # font sizes in pixels

Rect = tuple[float, float, float, float]  # x1, y1, x2, y2


class Annotated(Protocol):
    """What :func:`annotate` needs of a face result (``track_id`` too, where it has one)."""

    box: tuple[float, float, float, float]
    landmarks: Sequence[tuple[float, float]] | None
    probabilities: Mapping[str, float]
    label: str


@dataclass(frozen=True)
class Placement:
    """Where one face's label (text, font size, rectangle) and probability panel (rectangle
    and font size, or None when left out) go."""

    face: Annotated
    text: str
    size: int
    label: Rect
    panel: Rect | None
    panel_size: int


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _overlap(a: Rect, b: Rect) -> float:
    """The area two rectangles share."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, width) * max(0.0, height)


def _covered(rect: Rect, taken: Sequence[Rect]) -> float:
    return sum(_overlap(rect, other) for other in taken)


def _inside(rect: Rect, image: tuple[int, int]) -> bool:
    return rect[0] >= 0 and rect[1] >= 0 and rect[2] <= image[0] and rect[3] <= image[1]


def _shift_into(rect: Rect, width: int) -> Rect:
    """``rect`` moved sideways to lie within ``width`` where it can."""
    x1, y1, x2, y2 = rect
    dx = max(-x1, 0.0) or min(width - x2, 0.0)
    return (x1 + dx, y1, x2 + dx, y2)


def label_text(face: Annotated) -> str:
    """``label p%``, after ``#id`` for a tracked face."""
    text = f"{face.label} {100 * face.probabilities[face.label]:.0f}%"
    track = getattr(face, "track_id", None)
    return text if track is None else f"#{track} {text}"


def label_size(draw: ImageDraw.ImageDraw, text: str, box: Sequence[float]) -> int:
    """Font size of a face's label: a sixth of the box height, within 9-40 px, smaller where
    the text would be more than one and a half times the box's width."""
    width, height = box[2] - box[0], box[3] - box[1]
    size = int(np.clip(height / 6, MIN_TEXT, MAX_TEXT))
    while size > MIN_TEXT and draw.textlength(text, font=_font(size)) + 6 > 1.5 * width:
        size -= 1
    return size


def _label_spots(box: Sequence[float], size: tuple[float, float], width: int) -> list[Rect]:
    """Above the box, inside its top, below it; shifted sideways into the image."""
    x1, y1, _, y2 = box
    w, h = size
    spots = [(x1, y1 - h, x1 + w, y1), (x1, y1, x1 + w, y1 + h), (x1, y2, x1 + w, y2 + h)]
    return [_shift_into(spot, width) for spot in spots]


def _panel_size(
    draw: ImageDraw.ImageDraw, probs: Mapping[str, float], size: int
) -> tuple[float, float]:
    font = _font(size)
    names = max(draw.textlength(name, font=font) for name in probs)
    width = names + 4 * size + draw.textlength(" 100%", font=font) + 2 * (size // 2) + size // 4
    return width, round(size * 1.3) * len(probs) + size // 2


def _panel_spots(box: Sequence[float], size: tuple[float, float], gap: float) -> list[Rect]:
    """Below, right of, left of and above the box."""
    x1, y1, x2, y2 = box
    w, h = size
    return [
        (x1, y2 + gap, x1 + w, y2 + gap + h),
        (x2 + gap, y1, x2 + gap + w, y1 + h),
        (x1 - gap - w, y1, x1 - gap, y1 + h),
        (x1, y1 - gap - h, x1 + w, y1 - gap),
    ]


def _place_label(
    draw: ImageDraw.ImageDraw, face: Annotated, taken: list[Rect], image: tuple[int, int]
) -> tuple[str, int, Rect]:
    """The first free spot for the label, else the one covering least of the others."""
    text = label_text(face)
    size = label_size(draw, text, face.box)
    extent = (draw.textlength(text, font=_font(size)) + 6, size + 6)
    others = [rect for rect in taken if rect != tuple(face.box)]
    spots = [s for s in _label_spots(face.box, extent, image[0]) if _inside(s, image)]
    spots = spots or [_label_spots(face.box, extent, image[0])[1]]
    free = [spot for spot in spots if _covered(spot, others) == 0]
    return text, size, (free or sorted(spots, key=lambda s: _covered(s, others)))[0]


def _place_panel(
    draw: ImageDraw.ImageDraw, face: Annotated, taken: list[Rect], image: tuple[int, int]
) -> tuple[Rect | None, int]:
    """The first free spot for the probability panel, in the largest font that finds one."""
    largest = max(MIN_TEXT, label_size(draw, label_text(face), face.box) - 2)
    for size in range(largest, MIN_TEXT - 1, -1):
        extent = _panel_size(draw, face.probabilities, size)
        for spot in _panel_spots(face.box, extent, max(2, size // 4)):
            spot = _shift_into(spot, image[0])
            if _inside(spot, image) and _covered(spot, taken) == 0:
                return spot, size
    return None, MIN_TEXT


def layout(
    faces: Sequence[Annotated], image: tuple[int, int], style: str = "full"
) -> list[Placement]:
    """Where each face's label and panel go in an image of ``image`` (width, height) pixels,
    larger faces first (module notes)."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}; got {style!r}")
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    taken: list[Rect] = [tuple(face.box) for face in faces]
    order = sorted(faces, key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    labels = {}
    for face in order:
        labels[id(face)] = _place_label(draw, face, taken, image)
        taken.append(labels[id(face)][2])
    placed = []
    for face in order:
        panel, panel_size = None, MIN_TEXT
        if style == "full":
            panel, panel_size = _place_panel(draw, face, taken, image)
            if panel is not None:
                taken.append(panel)
        placed.append(Placement(face, *labels[id(face)], panel, panel_size))
    return placed


def _draw_panel(draw: ImageDraw.ImageDraw, place: Placement) -> None:
    """One row per class (name, bar, percentage) in the placement's panel."""
    assert place.panel is not None
    size, probs = place.panel_size, place.face.probabilities
    font = _font(size)
    names_w = max(draw.textlength(name, font=font) for name in probs)
    bar_w, row, pad = 4 * size, round(size * 1.3), size // 2
    x0, y0, x1, y1 = place.panel
    draw.rectangle((x0, y0, x1, y1), fill=(0, 0, 0, 150))
    bx = x0 + pad + names_w + size // 4
    for i, (name, p) in enumerate(probs.items()):
        y = y0 + pad // 2 + i * row
        draw.text((x0 + pad, y), name, font=font, fill=(255, 255, 255, 255))
        draw.rectangle((bx, y + 2, bx + bar_w, y + size), outline=(255, 255, 255, 90))
        color = (*COLORS.get(name, _FALLBACK), 255)
        draw.rectangle((bx, y + 2, bx + bar_w * float(p), y + size), fill=color)
        draw.text((bx + bar_w + 2, y), f"{100 * float(p):.0f}%", font=font, fill=(255, 255, 255))


def _draw_face(draw: ImageDraw.ImageDraw, place: Placement, line: int) -> None:
    """Box, landmarks and the label."""
    face = place.face
    color = (*COLORS.get(face.label, _FALLBACK), 255)
    draw.rectangle(tuple(face.box), outline=color, width=line)
    for x, y in face.landmarks or ():
        draw.ellipse((x - line, y - line, x + line, y + line), fill=color)
    draw.rectangle(place.label, fill=color)
    x, y = place.label[:2]
    draw.text((x + 3, y + 2), place.text, font=_font(place.size), fill=(0, 0, 0, 255))


def annotate(
    image: np.ndarray | Image.Image, faces: Sequence[Annotated], style: str = "full"
) -> Image.Image:
    """A copy of ``image`` (RGB) with each face's box, label, landmarks and, in style ``full``,
    probability bars where they fit (module notes)."""
    base = (image if isinstance(image, Image.Image) else Image.fromarray(image)).convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    line = max(2, round(min(base.size) / 300))
    placed = layout(faces, base.size, style)
    for place in placed:
        if place.panel is not None:
            _draw_panel(draw, place)
    for place in placed:
        _draw_face(draw, place, line)
    return Image.alpha_composite(base, overlay).convert("RGB")
