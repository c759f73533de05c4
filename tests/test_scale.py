"""predict_bag: the per-photo function of attnfer predict over a Dask bag, in local mode."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from attnfer.errors import ConfigError
from attnfer.recognize import Recognizer
from attnfer.scale import predict_bag

dask = pytest.importorskip("dask")
fsspec = pytest.importorskip("fsspec")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def expected() -> list[tuple[str, list[int]]]:
    """Label and box of each face ``Recognizer().predict`` finds in the example photo."""
    return [(f.label, list(f.box)) for f in Recognizer().predict(EXAMPLE)]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The example photo, a copy in a subfolder, a corrupt .jpg, a photo with no face and a
    text file (not an image: left out of the folder's files)."""
    shutil.copy(EXAMPLE, tmp_path / "astronaut.jpg")
    (tmp_path / "sub").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "sub" / "copy.jpg")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\x00not a jpeg")
    Image.new("RGB", (300, 300), (90, 140, 200)).save(tmp_path / "blank.png")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def faces_of(record: dict[str, Any]) -> list[tuple[str, list[int]]]:
    return [(face["label"], face["box"]) for face in record["faces"]]


@pytest.mark.parametrize(
    "compute",
    [
        {"scheduler": "synchronous"},
        {"scheduler": "threads", "num_workers": 2},
        pytest.param({"scheduler": "processes", "num_workers": 2}, marks=pytest.mark.slow),
    ],
)
def test_a_folder_gives_one_record_per_image(
    folder: Path, expected: list[tuple[str, list[int]]], compute: dict[str, Any]
) -> None:
    bag = predict_bag(folder, partition_size=2)
    assert bag.npartitions == 2
    records = {Path(r["source"]).name: r for r in bag.compute(**compute)}
    assert sorted(records) == ["astronaut.jpg", "blank.png", "copy.jpg", "corrupt.jpg"]
    assert expected and [label for label, _ in expected] == ["happy"]
    for name in ("astronaut.jpg", "copy.jpg"):
        assert records[name]["error"] is None
        assert faces_of(records[name]) == expected
    assert records["blank.png"] == {"source": str(folder / "blank.png"), "faces": [], "error": None}
    corrupt = records["corrupt.jpg"]
    assert corrupt["faces"] is None
    assert corrupt["error"].startswith(f"{folder / 'corrupt.jpg'}: not an image")


def test_uris_are_read_through_fsspec(expected: list[tuple[str, list[int]]]) -> None:
    memory = fsspec.filesystem("memory")
    memory.pipe("/scale-test/photos/astronaut.jpg", EXAMPLE.read_bytes())
    memory.pipe("/scale-test/photos/corrupt.jpg", b"\xff\xd8\xff\x00not a jpeg")
    memory.pipe("/scale-test/photos/notes.txt", b"not an image")
    try:
        sources = [
            "memory://scale-test/photos",
            "memory://scale-test/missing.jpg",
            EXAMPLE.as_uri(),
        ]
        records = predict_bag(sources).compute(scheduler="synchronous")
    finally:
        memory.rm("/scale-test", recursive=True)
    by_source = {r["source"]: r for r in records}
    assert list(by_source) == [
        "memory:///scale-test/photos/astronaut.jpg",
        "memory:///scale-test/photos/corrupt.jpg",
        "memory://scale-test/missing.jpg",
        EXAMPLE.as_uri(),
    ]
    assert faces_of(by_source["memory:///scale-test/photos/astronaut.jpg"]) == expected
    assert faces_of(by_source[EXAMPLE.as_uri()]) == expected
    corrupt = by_source["memory:///scale-test/photos/corrupt.jpg"]["error"]
    assert corrupt.startswith("memory:///scale-test/photos/corrupt.jpg: not an image")
    missing = by_source["memory://scale-test/missing.jpg"]
    assert missing["faces"] is None
    assert missing["error"].startswith("memory://scale-test/missing.jpg: cannot read")


def test_a_folder_or_pattern_without_images_gives_one_error_record(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    named = [tmp_path / "empty", str(tmp_path / "*.png")]
    records = predict_bag(named).compute(scheduler="synchronous")
    assert records == [
        {"source": str(source), "faces": None, "error": f"{source}: no image files found"}
        for source in named
    ]


def test_bad_arguments_and_a_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="partition_size must be at least 1"):
        predict_bag([EXAMPLE], partition_size=0)
    monkeypatch.setitem(sys.modules, "dask.bag", None)  # import dask.bag now fails
    with pytest.raises(ConfigError, match=r"needs the dask extra: pip install 'attnfer\[dask\]'"):
        predict_bag([EXAMPLE])
