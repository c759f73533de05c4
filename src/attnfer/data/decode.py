"""Decoding image files into uint8 arrays, and the bookkeeping of samples skipped as bad.

Readers never stop on one bad file: a corrupt, empty or non-image file, a malformed CSV row or an
unknown label folder is recorded in :class:`BadSamples` (where it is, and why) and skipped. Past
``max_bad_samples`` (the papers' ``allow_corrupted_samples``) the load stops with a DataError that
names the first offenders.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, DataError
from ..files import heif_problem

COLORS: tuple[str, ...] = ("gray", "rgb")
# The square side images are resized to when their sizes differ and no size is asked for.
DEFAULT_SIZE: dict[str, int] = {"gray": 48, "rgb": 100}
_MODES = {"gray": "L", "rgb": "RGB"}
_CHUNK = 256  # files per thread-pool task: fewer, larger tasks keep the pool's overhead low


def check_color(color: str) -> str:
    """``color`` itself when it is ``gray`` or ``rgb``; ConfigError otherwise."""
    if color not in COLORS:
        raise ConfigError(f"color must be 'gray' or 'rgb', got {color!r}")
    return color


def _decode(src: str | os.PathLike | bytes, color: str, size: int | None) -> np.ndarray | str:
    """The decoded image, or the reason it cannot be decoded."""
    if isinstance(src, bytes):
        if not src:
            return "empty data (0 bytes)"
    else:
        try:
            if os.path.getsize(src) == 0:
                return "empty file (0 bytes)"
        except OSError as exc:
            return f"cannot read file ({exc.strerror or exc})"
    problem = heif_problem(src)
    if problem:
        return problem
    try:
        with Image.open(io.BytesIO(src) if isinstance(src, bytes) else src) as im:
            if size:
                im.draft(_MODES[color], (size, size))  # JPEG: decode at a reduced scale
            out = im.convert(_MODES[color])
            if size and out.size != (size, size):
                out = out.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(out, dtype=np.uint8)
    except UnidentifiedImageError:
        return "not an image"
    except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError, EOFError, ...
        return f"corrupt image ({type(exc).__name__}: {exc})"


def decode_image(
    src: str | os.PathLike | bytes, color: str = "gray", size: int | None = None
) -> np.ndarray:
    """Decode one image file (or its bytes) to uint8 H x W (gray) or H x W x 3 (rgb).

    With ``size`` the image is resized to ``size`` x ``size``. Raises DataError naming the file
    when it is missing, empty or not a readable image.
    """
    out = _decode(src, check_color(color), size)
    if isinstance(out, str):
        where = "image bytes" if isinstance(src, bytes) else str(src)
        raise DataError(f"{where}: {out}")
    return out


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` resized to ``size`` x ``size`` (bilinear)."""
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))


def to_color(images: np.ndarray, color: str) -> np.ndarray:
    """A batch (N x H x W gray or N x H x W x 3 rgb) converted to ``color``."""
    is_rgb = images.ndim == 4
    if check_color(color) == "rgb":
        return images if is_rgb else np.repeat(images[..., None], 3, axis=-1)
    if not is_rgb:
        return images
    luma = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)


def stack_images(arrays: Sequence[np.ndarray], color: str, size: int | None = None) -> np.ndarray:
    """Stack decoded images into one N x H x W (x 3) array.

    Without ``size`` images keep their size when all sizes agree; otherwise they are resized to
    :data:`DEFAULT_SIZE` for ``color``.
    """
    if size is None:
        if len({a.shape for a in arrays}) <= 1:
            return np.stack(arrays)
        size = DEFAULT_SIZE[color]
    return np.stack([a if a.shape[:2] == (size, size) else resize_image(a, size) for a in arrays])


def convert_images(images: np.ndarray, color: str | None, size: int | None) -> np.ndarray:
    """A batch converted to ``color`` and resized to ``size`` where asked and different."""
    if color is not None:
        images = to_color(images, color)
    if size is not None and images.shape[1:3] != (size, size):
        images = np.stack([resize_image(im, size) for im in images])
    return images


@dataclass
class BadSamples:
    """Samples skipped as unreadable: where each is, why, and how many it stands for.

    ``max_bad_samples`` None means no limit. ``dropped`` counts rows left out on purpose (FER+
    majority 'unknown', AffectNet 'no face'): they are reported but never stop a load.
    """

    max_bad_samples: int | None = 100
    entries: list[tuple[str, str]] = field(default_factory=list)
    count: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return self.count

    def add(self, where: str | os.PathLike, reason: str, count: int = 1) -> None:
        """Record ``count`` samples skipped at ``where``; DataError past ``max_bad_samples``."""
        self.entries.append((str(where), reason))
        self.count += count
        if self.max_bad_samples is not None and self.count > self.max_bad_samples:
            raise DataError(
                f"stopped: {self.count} bad samples exceed max_bad_samples={self.max_bad_samples}: "
                f"{self.listing()}. Fix or remove them, or raise max_bad_samples"
            )

    def drop(self, reason: str, count: int = 1) -> None:
        """Record ``count`` rows left out on purpose for ``reason``."""
        self.dropped[reason] += count

    def listing(self, limit: int = 5) -> str:
        """The first ``limit`` entries as ``where (reason)``, then how many more."""
        items = [f"{where} ({reason})" for where, reason in self.entries[:limit]]
        if len(self.entries) > limit:
            items.append(f"and {len(self.entries) - limit} more")
        return "; ".join(items)

    def summary(self, limit: int = 5) -> str:
        """One line: the bad samples skipped (named) and the rows dropped on purpose."""
        parts = [f"{self.count} bad samples skipped: {self.listing(limit)}"] if self.entries else []
        parts += [f"{n} dropped ({reason})" for reason, n in self.dropped.items()]
        return "; ".join(parts) or "no bad samples"


def _decode_chunk(paths: Sequence[Path], color: str, size: int | None) -> list:
    return [_decode(p, color, size) for p in paths]


@dataclass
class Decoder:
    """How readers decode: colour (None: the reader's default), size, threads, bad samples.

    ``progress(done, total)`` is called as files are decoded.
    """

    color: str | None = None
    size: int | None = None
    bad: BadSamples = field(default_factory=BadSamples)
    workers: int | None = None
    progress: Callable[[int, int], None] | None = None

    def __post_init__(self) -> None:
        if self.color is not None:
            check_color(self.color)
        if self.size is not None and self.size < 1:
            raise ConfigError(f"size must be a positive number of pixels, got {self.size}")

    def decode_files(self, paths: Sequence[Path], color: str) -> list[np.ndarray | None]:
        """Decode ``paths`` in a thread pool; unreadable files give None and go to ``bad``."""
        chunks = [paths[i : i + _CHUNK] for i in range(0, len(paths), _CHUNK)]
        workers = self.workers or min(8, os.cpu_count() or 1)
        results: list[np.ndarray | None] = []
        pool = ThreadPoolExecutor(workers, thread_name_prefix="attnfer-decode")
        try:
            decode = partial(_decode_chunk, color=color, size=self.size)
            for chunk, decoded in zip(chunks, pool.map(decode, chunks), strict=True):
                for path, out in zip(chunk, decoded, strict=True):
                    if isinstance(out, str):
                        self.bad.add(path, out)
                        out = None
                    results.append(out)
                if self.progress:
                    self.progress(len(results), len(paths))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return results
