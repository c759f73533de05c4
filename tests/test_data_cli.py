"""``attnfer data info|pack`` on a small tree written here and on ../shared/datasets."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from attnfer.cli.data import data_app
from attnfer.data.dataset import FaceDataset
from attnfer.data.readers import load_dataset

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(data_app, [str(a) for a in args])


def row(output: str, label: str) -> list[str]:
    """The cells of a table row, by its first cell."""
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]
        if cells and cells[0] == label:
            return cells[1:]
    raise AssertionError(f"no row {label!r} in:\n{output}")


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "faces"
    for split, label, n in [("train", "happy", 3), ("train", "sadness", 2), ("test", "happy", 1)]:
        for i in range(n):
            path = root / split / label / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("L", (12, 12), 40 * i).save(path)
    (root / "test" / "happy" / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def test_info_counts_per_split_and_label(tree):
    result = invoke("info", tree)
    assert result.exit_code == 0, result.output
    assert row(result.output, "label") == ["train", "test", "total"]
    assert row(result.output, "happy") == ["3", "1", "4"]
    assert row(result.output, "sad") == ["2", "0", "2"]
    assert row(result.output, "total") == ["5", "1", "6"]
    assert "size: 12x12 (width x height), channels: 1 (gray as decoded" in result.output
    assert "1 bad samples skipped" in result.output and "broken.png" in result.output


def test_info_says_width_by_height_and_the_colour_of_rgb_images(tmp_path):
    for i in range(2):
        path = tmp_path / "faces" / "train" / "happy" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 12), (200, 40 * i, 0)).save(path)
    gray = invoke("info", tmp_path / "faces")
    assert "size: 16x12 (width x height), channels: 1 (gray as decoded; --color rgb" in gray.output
    rgb = invoke("info", tmp_path / "faces", "--color", "rgb")
    assert "size: 16x12 (width x height), channels: 3 (RGB)" in rgb.output


def test_pack_then_info_on_the_packed_file(tree, tmp_path):
    out = tmp_path / "faces.safetensors"
    result = invoke("pack", tree, "--out", out, "--color", "rgb", "--size", "8")
    assert result.exit_code == 0, result.output
    assert re.search(
        r"packed 6 images \(8x8, 3 channels\) in .* s -> .*faces\.safetensors", result.output
    )
    assert re.search(r"it loads in \d+\.\d\d s", result.output)
    packed = FaceDataset.load(out)
    assert packed.images.shape == (6, 8, 8, 3)
    info = invoke("info", out)
    assert info.exit_code == 0, info.output
    assert row(info.output, "happy") == ["3", "1", "4"]
    assert "bad samples: no bad samples" in info.output


def test_pack_some_splits_compressed(tree, tmp_path):
    out = tmp_path / "train.safetensors.xz"
    result = invoke("pack", tree, "--out", out, "--splits", "train")
    assert result.exit_code == 0, result.output
    packed = load_dataset(out)
    whole = load_dataset(tree)
    assert list(packed.splits) == ["train"] and len(packed) == 5
    assert (packed.split("train").images == whole.split("train").images).all()
    assert (packed.split("train").labels == whole.split("train").labels).all()
    assert out.read_bytes()[:6] == b"\xfd7zXZ\x00"  # xz's magic: compressed on disk
    missing = invoke("pack", tree, "--out", tmp_path / "x.safetensors", "--splits", "train,val")
    assert missing.exit_code != 0 and "no split 'val'" in str(missing.exception)


def attnfer(*args) -> subprocess.CompletedProcess:
    """The real command line, as a user runs it."""
    cmd = [sys.executable, "-m", "attnfer", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_errors_are_one_line_without_traceback(tree, tmp_path):
    result = attnfer("data", "info", tmp_path / "missing")
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'missing'}: no such file or folder"
    result = attnfer("data", "info", tree, "--max-bad-samples", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "max_bad_samples=0" in result.stderr and "broken.png" in result.stderr
    result = attnfer("data", "info", tree, "--color", "blue")
    assert result.returncode == 2 and "color must be 'gray' or 'rgb'" in result.stderr


def real(name: str) -> Path:
    path = DATASETS / name
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


def test_real_ckplus48_info():
    result = invoke("info", real("ckplus48"))
    assert result.exit_code == 0, result.output
    assert "images: 981" in result.output
    assert "labels: 7 (angry, disgust, fear, happy, sad, surprise, contempt)" in result.output
    assert "subjects: 118" in result.output
    assert row(result.output, "contempt") == ["54"]


@pytest.mark.slow
def test_real_fer2013_pack_and_info(tmp_path):
    out = tmp_path / "fer2013.safetensors"
    result = invoke("pack", real("fer2013"), "--out", out)
    assert result.exit_code == 0, result.output
    print(result.output)
    info = invoke("info", out)
    assert info.exit_code == 0, info.output
    print(info.output)
    assert row(info.output, "total") == ["28,709", "3,589", "3,589", "35,887"]
    assert row(info.output, "disgust") == ["436", "56", "55", "547"]
    assert row(info.output, "happy") == ["7,215", "895", "879", "8,989"]
    assert "size: 48x48 (width x height), channels: 1" in info.output
