"""Recognizer and the predict/export commands on real faces, bad files and every input type."""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import typer
from PIL import ExifTags, Image
from safetensors import safe_open
from typer.testing import CliRunner

from attnfer.cli.predict import export, predict
from attnfer.data.decode import decode_image
from attnfer.errors import ConfigError, DataError, ModelError
from attnfer.faces.base import iou_matrix
from attnfer.faces.images import decode
from attnfer.precision import BF16_MIN_BATCH, bf16_is_fast
from attnfer.pretrained import load_pretrained, resolve
from attnfer.recognize import FaceResult, Recognizer
from attnfer.train.evaluate import predict_proba

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut.jpg"
DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FER_TEST = DATASETS / "fer2013" / "test"
CKPLUS = DATASETS / "ckplus48"
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.fixture(scope="module")
def model_path() -> str:
    """The shipped default model."""
    return "default"


@pytest.fixture(scope="module")
def recognizer(model_path: str) -> Recognizer:
    """PyTorch in fp32 without test-time augmentation, as trained (no class balance): evaluate's
    numbers."""
    return Recognizer(model_path, backend="torch", tta="none", bf16=False, balance=0)


@pytest.fixture(scope="module")
def fer_files() -> list[Path]:
    if not FER_TEST.is_dir():
        pytest.skip(f"FER2013 test split not found at {FER_TEST}")
    return [f for label in LABELS for f in sorted((FER_TEST / label).glob("*.jpg"))[:2]]


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(predict)
    app.command()(export)
    return app


def _probs(faces: list[FaceResult]) -> np.ndarray:
    return np.array([list(f.probabilities.values()) for f in faces])


def test_fer2013_crops_match_evaluate(model_path: str, recognizer, fer_files) -> None:
    """predict_crops and predict on files give evaluate's numbers (predict_proba), TTA too."""
    images = np.stack([decode_image(f, "gray") for f in fer_files])
    pre = load_pretrained(model_path)
    expected = predict_proba(pre.model, pre.preprocess, images)
    got = recognizer.predict_crops(images)
    assert np.abs(_probs(got) - expected).max() < 1e-6
    assert [f.label for f in got] == [LABELS[i] for i in expected.argmax(1)]
    assert got[0].box == (0, 0, 48, 48) and got[0].score is None
    by_file = recognizer.predict_batch(fer_files[:7])  # faces="auto": 48 px images are crops
    assert np.abs(np.concatenate([_probs(r) for r in by_file]) - expected[:7]).max() < 1e-6
    flip = predict_proba(pre.model, pre.preprocess, images[:4], tta="flip")
    tta = Recognizer(model_path, faces="crop", tta="flip", backend="torch", bf16=False, balance=0)
    assert np.abs(_probs(tta.predict_crops(list(fer_files[:4]))) - flip).max() < 1e-6


def test_bf16_keeps_the_labels(model_path: str, recognizer, fer_files) -> None:
    """bf16 autocast (the default where the CPU runs it fast) changes probabilities slightly."""
    expected = recognizer.predict_crops(fer_files)
    got = Recognizer(model_path, faces="crop", tta="none", bf16=True, balance=0).predict_crops(
        fer_files
    )
    gap = np.abs(_probs(got) - _probs(expected)).max()
    assert 0 < gap < 0.05, f"largest probability change {gap}"
    agree = [a.label == b.label for a, b in zip(got, expected, strict=True)]
    assert sum(agree) >= len(agree) - 1
    pre = load_pretrained(model_path)  # evaluate --bf16 computes the same
    images = np.stack([decode_image(f, "gray") for f in fer_files])
    same = predict_proba(pre.model, pre.preprocess, images, bf16=True)
    assert np.abs(_probs(got) - same).max() < 1e-4


def test_automatic_precision_keeps_fp32_for_few_crops(model_path: str, recognizer) -> None:
    """bf16=None: fewer than BF16_MIN_BATCH crops a call run fp32, more bf16 where it is fast."""
    crops = np.random.default_rng(0).integers(0, 256, (BF16_MIN_BATCH, 48, 48), dtype=np.uint8)
    auto = Recognizer(model_path, faces="crop", backend="torch", tta="none", balance=0)
    few = BF16_MIN_BATCH - 1
    assert np.array_equal(auto.probabilities(crops[:few]), recognizer.probabilities(crops[:few]))
    many, fp32 = auto.probabilities(crops), recognizer.probabilities(crops)
    if bf16_is_fast(torch.device("cpu")):
        assert 0 < np.abs(many - fp32).max() < 0.05
    else:
        assert np.array_equal(many, fp32)


def test_every_face_found_and_classified(recognizer) -> None:
    if not CKPLUS.is_dir():
        pytest.skip(f"CK+ crops not found at {CKPLUS}")
    photo = np.full((420, 760, 3), 150, np.uint8)
    truth = []
    for k, label in enumerate(("anger", "disgust", "fear", "happy", "sadness", "surprise")):
        files = sorted((CKPLUS / label).glob("*.png"))
        face = Image.open(files[len(files) // 3]).convert("RGB").resize((160, 160), Image.BICUBIC)
        x, y = 40 + (k % 3) * 240, 40 + (k // 3) * 200
        photo[y : y + 160, x : x + 160] = np.asarray(face)
        truth.append((x, y, x + 160, y + 160))
    faces = recognizer.predict(photo)
    assert len(faces) == 6
    for box in truth:
        best = iou_matrix([f.box for f in faces], [box]).max()
        assert best >= 0.5, f"face at {box}: best overlap {best:.2f}"
    crops = [photo[y1:y2, x1:x2] for x1, y1, x2, y2 in truth]
    assert len(recognizer.predict_crops(crops)) == 6
    for face in faces:
        assert set(face.probabilities) == set(LABELS)
        assert sum(face.probabilities.values()) == pytest.approx(1, abs=1e-5)
        assert face.label == max(face.probabilities, key=face.probabilities.get)
        assert len(face.landmarks) == 5 and 0 < face.score <= 1
        assert json.loads(json.dumps(face.to_dict()))["label"] == face.label


def _big_jpeg(image: np.ndarray, long_side: int) -> bytes:
    """``image`` enlarged to ``long_side`` (its longer side), as JPEG bytes."""
    height, width = image.shape[:2]
    size = (
        round(width * long_side / max(height, width)),
        round(height * long_side / max(height, width)),
    )
    ok, data = cv2.imencode(
        ".jpg", cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)[..., ::-1]
    )
    assert ok
    return data.tobytes()


@pytest.mark.slow
def test_large_jpegs_decode_reduced_and_report_the_files_pixels(recognizer) -> None:
    """A JPEG over twice the detector's max_side decodes at 1/2, 1/4 or 1/8 of its size, no
    smaller than that; its faces and boxes are those of the full decode, in the file's pixels."""
    photo = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    data = _big_jpeg(photo, 4000)  # 4000 px: decoded at 2000, twice the 960 px detection side
    full = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    decoded = decode(data, 1920)
    reduced, factor = decoded.image, decoded.reduction
    assert factor == 2 and max(reduced.shape[:2]) == 2000 and max(full.shape[:2]) == 4000
    assert decoded.size == (full.shape[1], full.shape[0])  # the file's size, not the decoded one
    shrunk = cv2.resize(full, reduced.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk.astype(int) - reduced).mean() < 3  # the same picture
    assert decode(data, 2001).reduction == 1 and decode(data, None).reduction == 1
    assert decode(_big_jpeg(photo, 8000), 1920).reduction == 4
    png = cv2.imencode(".png", full)[1].tobytes()
    assert decode(png, 1920).reduction == 1  # only JPEGs have reduced scales
    assert decode(decoded, None) is decoded
    from_file, from_full = recognizer.predict(data), recognizer.predict(full)
    assert len(from_file) == len(from_full) >= 1
    for a, b in zip(from_file, from_full, strict=True):
        assert iou_matrix([a.box], [b.box])[0, 0] > 0.9 and a.label == b.label


def test_a_sideways_jpeg_reports_its_upright_size() -> None:
    """EXIF orientation 6 (turned a quarter): decoded upright, at either scale, and its size is the
    upright one."""
    photo = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    buffer = io.BytesIO()
    Image.fromarray(cv2.resize(photo, (4000, 3000))).save(buffer, "JPEG", exif=exif)
    for side, reduction in ((None, 1), (1920, 2)):
        decoded = decode(buffer.getvalue(), side)
        assert decoded.size == (3000, 4000) and decoded.reduction == reduction
        assert decoded.image.shape[:2] == (4000 // reduction, 3000 // reduction)


def test_input_types_agree(recognizer) -> None:
    rgb = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    inputs = {
        "path": str(EXAMPLE),
        "Path": EXAMPLE,
        "bytes": EXAMPLE.read_bytes(),
        "PIL": Image.open(EXAMPLE),
        "RGB": rgb,
        "RGBA": np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
        "uint16": rgb.astype(np.uint16) * 257,
        "float": rgb / 255.0,
    }
    results = dict(zip(inputs, recognizer.predict_batch(inputs.values()), strict=True))
    reference = results["path"]
    assert len(reference) == 1
    for name, faces in results.items():
        assert [f.box for f in faces] == [reference[0].box], name
        assert np.abs(_probs(faces) - _probs(reference)).max() < 1e-6, name
    gray = recognizer.predict(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    assert len(gray) == 1 and iou_matrix([gray[0].box], [reference[0].box])[0, 0] >= 0.5


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels (its data is not all there)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    """A text file named .jpg, a truncated JPEG, a 0-byte file and a 20000 x 20000 PNG."""
    files = {
        "text": tmp_path / "notes.jpg",
        "truncated": tmp_path / "truncated.jpg",
        "empty": tmp_path / "empty.jpg",
        "huge": tmp_path / "huge.png",
    }
    files["text"].write_text("this is not a picture\n")
    data = EXAMPLE.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["empty"].write_bytes(b"")
    files["huge"].write_bytes(_png_header(20000, 20000))
    return files


MESSAGES = {
    "text": "not an image",
    "truncated": "truncated",
    "empty": "empty file (0 bytes)",
    "huge": "400.0 MP is above the limit",
}


def test_bad_inputs_give_clear_errors_and_the_rest_goes_on(recognizer, bad_files) -> None:
    for kind, path in bad_files.items():
        with pytest.raises(DataError, match=re.escape(MESSAGES[kind])) as caught:
            recognizer.predict(path)
        assert str(path) in str(caught.value)
    batch = [EXAMPLE, *bad_files.values(), EXAMPLE.read_bytes()]
    results = recognizer.predict_batch(batch)
    assert len(results[0]) == 1 and len(results[-1]) == 1
    for (kind, path), result in zip(bad_files.items(), results[1:-1], strict=True):
        assert isinstance(result, DataError) and MESSAGES[kind] in str(result)
        assert str(path) in str(result)
    with pytest.raises(DataError, match="image bytes: empty data"):
        recognizer.predict(b"")


def test_pixel_limit_is_checked_before_decoding(model_path: str) -> None:
    strict = Recognizer(model_path, max_pixels=100_000)
    with pytest.raises(DataError, match=r"512 x 512 pixels \(0.3 MP\) is above the limit"):
        strict.predict(EXAMPLE)


def test_no_face_is_invented(model_path: str, recognizer) -> None:
    """Without a detected face there is no result, unless the image is crop-sized or the caller
    says it is a crop; every result says whether its box was detected."""
    rng = np.random.default_rng(0)
    landscape = cv2.GaussianBlur(rng.integers(0, 256, (400, 600, 3), dtype=np.uint8), (31, 31), 9)
    assert recognizer.predict(landscape) == []  # a photo: detection only, nothing found
    blue = np.zeros((300, 300, 3), np.uint8)
    blue[..., 2] = 255
    assert recognizer.predict(blue) == []  # once 'angry 34.6 %'
    assert recognizer.predict(landscape[:200, :200]) == []
    (crop,) = Recognizer(model_path, faces="crop").predict(blue)
    assert crop.detected is False and crop.score is None and crop.box == (0, 0, 300, 300)
    (small,) = recognizer.predict(landscape[:100, :120])  # auto: crop-sized, taken whole
    assert small.detected is False and small.to_dict()["detected"] is False
    assert recognizer.predict(landscape[:10, :500]) == []  # a strip is not a face crop
    assert recognizer.predict(landscape[:100, :201]) == []  # nor wider than twice its height
    assert recognizer.predict(landscape[:8, :8]) == []  # nor a few pixels
    (edge,) = recognizer.predict(landscape[:16, :32])  # the smallest and longest crop taken whole
    assert edge.detected is False and edge.box == (0, 0, 32, 16)
    (found,) = recognizer.predict(EXAMPLE)
    assert found.detected is True and found.to_dict()["detected"] is True


def test_opencv_bgr_frames(recognizer) -> None:
    """cv2.imread's BGR array with bgr=True gives the RGB file's result; without it, the colours
    are swapped and the probabilities move."""
    bgr = cv2.imread(str(EXAMPLE))
    expected = recognizer.predict(EXAMPLE)
    got = recognizer.predict(bgr, bgr=True)
    assert [f.box for f in got] == [f.box for f in expected]
    assert np.abs(_probs(got) - _probs(expected)).max() < 1e-6
    swapped = recognizer.predict(bgr)
    assert not swapped or np.abs(_probs(swapped)[:1] - _probs(expected)[:1]).max() > 1e-3
    (batch,) = recognizer.predict_batch([bgr], bgr=True)
    assert np.abs(_probs(batch) - _probs(expected)).max() < 1e-6
    bgra = cv2.imread(str(EXAMPLE), cv2.IMREAD_UNCHANGED)
    bgra = np.dstack([bgra, np.full(bgra.shape[:2], 255, np.uint8)])
    assert np.abs(_probs(recognizer.predict(bgra, bgr=True)) - _probs(expected)).max() < 1e-6


def test_bad_settings(model_path: str) -> None:
    with pytest.raises(ConfigError, match="faces must be one of auto, crop, detect"):
        Recognizer(model_path, faces="all")
    with pytest.raises(ConfigError, match="backend must be one of auto, torch, onnx"):
        Recognizer(model_path, backend="tflite")
    with pytest.raises(ConfigError, match="tta must be one of"):
        Recognizer(model_path, tta="many")


@pytest.fixture(scope="module")
def onnx_file(model_path: str, tmp_path_factory) -> Path:
    """The model exported by ``attnfer export``."""
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    result = CliRunner().invoke(_app(), ["export", "--model", model_path, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_onnx_matches_torch(model_path: str, recognizer, onnx_file: Path, fer_files) -> None:
    """An exported .onnx file runs in onnxruntime whatever the backend asked (one rule for .onnx
    everywhere), as does any model with backend="onnx"; both give PyTorch's numbers."""
    exported = Recognizer(model_path, backend="onnx", tta="none", balance=0)
    from_file = Recognizer(str(onnx_file), tta="none", balance=0)
    asked_torch = Recognizer(str(onnx_file), backend="torch", tta="none", balance=0)
    for onnx in (from_file, asked_torch, exported):
        assert onnx.backend == "onnx" and onnx.label_names == recognizer.label_names
        for run in (lambda r: r.predict(EXAMPLE), lambda r: r.predict_crops(fer_files)):
            expected, got = run(recognizer), run(onnx)
            assert [f.box for f in got] == [f.box for f in expected]
            assert np.abs(_probs(got) - _probs(expected)).max() < 1e-4
    assert Recognizer(model_path, bf16=True).backend == "torch"  # bf16 is PyTorch's


@pytest.mark.parametrize("name", ["default", "fast", "ensemble"])
def test_shipped_models_run_int8_on_the_cpu_with_fp32_labels(name: str, fer_files) -> None:
    """The shipped int8 files are the CPU's default and label faces as the fp32 weights do."""
    int8 = Recognizer(name, faces="crop")
    fp32 = Recognizer(name, faces="crop", backend="torch", bf16=False)
    assert int8.backend == "int8" and Recognizer(name, faces="crop", bf16=True).backend == "torch"
    got, expected = int8.predict_crops(fer_files), fp32.predict_crops(fer_files)
    assert np.abs(_probs(got) - _probs(expected)).max() < 0.15
    agree = sum(a.label == b.label for a, b in zip(got, expected, strict=True))
    assert agree >= 0.9 * len(fer_files)
    assert int8.framing == fp32.framing and int8.preprocess == fp32.preprocess


def test_int8_backend_is_for_shipped_models(tmp_path: Path) -> None:
    path = tmp_path / "mine.safetensors"  # the same weights, not under a shipped name
    path.write_bytes(resolve("fast").read_bytes())
    assert Recognizer(str(path), faces="crop").backend == "onnx"
    with pytest.raises(ConfigError, match="attnfer export MODEL --calibrate DATA"):
        Recognizer(str(path), backend="int8")


def test_onnx_backend_caches_its_export(model_path: str, monkeypatch, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("ATTNFER_CACHE", str(tmp_path))
    first = Recognizer(model_path, backend="onnx", faces="crop")
    (cached,) = (tmp_path / "onnx").glob("*.onnx")
    stamp = cached.stat().st_mtime_ns
    second = Recognizer(model_path, backend="onnx", faces="crop")
    assert cached.stat().st_mtime_ns == stamp  # reused, not exported again
    crop = np.zeros((48, 48), np.uint8)
    assert _probs(first.predict_crops([crop])) == pytest.approx(
        _probs(second.predict_crops([crop]))
    )


def test_predict_cli_skips_a_bad_file(model_path: str, fer_files, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(EXAMPLE, folder / "astronaut.jpg")
    shutil.copy(fer_files[0], folder / "sub" / "crop.jpg")
    (folder / "sub" / "broken.jpg").write_text("not a picture")
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    annotated = tmp_path / "annotated"
    args = ["predict", str(folder), "--model", model_path, "--json"]
    result = CliRunner().invoke(_app(), [*args, "--save-annotated", str(annotated)])
    assert result.exit_code == 1, result.output  # some inputs failed
    assert "broken.jpg: not an image" in result.stderr
    records = json.loads(result.stdout)
    assert sorted(Path(r["file"]).name for r in records) == ["astronaut.jpg", "crop.jpg"]
    assert all(len(r["faces"]) == 1 for r in records)
    assert sorted(p.name for p in annotated.iterdir()) == ["astronaut.jpg", "crop.jpg"]

    wide = CliRunner(env={"COLUMNS": "200"})
    table = wide.invoke(_app(), ["predict", str(folder / "*.jpg"), "--model", model_path])
    assert table.exit_code == 0 and "astronaut.jpg" in table.stdout
    rows = CliRunner().invoke(_app(), ["predict", str(EXAMPLE), "--model", model_path, "--csv"])
    header, row = rows.stdout.strip().splitlines()
    assert header.split(",")[-7:] == list(LABELS) and row.startswith(str(EXAMPLE))
    for balance in ("0", "1"):  # --balance as Recognizer(balance=) gives them
        args = ["predict", str(EXAMPLE), "--model", model_path, "--csv", "--balance", balance]
        got = CliRunner().invoke(_app(), args).stdout.strip().splitlines()[1].split(",")[-7:]
        (face,) = Recognizer(model_path, balance=float(balance)).predict(EXAMPLE)
        assert [float(p) for p in got] == pytest.approx(list(face.probabilities.values()), abs=1e-3)

    only_bad = ["predict", str(folder / "sub" / "broken.jpg"), "--model", model_path]
    broken = CliRunner().invoke(_app(), only_bad)
    assert broken.exit_code == 1 and "0 images, 0 faces, 1 skipped" in broken.stderr


def test_import_stays_light() -> None:
    code = (
        "import sys, attnfer; assert 'torch' not in sys.modules; "
        "assert attnfer.Recognizer.__name__ == 'Recognizer'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_half_export_halves_the_file_and_keeps_the_predictions(
    recognizer, model_path: str, fer_files, tmp_path: Path
) -> None:
    files = {}
    for flag in ("--half", "--no-half"):
        files[flag] = out = tmp_path / f"{flag}.safetensors"
        args = ["export", "--model", model_path, "--format", "safetensors", flag, "--out", str(out)]
        result = CliRunner().invoke(_app(), args)
        assert result.exit_code == 0, result.output
    with safe_open(str(files["--half"]), framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} <= {torch.float16, torch.int64}  # noqa: SIM118
    assert files["--half"].stat().st_size < 0.6 * files["--no-half"].stat().st_size
    half = Recognizer(str(files["--half"]), tta="none", bf16=False, balance=0)
    assert half.label_names == recognizer.label_names
    expected, got = recognizer.predict_crops(fer_files), half.predict_crops(fer_files)
    assert [f.label for f in got] == [f.label for f in expected]
    assert np.abs(_probs(got) - _probs(expected)).max() < 0.02


def test_export_calibrate_writes_an_int8_file_that_runs_with_its_metadata(
    tmp_path: Path, fer_files
) -> None:
    """``attnfer export --calibrate DATA`` quantizes on DATA's faces and keeps what the
    Recognizer reads (labels, preprocessing, framing); the file labels faces as fp32 does."""
    data = tmp_path / "faces"
    for f in fer_files:
        (data / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, data / f.parent.name / f.name)
    out = tmp_path / "fast.int8.onnx"
    args = ["export", "--model", "fast", "--out", str(out), "--calibrate", str(data)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    fp32_file = tmp_path / "fast.onnx"
    assert (
        CliRunner().invoke(_app(), ["export", "--model", "fast", "--out", str(fp32_file)]).exit_code
        == 0
    )
    assert out.stat().st_size < 0.5 * fp32_file.stat().st_size  # int8 weights
    int8 = Recognizer(str(out), faces="crop", tta="none")
    fp32 = Recognizer("fast", faces="crop", backend="torch", tta="none", bf16=False)
    assert int8.backend == "onnx" and int8.label_names == fp32.label_names
    assert int8.classifier.framings == fp32.classifier.framings
    agree = sum(a.label == b.label for a, b in zip(
        int8.predict_crops(fer_files), fp32.predict_crops(fer_files), strict=True
    ))  # fmt: skip
    assert agree >= 0.8 * len(fer_files)


def test_export_calibrate_is_for_onnx(tmp_path: Path) -> None:
    args = ["export", "--model", "fast", "--format", "torchscript", "--out", str(tmp_path / "m.pt"),
            "--calibrate", str(tmp_path)]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code != 0
    assert (
        "int8 calibration is for ONNX files, not torchscript"
        in str(result.exception or "") + result.output
    )


def test_balance_divides_the_training_class_frequencies_out(tmp_path: Path) -> None:
    """balance b: each class's probability times prior ** -b, renormalised; 0 is as trained.
    The shipped models' prior is FER2013's train split; a model that records none is left as
    trained, and one that records a malformed prior is refused naming its file."""
    from attnfer.pretrained import FER2013_TRAIN_COUNTS, save_pretrained

    crops = np.random.default_rng(0).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    trained = Recognizer("fast", faces="crop", balance=0).probabilities(crops)
    frequencies = np.asarray(FER2013_TRAIN_COUNTS) / sum(FER2013_TRAIN_COUNTS)
    for name in ("default", "fast"):  # as recorded in training (fast) or for older files
        assert np.allclose(Recognizer(name).prior, frequencies, atol=1e-4), name
    prior = np.asarray(Recognizer("fast").prior)
    for balance in (0.5, 1.0):
        weighted = trained * prior**-balance
        expected = weighted / weighted.sum(1, keepdims=True)
        got = Recognizer("fast", faces="crop", balance=balance).probabilities(crops)
        assert np.allclose(got, expected, atol=1e-5)
    for backend in ("torch", "onnx"):  # every backend of a shipped model balances alike
        options = {"backend": backend, "faces": "crop", "bf16": False}
        as_trained = Recognizer("fast", balance=0, **options).probabilities(crops) * prior**-1
        got = Recognizer("fast", balance=1, **options).probabilities(crops)
        assert np.allclose(got, as_trained / as_trained.sum(1, keepdims=True), atol=1e-5), backend
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="balance must be a number from 0 to 1"):
            Recognizer("fast", balance=bad)
    pre = load_pretrained("fast")
    plain = save_pretrained(tmp_path / "plain.safetensors", pre.model, pre.arch, pre.label_names,
                            pre.preprocess, pre.model_kwargs, {})  # fmt: skip
    assert Recognizer(str(plain), faces="crop", balance=1).balance == 0
    # A prior the file records goes with it through ONNX export; a malformed one is refused.
    info = {"class_prior": [1, 1, 1, 4, 1, 1, 1]}
    mine = save_pretrained(tmp_path / "mine.safetensors", pre.model, pre.arch, pre.label_names,
                           pre.preprocess, pre.model_kwargs, info)  # fmt: skip
    torch_probs = Recognizer(str(mine), backend="torch", faces="crop", bf16=False).probabilities
    onnx_probs = Recognizer(str(mine), backend="onnx", faces="crop").probabilities
    assert np.allclose(torch_probs(crops), onnx_probs(crops), atol=1e-4)
    as_trained = Recognizer(str(mine), backend="onnx", faces="crop", balance=0).probabilities
    assert np.abs(onnx_probs(crops) - as_trained(crops)).max() > 0.01
    bad = save_pretrained(tmp_path / "bad.safetensors", pre.model, pre.arch, pre.label_names,
                          pre.preprocess, pre.model_kwargs, {"class_prior": [1, 0, 1]})  # fmt: skip
    with pytest.raises(ModelError, match=r"bad\.safetensors: class_prior must be 7 numbers > 0"):
        Recognizer(str(bad))
