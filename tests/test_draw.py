"""Annotated images of a crowd: labels and probability panels cover no other face and no other
label or panel, text is sized to the face, a compact style, track ids in video labels."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from attnfer.cli import app
from attnfer.faces.draw import label_text, layout
from attnfer.recognize import Recognizer

CKPLUS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ckplus48"
SIDES = (56, 72, 96, 128)  # face sizes in the crowd, in pixels


@pytest.fixture(scope="module")
def crowd(tmp_path_factory) -> Path:
    """A 960 x 540 photo of 16 CK+ faces of four sizes, close together in rows."""
    if not CKPLUS.is_dir():
        pytest.skip(f"CK+ crops not found at {CKPLUS}")
    files = [sorted((CKPLUS / label).glob("*.png"))[9] for label in ("happy", "surprise")]
    files += [sorted((CKPLUS / label).glob("*.png"))[9] for label in ("anger", "sadness")]
    photo = np.full((540, 960, 3), 150, np.uint8)
    y = 10
    for side, path in zip(SIDES, itertools.cycle(files)):
        face = np.asarray(Image.open(path).convert("RGB").resize((side, side), Image.BICUBIC))
        for i in range(4):
            x = 10 + i * (side + 110)
            photo[y : y + side, x : x + side] = face
        y += side + 12
    path = tmp_path_factory.mktemp("crowd") / "crowd.jpg"
    Image.fromarray(photo).save(path, quality=95)
    return path


@pytest.fixture(scope="module")
def faces(crowd: Path):
    found = Recognizer("fast", faces="detect").predict(crowd)
    assert len(found) == 16, "every face of the crowd found"
    return found


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def test_labels_and_panels_cover_no_other_face_nor_each_other(faces) -> None:
    placed = layout(faces, (960, 540), "full")
    drawn = [(i, p.label) for i, p in enumerate(placed)]
    drawn += [(i, p.panel) for i, p in enumerate(placed) if p.panel is not None]
    assert sum(p.panel is not None for p in placed) >= 4, "panels where there is room"
    for (i, rect), (j, other) in itertools.combinations(drawn, 2):
        assert _overlap(rect, other) == 0, (i, j)
    for i, rect in drawn:
        assert rect[0] >= 0 and rect[1] >= 0 and rect[2] <= 960 and rect[3] <= 540
        for j, p in enumerate(placed):
            if j != i:
                assert _overlap(rect, p.face.box) == 0, (i, j)


def test_text_is_sized_to_the_face_and_compact_has_no_panels(faces) -> None:
    placed = layout(faces, (960, 540), "compact")
    assert all(p.panel is None for p in placed)
    by_height = sorted(placed, key=lambda p: p.face.box[3] - p.face.box[1])
    sizes = [p.size for p in by_height]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]


def test_predict_writes_the_annotated_crowd_in_either_style(crowd: Path, tmp_path: Path) -> None:
    for style in ("full", "compact"):
        out = tmp_path / style
        args = ["predict", str(crowd), "--model", "fast", "--faces", "detect"]
        result = CliRunner().invoke(app, [*args, "--save-annotated", str(out), "--style", style])
        assert result.exit_code == 0, result.output
        assert Image.open(out / "crowd.jpg").size == (960, 540)
    full, compact = (
        np.asarray(Image.open(tmp_path / s / "crowd.jpg")) for s in ("full", "compact")
    )
    assert np.abs(full.astype(int) - compact).sum() > 0, "the panels drawn in full alone"


def test_a_tracked_face_is_labelled_with_its_id() -> None:
    face = SimpleNamespace(label="happy", probabilities={"happy": 0.874, "sad": 0.126})
    assert label_text(face) == "happy 87%"
    assert label_text(SimpleNamespace(**vars(face), track_id=3)) == "#3 happy 87%"
