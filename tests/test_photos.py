"""The photo path: framing read from model files and applied, photo sets, evaluate --faces."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import typer
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from attnfer.cli.data import photo_crops, photos
from attnfer.cli.framing import framing
from attnfer.cli.train import evaluate
from attnfer.data.dataset import FaceDataset
from attnfer.data.readers import load_dataset
from attnfer.errors import ModelError
from attnfer.faces import LEGACY_FRAMING, Face, Framing, align_face, create_detector, eye_angle
from attnfer.faces.compose import GroupStyle, compose_group, compose_photo
from attnfer.faces.framing import Placement, framing_sample, measure_framing
from attnfer.photos import evaluate_photos, photo_path_crops, photo_samples, write_photo_set
from attnfer.pretrained import load_pretrained, resolve
from attnfer.recognize import Recognizer
from attnfer.train.evaluate import evaluate_model

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CKPLUS = DATASETS / "ckplus48"


def _app() -> typer.Typer:
    app = typer.Typer()
    for command in (framing, photos, evaluate):
        app.command()(command)
    app.command("photo-crops")(photo_crops)
    return app


@pytest.fixture(scope="module")
def ck_faces():
    """Two CK+48 faces per class the default model knows (12: no contempt)."""
    if not CKPLUS.is_dir():
        pytest.skip(f"CK+ crops not found at {CKPLUS}")
    data = load_dataset(CKPLUS)
    rows = np.concatenate([np.flatnonzero(data.labels == c)[5:7] for c in data.classes if c < 7])
    return data.subset(rows)


def test_framing_maps_the_box_onto_the_square_exactly() -> None:
    """framing_sample inverts Framing.square, for a tilted face too."""
    face = Face((100.0, 80.0, 180.0, 190.0), 0.9)
    placed = Placement(90.0, 70.0, 120.0)
    for angle in (0.0, 17.0, -30.0):
        scale, dx, dy = framing_sample(face, placed, angle)
        cx, cy, side = Framing(scale, dx, dy).square(face, angle)
        assert (cx, cy, side) == pytest.approx((150.0, 130.0, 120.0))
    assert LEGACY_FRAMING.square(face, 0.0) == (140.0, 135.0, 110 * 1.25)
    for bad in ((math.nan, 0, 0), (9.0, 0, 0), (1.0, 2.0, 0)):
        with pytest.raises(ModelError, match="framing"):
            Framing(*bad)


def test_measured_framing_puts_the_training_crop_back(ck_faces) -> None:
    """MTCNN on CK+ faces placed in photos: the median framing maps each detected box near the
    placed square, and its aligned crops resemble the faces themselves far more than the crops
    of the legacy framing do."""
    detector = create_detector("mtcnn")
    shots = [compose_photo(img, np.random.default_rng(k)) for k, img in enumerate(ck_faces.images)]
    measured = measure_framing(detector, shots, eye_angle)
    assert measured["found"] == measured["faces"] == len(shots)
    fit = Framing(measured["scale"], measured["dx"], measured["dy"])
    assert 0.8 < fit.scale < 1.2 and abs(fit.dx) < 0.1 and abs(fit.dy) < 0.1

    def likeness(framing: Framing) -> float:
        """Median correlation of the aligned crops with the original faces."""
        values = []
        for (photo, _), face in zip(shots, ck_faces.images, strict=True):
            (found,) = detector.detect(photo)
            crop = align_face(photo, found, 48, 1, framing).astype(np.float32)
            values.append(np.corrcoef(crop.ravel(), face.astype(np.float32).ravel())[0, 1])
        return float(np.median(values))

    assert likeness(fit) > 0.85
    assert likeness(fit) > likeness(LEGACY_FRAMING) + 0.2


def test_group_photos_hold_each_face_where_they_say() -> None:
    """Faces of a group photo lie where their placements say (the crop resized there), none
    overlapping with its margin; the same seed gives the same photo; bad ranges are refused."""
    crops = np.random.default_rng(0).integers(0, 256, (12, 48, 48), dtype=np.uint8)
    style = GroupStyle(min_side=1280, max_side=1600, min_px=24, max_px=200, colour=0.0)
    photo, placed = compose_group(crops, np.random.default_rng([1, 2]), style)
    height, width = photo.shape[:2]
    assert 1280 <= width <= 1600 and height == width * 3 // 4
    assert all(p is not None for p in placed)
    for crop, p in zip(crops, placed, strict=True):
        x, y, side = int(p.x), int(p.y), int(p.side)
        assert 24 <= side <= 200 and x + side <= width and y + side <= height
        resample = cv2.INTER_AREA if side < 48 else cv2.INTER_CUBIC
        expected = cv2.resize(crop, (side, side), interpolation=resample).astype(int)
        assert np.abs(photo[y : y + side, x : x + side, 0].astype(int) - expected).max() <= 1
    for i, a in enumerate(placed):
        for b in placed[i + 1 :]:
            gap = max(a.side, b.side) / 2
            apart_x = a.x + a.side + gap <= b.x or b.x + b.side + gap <= a.x
            apart_y = a.y + a.side + gap <= b.y or b.y + b.side + gap <= a.y
            assert apart_x or apart_y
    again, _ = compose_group(crops, np.random.default_rng([1, 2]), style)
    assert np.array_equal(photo, again)
    crowded, spots = compose_group(
        np.repeat(crops, 20, axis=0), np.random.default_rng(3), GroupStyle(1280, 1280, 200, 240)
    )
    assert None in spots and crowded.shape == (960, 1280, 3)  # no room left for some faces
    with pytest.raises(ValueError, match="face sides"):
        GroupStyle(min_px=300, max_px=200)


def _with_framing(tmp_path: Path, framing_value) -> Path:
    """The shipped default re-saved with ``framing_value`` as its framing metadata."""
    source = resolve("default")
    from safetensors import safe_open

    with safe_open(str(source), "pt") as f:
        meta = dict(f.metadata())
    meta["framing"] = json.dumps(framing_value)
    out = tmp_path / "framed.safetensors"
    save_file(load_file(str(source)), str(out), metadata=meta)
    return out


def test_framing_is_read_from_the_model_file_and_applied(tmp_path: Path) -> None:
    photo = cv2.cvtColor(cv2.imread("examples/astronaut.jpg"), cv2.COLOR_BGR2RGB)
    path = _with_framing(tmp_path, {"mtcnn": {"scale": 0.9, "dx": 0.02, "dy": -0.05, "n": 3}})
    assert load_pretrained(path).framing_for("mtcnn") == Framing(0.9, 0.02, -0.05)
    assert load_pretrained(path).framing_for("yunet") == LEGACY_FRAMING  # not named: the default
    framed = Recognizer(path, detector="mtcnn", bf16=False)
    assert framed.framing == Framing(0.9, 0.02, -0.05)
    ((face, crop),) = framed.locate(photo)
    assert np.array_equal(crop, align_face(photo, face, 48, 1, Framing(0.9, 0.02, -0.05)))
    assert not np.array_equal(crop, align_face(photo, face, 48, 1, LEGACY_FRAMING))
    (tmp_path / "old").mkdir()
    legacy = _with_framing(tmp_path / "old", {})
    assert Recognizer(legacy, detector="mtcnn").framing == LEGACY_FRAMING


def test_shipped_models_carry_a_measured_framing() -> None:
    for name in ("default", "fast"):
        pre = load_pretrained(name)
        for detector in ("mtcnn", "yunet", "retinaface"):
            fit = pre.framing_for(detector)
            assert fit != LEGACY_FRAMING and 0.8 < fit.scale < 1.15, (name, detector)
            assert pre.framing[detector]["found"] > 0.85 * pre.framing[detector]["faces"]


def test_onnx_export_keeps_the_framing(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from attnfer.export import export_model

    onnx = export_model("default", tmp_path / "m.onnx")
    recognizer = Recognizer(str(onnx), detector="mtcnn")  # an .onnx file picks onnxruntime
    assert recognizer.backend == "onnx"
    assert recognizer.framing == load_pretrained("default").framing_for("mtcnn")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"mtcnn": {"scale": "wide"}}, "needs scale, dx, dy"),
        ({"mtcnn": {"scale": 40, "dx": 0, "dy": 0}}, "framing out of range"),
        ([1, 2], "framing must be a mapping"),
    ],
)
def test_malformed_framing_is_refused(tmp_path: Path, value, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        load_pretrained(_with_framing(tmp_path, value))


def _resaved(tmp_path: Path, change) -> Path:
    from safetensors import safe_open

    with safe_open(str(resolve("fast")), "pt") as f:
        meta = dict(f.metadata())
    state = load_file(str(resolve("fast")))
    change(meta, state)
    out = tmp_path / "changed.safetensors"
    save_file(state, str(out), metadata=meta)
    return out


def test_untrusted_model_files_get_one_line_errors(tmp_path: Path) -> None:
    def huge(meta, state):
        meta["preprocess"] = json.dumps({"size": 50000, "channels": 1, "mean": 0.5, "std": 0.5})

    def kwargs(meta, state):
        meta["model_kwargs"] = json.dumps({**json.loads(meta["model_kwargs"]), "wings": 2})

    def nan(meta, state):
        state["classifier.weight"] = torch.full_like(state["classifier.weight"], math.nan)

    def arch(meta, state):
        meta["arch"] = "os.system"

    cases = {
        huge: "preprocessing asks for 50000 px",
        kwargs: "model_kwargs do not fit resnet10 .*'wings'",
        nan: "NaN or infinite values",
        arch: "unknown architecture 'os.system'",
    }
    for change, message in cases.items():
        with pytest.raises(ModelError, match=message) as caught:
            load_pretrained(_resaved(tmp_path, change))
        assert "\n" not in str(caught.value)


def test_photo_set_and_evaluate_faces_detect(ck_faces, tmp_path: Path) -> None:
    """A photo set of 12 CK+ faces: its manifest says where each face is, the photo path finds
    every face, and its accuracy is reported per detector by the CLI as by the library."""
    manifest = write_photo_set(ck_faces, tmp_path / "set", seed=3)
    rows = list(csv.DictReader(manifest.open()))
    assert len(rows) == len(ck_faces)
    for row in rows[:3]:
        photo = cv2.imread(str(tmp_path / "set" / row["file"]), cv2.IMREAD_GRAYSCALE)
        x, y, side = (int(float(row[k])) for k in ("x", "y", "side"))
        face = cv2.resize(photo[y : y + side, x : x + side], (48, 48), interpolation=cv2.INTER_AREA)
        original = ck_faces.images[int(row["row"])].astype(np.float32)
        assert np.corrcoef(face.ravel().astype(np.float32), original.ravel())[0, 1] > 0.95
    again = write_photo_set(ck_faces, tmp_path / "again", seed=3)
    assert again.read_text() == manifest.read_text()

    samples = photo_samples(tmp_path / "set")
    recognizer = Recognizer("default", detector="mtcnn", faces="detect", bf16=False)
    report = evaluate_photos(recognizer, samples)
    assert report["photos"] == report["found"] == len(ck_faces)
    pre = load_pretrained("default")
    crops = evaluate_model(pre.model, pre.preprocess, pre.label_names, ck_faces)
    assert abs(report["accuracy"] - crops["accuracy"]) <= 3 / len(ck_faces)

    args = ["evaluate", "default", "--data", str(tmp_path / "set"), "--split", "all"]
    args += ["--balance", str(recognizer.balance), "--tta", recognizer.tta]  # evaluate: as trained
    result = CliRunner().invoke(_app(), [*args, "--faces", "detect", "--detector", "mtcnn"])
    assert result.exit_code == 0, result.output
    assert f"mtcnn: 12 photos, accuracy {100 * report['accuracy']:.2f}%" in result.output


def test_photos_and_framing_commands(ck_faces, tmp_path: Path) -> None:
    """attnfer data photos writes a set; attnfer framing measures one detector on a data set's
    faces and writes it into a copy of the model, the other detectors' framings kept."""
    source = tmp_path / "ck12.safetensors"
    ck_faces.save(source)
    runner = CliRunner()
    out = tmp_path / "set"
    result = runner.invoke(_app(), ["photos", str(source), "--out", str(out), "--split", "all"])
    assert result.exit_code == 0, result.output
    assert len(list(out.rglob("*.jpg"))) == 12 and "photos.csv" in result.output
    small = tmp_path / "small"  # every face at 24 px, smaller than its 48 px crop
    args = ["photos", str(source), "--out", str(small), "--split", "all", "--face-px", "24"]
    assert runner.invoke(_app(), args).exit_code == 0
    rows = list(csv.DictReader((small / "photos.csv").open()))
    assert {int(r["side"]) for r in rows} == {24}
    first = cv2.imread(str(small / rows[0]["file"]), cv2.IMREAD_GRAYSCALE)
    x, y = int(rows[0]["x"]), int(rows[0]["y"])
    shrunk = cv2.resize(
        ck_faces.images[int(rows[0]["row"])], (24, 24), interpolation=cv2.INTER_AREA
    )
    placed = first[y : y + 24, x : x + 24].ravel().astype(np.float32)
    assert np.corrcoef(placed, shrunk.ravel().astype(np.float32))[0, 1] > 0.95
    refused = runner.invoke(_app(), [*args[:-1], "4"])
    assert refused.exit_code == 2 and "face_px must be 8 to 320 pixels, got 4" in refused.output
    model = tmp_path / "framed.safetensors"
    args = ["framing", "fast", "--data", str(source), "--split", "all", "--faces", "12"]
    result = runner.invoke(_app(), [*args, "--detectors", "mtcnn", "--out", str(model), "--half"])
    assert result.exit_code == 0, result.output
    assert "mtcnn: scale" in result.output and "found 12 of 12" in result.output
    framed, shipped = load_pretrained(model), load_pretrained("fast")
    assert framed.framing["mtcnn"] != shipped.framing["mtcnn"]
    assert framed.framing["retinaface"] == shipped.framing["retinaface"]
    expected = {"data": "ckplus48", "split": "all", "faces": 12, "seed": 0}
    assert framed.info["framing_data"] == expected


def test_photo_path_crops_train_on_what_the_pipeline_sees(ck_faces, tmp_path: Path) -> None:
    """Each face as the pipeline crops it from a photo: same labels, close to the original crop,
    and `data photo-crops --with-crops` packs both, each split holding both."""
    recognizer = Recognizer("default", detector="mtcnn", faces="detect")
    crops, missed = photo_path_crops(ck_faces, recognizer, seed=1)
    assert missed == 0 and np.array_equal(crops.labels, ck_faces.labels)
    likeness = [
        np.corrcoef(a.ravel().astype(np.float32), b.ravel().astype(np.float32))[0, 1]
        for a, b in zip(crops.images, ck_faces.images, strict=True)
    ]
    assert np.median(likeness) > 0.8
    source = tmp_path / "ck12.safetensors"
    data = ck_faces.subset(range(len(ck_faces)))
    data.splits = {"train": np.arange(8), "val": np.arange(8, 12)}
    data.save(source)
    out = tmp_path / "both.safetensors"
    args = ["photo-crops", str(source), "--out", str(out), "--detector", "mtcnn", "--with-crops"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "the detector missed 0 faces" in result.output
    both = FaceDataset.load(out)
    assert len(both) == 24 and both.splits["train"].tolist() == [*range(8), *range(12, 20)]
    assert np.array_equal(both.images[:12], data.images)
