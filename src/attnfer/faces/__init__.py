"""Faces in photos: detection (several offline back ends), alignment, image reading, drawing.

``create_detector("default").detect(rgb)`` returns :class:`Face` objects (box, score, five
landmarks); :func:`align_face` turns one into the model's input; :func:`load_image` reads any
supported input as RGB; :func:`annotate` draws results.
"""

from .align import align_face, alignment_matrix, eye_angle, fit_to_input, roll_correction
from .backends import (
    DEFAULT_DETECTOR,
    MTCNNDetector,
    RetinaFaceDetector,
    YuNetDetector,
    create_detector,
    list_detectors,
)
from .base import LANDMARK_NAMES, Detector, Face, largest
from .draw import annotate
from .framing import LEGACY_FRAMING, Framing
from .images import MAX_PIXELS, ImageInput, load_image

__all__ = [
    "DEFAULT_DETECTOR",
    "LANDMARK_NAMES",
    "LEGACY_FRAMING",
    "MAX_PIXELS",
    "Detector",
    "Face",
    "Framing",
    "ImageInput",
    "MTCNNDetector",
    "RetinaFaceDetector",
    "YuNetDetector",
    "align_face",
    "alignment_matrix",
    "annotate",
    "create_detector",
    "eye_angle",
    "fit_to_input",
    "largest",
    "list_detectors",
    "load_image",
    "roll_correction",
]
