"""Annotated images: a box and label per face, landmarks, and a panel of probability bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


class Annotated(Protocol):
    """What :func:`annotate` needs of a face result."""

    box: tuple[float, float, float, float]
    landmarks: Sequence[tuple[float, float]] | None
    probabilities: Mapping[str, float]
    label: str


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _panel_origin(
    box: tuple[float, ...], panel: tuple[int, int], image: tuple[int, int], gap: int
) -> tuple[int, int]:
    """Where the bars go: under the box, else right of it, else left of it; inside the image."""
    x1, y1, x2, y2 = box
    width, height = image
    pw, ph = panel
    if y2 + gap + ph <= height:
        x, y = x1, y2 + gap
    else:
        x = x2 + gap if x2 + gap + pw <= width else x1 - gap - pw
        y = y1
    return int(min(max(0, x), max(0, width - pw))), int(min(max(0, y), max(0, height - ph)))


def _draw_bars(
    draw: ImageDraw.ImageDraw, face: Annotated, size: int, image: tuple[int, int]
) -> None:
    """A panel with one row per class (name, bar, percentage) near the face."""
    probs = face.probabilities
    font = _font(size)
    names_w = max(draw.textlength(name, font=font) for name in probs)
    bar_w, row, pad = 4 * size, round(size * 1.3), size // 2
    width = int(names_w + bar_w + draw.textlength(" 100%", font=font) + 2 * pad)
    panel = (width, row * len(probs) + pad)
    x0, y0 = _panel_origin(face.box, panel, image, max(2, size // 4))
    draw.rectangle((x0, y0, x0 + panel[0], y0 + panel[1]), fill=(0, 0, 0, 150))
    bx = x0 + pad + names_w + size // 4
    for i, (name, p) in enumerate(probs.items()):
        y = y0 + pad // 2 + i * row
        draw.text((x0 + pad, y), name, font=font, fill=(255, 255, 255, 255))
        draw.rectangle((bx, y + 2, bx + bar_w, y + size), outline=(255, 255, 255, 90))
        color = (*COLORS.get(name, _FALLBACK), 255)
        draw.rectangle((bx, y + 2, bx + bar_w * float(p), y + size), fill=color)
        draw.text((bx + bar_w + 2, y), f"{100 * float(p):.0f}%", font=font, fill=(255, 255, 255))


def _text_size(face: Annotated) -> int:
    """Label font size for a face: a ninth of its box height, within 11-40 px."""
    return int(np.clip((face.box[3] - face.box[1]) / 9, 11, 40))


def _draw_face(draw: ImageDraw.ImageDraw, face: Annotated, line: int) -> None:
    """Box, landmarks and a label with the top probability."""
    x1, y1, x2, y2 = face.box
    color = (*COLORS.get(face.label, _FALLBACK), 255)
    size = _text_size(face)
    draw.rectangle((x1, y1, x2, y2), outline=color, width=line)
    for x, y in face.landmarks or ():
        draw.ellipse((x - line, y - line, x + line, y + line), fill=color)
    font = _font(size + 2)
    text = f"{face.label} {100 * face.probabilities[face.label]:.0f}%"
    ty = max(0, y1 - size - 6)
    draw.rectangle((x1, ty, x1 + draw.textlength(text, font=font) + 6, ty + size + 6), fill=color)
    draw.text((x1 + 3, ty + 1), text, font=font, fill=(0, 0, 0, 255))


def annotate(image: np.ndarray | Image.Image, faces: Sequence[Annotated]) -> Image.Image:
    """A copy of ``image`` (RGB) with each face's box, label, landmarks and probability bars.

    The bars go under each face where there is room; boxes and labels are drawn over them.
    """
    base = (image if isinstance(image, Image.Image) else Image.fromarray(image)).convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    line = max(2, round(min(base.size) / 300))
    for face in faces:
        _draw_bars(draw, face, max(9, _text_size(face) - 2), base.size)
    for face in faces:
        _draw_face(draw, face, line)
    return Image.alpha_composite(base, overlay).convert("RGB")
