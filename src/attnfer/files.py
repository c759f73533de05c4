"""Files: writing them so that a crash never leaves a half-written one behind, which names are
images (and whether a HEIF/HEIC photo can be read), and their checksums."""

from __future__ import annotations

import functools
import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

# The files a folder gives `attnfer predict` and `attnfer.scale.predict_bag`, by suffix.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pnm", ".pgm"}
    | {".heic", ".heif", ".avif"}  # HEIF (iPhones' photos) with pillow-heif; AVIF
)
# HEIF's brands for HEVC-coded still images (AVIF, its AV1 sibling, Pillow reads itself).
HEIF_BRANDS = frozenset((b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"))


@functools.cache
def heif_readable() -> bool:
    """Whether PIL can open HEIF/HEIC photos: pillow-heif's opener, registered on the first call
    where the package is installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def heif_problem(src: str | os.PathLike | bytes) -> str | None:
    """Why the image file (or its bytes) ``src`` cannot be opened where it is a HEIF/HEIC photo
    and pillow-heif is missing; None otherwise (also where the file cannot be read: its opener
    says why). Makes HEIF photos readable where pillow-heif is installed."""
    try:
        if isinstance(src, bytes):
            head = src[:12]
        else:
            with open(src, "rb") as f:
                head = f.read(12)
    except OSError:
        return None
    if head[4:8] != b"ftyp" or head[8:12] not in HEIF_BRANDS or heif_readable():
        return None
    return (
        "a HEIF/HEIC photo (as iPhones save them): pip install pillow-heif (or pip install "
        "'attnfer[heif]') to read it"
    )


def sha256(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file's bytes, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write`` on a new file beside ``path``, flush it to disk, move it into place and
    flush the folder, so that after a crash or power loss ``path`` holds the old bytes or the
    new ones, whole. The temporary file is ``.<name>.<random>.tmp`` (see
    :func:`remove_orphans`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk, where the system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder; its renames are durable on their own
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems do not sync folders
        pass
    finally:
        os.close(fd)


def remove_orphans(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed :func:`write_atomic` of ``path`` left; the removed."""
    path = Path(path)
    orphans = sorted(path.parent.glob(f".{_glob_escape(path.name)}.{'?' * 12}.tmp"))
    for orphan in orphans:
        orphan.unlink(missing_ok=True)
    return orphans


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
