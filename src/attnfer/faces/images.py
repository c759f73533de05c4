"""Reading photos for recognition: paths, bytes, PIL images or arrays -> RGB uint8 arrays.

Arrays are taken as RGB(A) (with ``bgr=True``, OpenCV's BGR(A)) or gray, uint8, 16-bit (uint16,
scaled by 1/257), other integers (16-bit when any value exceeds 255), floats (0..1 when no value
exceeds 1, else 0..255) or bool. Alpha is composited on white. EXIF orientation is applied. An image
whose header declares more than ``max_pixels`` pixels is refused before it is decoded.
:func:`decode` decodes large JPEGs at a reduced scale where full resolution is not needed (face
detection runs at most at ``attnfer.faces.base.MAX_SIDE``) and says by how much.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from ..errors import DataError
from ..files import heif_problem

MAX_PIXELS = 100_000_000  # 100 MP: larger files are refused before decoding
SIDEWAYS = (5, 6, 7, 8)  # EXIF orientations that turn an image by a quarter


@dataclass(frozen=True)
class Decoded:
    """An image as :func:`decode` gives it: ``image`` (H x W x 3 RGB uint8) holds the picture at
    1 / ``reduction`` of its sides, ``size`` is its full (width, height), upright."""

    image: np.ndarray
    reduction: int
    size: tuple[int, int]


ImageInput = str | os.PathLike | bytes | Image.Image | np.ndarray | Decoded
_INT16_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")


def describe(src: Any) -> str:
    """How to name ``src`` in messages: its path, or its kind."""
    if isinstance(src, str | os.PathLike):
        return str(src)
    if isinstance(src, bytes | bytearray | memoryview):
        return "image bytes"
    return f"{type(src).__name__} image"


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Pixel values of any numeric dtype as uint8 (see the module notes for the rules)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16 or (
        np.issubdtype(array.dtype, np.integer) and array.size and array.max() > 255
    ):
        return np.clip(np.rint(array / 257.0), 0, 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        finite = np.nan_to_num(array.astype(np.float32))
        scale = 255.0 if finite.size and finite.max() <= 1.0 else 1.0
        return np.clip(np.rint(finite * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        return np.clip(array, 0, 255).astype(np.uint8)
    raise DataError(f"cannot read pixels of dtype {array.dtype} as an image")


def _on_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``color`` (uint8) composited on a white background by ``alpha`` (uint8)."""
    a = alpha.astype(np.float32)[..., None] / 255.0
    out = color.astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.rint(out).astype(np.uint8)


def bgr_to_rgb(array: np.ndarray) -> np.ndarray:
    """An OpenCV-ordered array (BGR or BGRA; gray passes through) in RGB(A) order."""
    if array.ndim == 3 and array.shape[2] in (3, 4):
        order = [2, 1, 0, 3][: array.shape[2]]
        return array[..., order]
    return array


def array_to_rgb(array: np.ndarray) -> np.ndarray:
    """An H x W (x 1, 2, 3 or 4) array of any supported dtype as H x W x 3 RGB uint8."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] in (2, 4):
        pixels = to_uint8(array)
        array = _on_white(pixels[..., :-1], pixels[..., -1])
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise DataError(f"an image array must be H x W, H x W x 3 or 4, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise DataError(f"empty image array (shape {array.shape})")
    array = to_uint8(array)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return np.ascontiguousarray(array)


def pil_to_rgb(image: Image.Image) -> np.ndarray:
    """A PIL image of any mode (16-bit and float included) as H x W x 3 RGB uint8."""
    if image.mode in _INT16_MODES or image.mode == "F":
        return array_to_rgb(np.asarray(image))
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        return array_to_rgb(np.asarray(image.convert("RGBA")))
    return np.asarray(image.convert("RGB"))


def _check_size(image: Image.Image, where: str, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise DataError(
            f"{where}: {width} x {height} pixels ({width * height / 1e6:.1f} MP) is above the "
            f"limit of {max_pixels / 1e6:.1f} MP"
        )


def _draft(image: Image.Image, min_side: int | None) -> int:
    """Have a JPEG decode at the smallest of libjpeg's reduced scales (1/2, 1/4, 1/8) that keeps
    its longer side at least ``min_side``; returns the factor its sides are divided by (1: full
    size, for other formats and for images no larger)."""
    width, height = image.size
    if not min_side or image.format != "JPEG" or max(width, height) <= min_side:
        return 1
    factor = max(width, height) / min_side
    image.draft("RGB", (math.ceil(width / factor), math.ceil(height / factor)))
    return round(width / image.size[0])


def _open_file(
    src: str | os.PathLike | bytes, where: str, max_pixels: int, min_side: int | None = None
) -> Decoded:
    if isinstance(src, bytes):
        if not src:
            raise DataError(f"{where}: empty data (0 bytes)")
    else:
        try:
            if os.path.isdir(src):
                raise DataError(f"{where}: is a folder, not an image file")
            if os.path.getsize(src) == 0:
                raise DataError(f"{where}: empty file (0 bytes)")
        except OSError as exc:
            raise DataError(f"{where}: cannot read file ({exc.strerror or exc})") from None
    problem = heif_problem(src)
    if problem:
        raise DataError(f"{where}: {problem}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit
            with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as image:
                _check_size(image, where, max_pixels)
                width, height = image.size
                if image.getexif().get(ExifTags.Base.Orientation) in SIDEWAYS:
                    width, height = height, width
                reduction = _draft(image, min_side)
                return Decoded(
                    pil_to_rgb(ImageOps.exif_transpose(image)), reduction, (width, height)
                )
    except UnidentifiedImageError:
        raise DataError(f"{where}: not an image (unknown or unsupported format)") from None
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found[1]) / 1e6:.1f} MP" if found else "image"
        limit = min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or max_pixels))
        raise DataError(f"{where}: {size} is above the limit of {limit / 1e6:.1f} MP") from None
    except DataError:
        raise
    except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError, EOFError, ...
        raise DataError(f"{where}: corrupt or truncated image ({exc})") from None


def load_image(src: ImageInput, max_pixels: int = MAX_PIXELS, bgr: bool = False) -> np.ndarray:
    """A path, encoded bytes, PIL image or array as an H x W x 3 RGB uint8 array. ``bgr``: an
    array's colour channels are in OpenCV's order (BGR or BGRA); files and PIL images are read
    in their own order whatever it says.

    Raises DataError naming the file (or the input's kind) and the problem: missing, empty, not
    an image, corrupt or truncated, above ``max_pixels``, or an unsupported array.
    """
    return decode(src, None, max_pixels, bgr).image


def decode(
    src: ImageInput, min_side: int | None, max_pixels: int = MAX_PIXELS, bgr: bool = False
) -> Decoded:
    """:func:`load_image`, except that a JPEG file (path or bytes) whose longer side exceeds
    ``min_side`` is decoded at the smallest of libjpeg's reduced scales (1/2, 1/4 or 1/8) that
    keeps its longer side at least ``min_side``, which decodes several times as fast. A
    :class:`Decoded` passes through as it is."""
    where = describe(src)
    if isinstance(src, Decoded):
        return src
    if isinstance(src, np.ndarray):
        rgb = array_to_rgb(bgr_to_rgb(src) if bgr else src)
        return Decoded(rgb, 1, (rgb.shape[1], rgb.shape[0]))
    if isinstance(src, Image.Image):
        _check_size(src, where, max_pixels)
        rgb = pil_to_rgb(ImageOps.exif_transpose(src))
        return Decoded(rgb, 1, (rgb.shape[1], rgb.shape[0]))
    if isinstance(src, bytearray | memoryview):
        src = bytes(src)
    if isinstance(src, str | os.PathLike | bytes):
        return _open_file(src, where, max_pixels, min_side)
    raise DataError(f"cannot read an image from a {type(src).__name__}")
