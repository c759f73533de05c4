"""Recognition over many images with Dask: the per-photo function of ``attnfer predict``
(:meth:`attnfer.recognize.Recognizer.predict_batch`) mapped over a Dask bag, one partition at a
time. Dask schedules the work: threads or processes on one machine, or the workers of a
``dask.distributed`` cluster the caller has connected a Client to (``docs/scale.md``).

Needs the dask extra: ``pip install 'attnfer[dask]'`` (from a checkout, ``pip install -e
'.[dask]'``).

Sources are local paths and URIs that fsspec reads (``s3://``, ``gs://``, ``https://``, ...; the
protocol's fsspec package must be installed where the work runs). A folder gives its image files
(searched recursively, by suffix, as ``attnfer predict`` does) and so does a glob pattern, named
by absolute path (local) or full URI; a file named is read whatever its suffix.

Records: one per image, ``{"source": str, "faces": list | None, "error": str | None}``, where
``faces`` holds each face's :meth:`attnfer.recognize.FaceResult.to_dict` (empty for an image with
no face). An image that cannot be read or decoded gets ``faces`` None and ``error`` the message
naming it; the job goes on. A folder or pattern with no image file in it gives one record with
that error, after the images' records, so that nothing named is dropped without a word.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, DataError
from .files import IMAGE_SUFFIXES
from .recognize import Recognizer

if TYPE_CHECKING:
    import dask.bag

Source = str | os.PathLike
PARTITION_SIZE = 64  # images per partition: each partition loads the model once


def _is_uri(text: str) -> bool:
    return "://" in text


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _expand(source: Source) -> list[str]:
    """The files ``source`` names: itself (a file, or a missing path whose record will say so),
    or the image files of a folder or glob pattern, sorted; ``[]`` when those are none."""
    import fsspec.core

    text = os.fspath(source)
    fs, path = fsspec.core.url_to_fs(text)
    if fs.isdir(path):
        found = [p for p in fs.find(path) if _is_image(p)]
    elif any(c in path for c in "*?[") and not fs.exists(path):
        found = [p for p in fs.glob(path) if _is_image(p) and fs.isfile(p)]
    else:
        return [text]
    return sorted(fs.unstrip_protocol(p) if _is_uri(text) else p for p in found)


def _records(sources: list[str], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """One partition: one Recognizer built with ``settings``, one record per source."""
    import fsspec

    if not sources:
        return []
    recognizer = Recognizer(**settings)
    unread: dict[int, str] = {}

    def images() -> Iterator[str | bytes]:
        for i, source in enumerate(sources):
            if not _is_uri(source):
                yield source  # read by the recognizer, whose DataError names it
                continue
            try:
                with fsspec.open(source, "rb") as fh:
                    yield fh.read()
            except OSError as exc:
                unread[i] = f"{source}: cannot read ({exc})"

    results = iter(recognizer.predict_batch(images()))
    records = []
    for i, source in enumerate(sources):
        found = None if i in unread else next(results)
        if found is None:
            records.append(_failed(source, unread[i]))
        elif isinstance(found, DataError):
            message = str(found)
            if _is_uri(source):  # read as bytes, which the message calls "image bytes"
                message = message.replace("image bytes", source, 1)
            records.append(_failed(source, message))
        else:
            faces = [face.to_dict() for face in found]
            records.append({"source": source, "faces": faces, "error": None})
    return records


def _failed(source: str, message: str) -> dict[str, Any]:
    return {"source": source, "faces": None, "error": message}


def predict_bag(
    sources: Source | Iterable[Source],
    model: str | os.PathLike = "default",
    detector: str = "default",
    partition_size: int = PARTITION_SIZE,
    **recognizer_kwargs: Any,
) -> dask.bag.Bag:
    """A lazy Dask bag of one record per image of ``sources`` (module notes: sources, records).

    ``sources``: one path, folder, pattern or URI, or several. Folders and patterns are listed
    here, when the bag is made; the images are read and recognised when it is computed, each
    partition of ``partition_size`` images by one :class:`attnfer.recognize.Recognizer` built
    on the worker from ``model``, ``detector`` (a name) and ``recognizer_kwargs`` (``backend``,
    ``faces``, ``tta``, ``device``, ...). Compute it with any Dask scheduler: ``.compute()``,
    ``.compute(scheduler="processes")``, or a ``dask.distributed.Client``'s workers.

    Raises ConfigError when dask is not installed or ``partition_size`` is below 1, and
    ValueError (from fsspec) for a URI whose protocol is unknown.
    """
    try:
        import dask.bag as db
    except ImportError:
        raise ConfigError(
            "predict_bag needs the dask extra: pip install 'attnfer[dask]' "
            "(from a checkout: pip install -e '.[dask]')"
        ) from None
    if partition_size < 1:
        raise ConfigError(f"partition_size must be at least 1; got {partition_size}")
    named = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
    files: dict[str, None] = {}
    empty = []
    for source in named:
        found = _expand(source)
        files.update(dict.fromkeys(found))
        if not found:
            empty.append(_failed(os.fspath(source), f"{source}: no image files found"))
    settings = {"model": model, "detector": detector, **recognizer_kwargs}
    bag = db.from_sequence(list(files), partition_size=partition_size)
    records = bag.map_partitions(_records, settings)
    return db.concat([records, db.from_sequence(empty)]) if empty else records
