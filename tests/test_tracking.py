"""Face tracking on a clip with known people: four CK+ faces moving across a frame, two pairs
crossing (one face hides the other for a while); the real detector runs on every frame."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attnfer.cli.video import run
from attnfer.faces import create_detector
from attnfer.faces.base import iou_matrix
from attnfer.video.io import Frame
from attnfer.video.stream import DETECT_SIDE, FaceLocator, detection_side
from attnfer.video.track import greedy_match

CKPLUS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ckplus48"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"
WIDTH, HEIGHT, SIDE, FRAMES = 640, 360, 96, 100
PEOPLE = ("happy", "surprise", "anger", "sadness")  # one CK+ face of each


def positions(k: int) -> list[tuple[int, int]]:
    """Top-left corners of the four faces in frame ``k``: 0 and 1 cross left and right on
    nearly the same row, 2 and 3 cross on diagonals."""
    t = k / (FRAMES - 1)
    span = WIDTH - SIDE - 40
    return [
        (round(20 + t * span), 40),
        (round(WIDTH - SIDE - 20 - t * span), 70),
        (round(60 + t * 400), round(220 - t * 100)),
        (round(480 - t * 300), round(130 + t * 100)),
    ]


def crossing_clip() -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(RGB frame, the true boxes of the four people) per frame."""
    if not CKPLUS.is_dir():
        pytest.skip(f"CK+ crops not found at {CKPLUS}")
    faces = []
    for label in PEOPLE:
        path = sorted((CKPLUS / label).glob("*.png"))[5]
        face = Image.open(path).convert("RGB").resize((SIDE, SIDE), Image.BICUBIC)
        faces.append(np.asarray(face))
    rng = np.random.default_rng(0)
    ramp = np.linspace(80, 180, WIDTH)[None, :, None]
    background = np.clip(ramp + rng.normal(0, 5, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
    for k in range(FRAMES):
        frame = background.copy()
        for face, (x, y) in zip(faces, positions(k), strict=True):
            frame[y : y + SIDE, x : x + SIDE] = face
        truth = np.array([(x, y, x + SIDE, y + SIDE) for x, y in positions(k)], float)
        yield frame, truth


def track_clip(every: int) -> tuple[set[int], int]:
    """The track ids shown and the ID switches: the times a person's box (matched one to one
    at IoU >= 0.3) carries another id than the last time it was matched."""
    locator = FaceLocator(create_detector("default"), every=every)
    ids: set[int] = set()
    last: dict[int, int] = {}
    switches = 0
    for k, (frame, truth) in enumerate(crossing_clip()):
        found, _ = locator.locate(Frame(k, k / 25, frame))
        ids.update(track for track, _ in found)
        boxes = np.array([face.box for _, face in found], float).reshape(-1, 4)
        for person, col in greedy_match(iou_matrix(truth, boxes), 0.3):
            track = found[col][0]
            switches += person in last and last[person] != track
            last[person] = track
    assert len(last) == len(PEOPLE), "every person was found"
    return ids, switches


@pytest.mark.parametrize("every", [2, 5])
def test_one_id_per_person_through_crossings(every: int) -> None:
    ids, switches = track_clip(every)
    assert (len(ids), switches) == (len(PEOPLE), 0)


def test_a_gallery_view_in_hd_is_found_at_the_default_side() -> None:
    """A 1920 x 1080 frame of a video call's gallery view, 5 x 5 tiles whose faces are about
    45 px: the video path (and `attnfer video`, by default) detects it at 960 px and finds every
    face, one in each tile; at 480 px, the side a 640 x 480 frame still gets, it finds none."""
    tile = np.asarray(Image.open(EXAMPLE).convert("RGB").resize((216, 216), Image.BICUBIC))
    frame = np.full((1080, 1920, 3), 40, np.uint8)
    for row in range(5):
        for col in range(5):
            x, y = col * 384 + 84, row * 216
            frame[y : y + 216, x : x + 216] = tile
    assert inspect.signature(run).parameters["detect_side"].default is None
    assert detection_side(1920, 1080) == 960 and detection_side(640, 480) == DETECT_SIDE == 480
    assert detection_side(1280, 720) == 640 and detection_side(3840, 2160) == 960
    faces = FaceLocator(create_detector()).detect(frame)
    tiles = sorted(
        (int(f.box[1] + f.box[3]) // 432, int(f.box[0] + f.box[2]) // 768) for f in faces
    )
    assert tiles == [(row, col) for row in range(5) for col in range(5)]
    assert FaceLocator(create_detector(), detect_side=480).detect(frame) == []
