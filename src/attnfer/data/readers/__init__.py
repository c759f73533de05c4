"""Readers for each data set's own layout, and :func:`load_dataset`, which picks one by itself.

Every reader takes the path and a :class:`~attnfer.data.decode.Decoder` (colour, size, threads,
bad-sample tracking) and returns a :class:`~attnfer.data.dataset.FaceDataset`.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
from collections.abc import Callable
from pathlib import Path

from ...errors import ConfigError, DataError
from ..dataset import FaceDataset
from ..decode import BadSamples, Decoder, check_color, convert_images
from ._common import list_dirs, ordered_splits
from .ckplus import looks_like_crops, original_layout, read_ckplus
from .fer2013 import read_fer2013_csv, read_ferplus
from .folder import read_folder
from .image_csv import read_image_csv
from .jaffe import looks_like_jaffe, read_jaffe
from .rafdb import find_label_file, read_rafdb

log = logging.getLogger(__name__)

READERS: dict[str, Callable[..., FaceDataset]] = {
    "fer2013": read_fer2013_csv,
    "ferplus": read_ferplus,
    "csv": read_image_csv,
    "folder": read_folder,
    "ckplus": read_ckplus,
    "jaffe": read_jaffe,
    "rafdb": read_rafdb,
}
FORMATS: tuple[str, ...] = ("packed", *READERS)


def _csv_format(path: Path) -> str:
    """``fer2013``, ``ferplus`` or ``csv`` from a CSV file's header."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            header = {h.strip().lower() for h in f.readline().split(",")}
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if {"emotion", "pixels"} <= header:
        return "fer2013"
    if {"image name", "neutral", "unknown", "nf"} <= header:
        return "ferplus"
    return "csv"


def detect_format(src: str | os.PathLike) -> str:
    """The format of ``src`` (one of :data:`FORMATS`); DataError when it cannot tell."""
    src = Path(src)
    if src.is_file():
        if src.name.endswith((".safetensors", ".safetensors.xz")):
            return "packed"
        if src.suffix.lower() == ".csv":
            return _csv_format(src)
        if find_label_file(src):
            return "rafdb"
    elif src.is_dir():
        if find_label_file(src):
            return "rafdb"
        if original_layout(src) or looks_like_crops(src):
            return "ckplus"
        if looks_like_jaffe(src):
            return "jaffe"
        if list_dirs(src):
            return "folder"
    else:
        raise DataError(f"{src}: no such file or folder")
    raise DataError(f"{src}: cannot tell the data format; pass format= one of {', '.join(FORMATS)}")


def _check_options(fmt: str, options: dict) -> None:
    allowed = list(inspect.signature(READERS[fmt]).parameters)[1:-1]  # not the path, the decoder
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"format {fmt!r} takes no option {', '.join(unknown)} "
            f"(its options: {', '.join(allowed) or 'none'})"
        )


def load_dataset(
    src: str | os.PathLike,
    *,
    format: str | None = None,
    color: str | None = None,
    size: int | None = None,
    max_bad_samples: int | None = 100,
    bad: BadSamples | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> FaceDataset:
    """Load any supported data set, detecting its format from ``src`` unless ``format`` is given.

    Formats: a packed ``.safetensors`` (or ``.safetensors.xz``) file, the FER2013 / FER+ /
    generic image CSVs, a label folder tree, CK+, JAFFE and RAF-DB. ``color`` (``gray``/``rgb``)
    defaults to the data set's usual one (rgb for RAF-DB, gray otherwise); ``size`` resizes to a
    square, by default only when sizes differ. Bad samples are skipped and recorded in ``bad`` (a
    new tracker with ``max_bad_samples`` when None, whose summary is then logged as a warning).
    ``options`` go to the reader (``frames`` for CK+, ``fer2013`` for FER+, ``aligned`` for
    RAF-DB, ...).
    """
    src = Path(src).expanduser()
    fmt = format or detect_format(src)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown data format {fmt!r}; known: {', '.join(FORMATS)}")
    if not src.exists():
        raise DataError(f"{src}: no such file or folder")
    if color is not None:
        check_color(color)
    if fmt == "packed":
        if options:
            raise ConfigError(f"a packed data set takes no options ({', '.join(options)})")
        data = FaceDataset.load(src)
        images = convert_images(data.images, color, size)
        return dataclasses.replace(data, images=images, splits=ordered_splits(data.splits))
    _check_options(fmt, options)
    tracker = bad if bad is not None else BadSamples(max_bad_samples)
    decoder = Decoder(color=color, size=size, bad=tracker, workers=workers, progress=progress)
    data = READERS[fmt](src, decoder=decoder, **options)
    if bad is None and (tracker.entries or tracker.dropped):
        log.warning("%s: %s", src, tracker.summary())
    return data


__all__ = [
    "FORMATS",
    "READERS",
    "detect_format",
    "load_dataset",
    "read_ckplus",
    "read_fer2013_csv",
    "read_ferplus",
    "read_folder",
    "read_image_csv",
    "read_jaffe",
    "read_rafdb",
]
