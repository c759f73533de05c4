"""Expression recognition in photos: find faces, align them, classify them in one batch.

``Recognizer()`` loads the shipped default model and the default face detector, offline::

    from attnfer import Recognizer
    faces = Recognizer().predict("photo.jpg")  # [FaceResult(box, score, landmarks, ...)]

Inputs: a path, encoded bytes, a PIL image or an array (gray, RGB, RGBA, 16-bit; see
:mod:`attnfer.faces.images`). Arrays are RGB; OpenCV's BGR frames (``cv2.imread``,
``cv2.VideoCapture``) are passed with ``bgr=True``. A file that cannot be read raises
:class:`DataError` naming it and the problem; a photo with no face gives an empty list.
``predict_batch`` never stops on one bad image: its slot holds the DataError instead of a list.

Faces (``faces=``): ``detect`` runs the detector; ``crop`` takes the whole image as one face crop
(like FER2013's 48 x 48 images); ``auto`` takes face-sized images as crops (short side 16 to
``CROP_SIDE``, 128 px, long side at most twice the short one: :func:`is_face_crop`) and detects
in the others. A face is never invented: an image where the detector finds nothing gives no
face, and every result says whether its box was detected (``detected``) or is the whole image
taken as a crop.

Large JPEG files (paths or bytes; not arrays) decode at a reduced scale (1/2, 1/4 or 1/8) that
keeps their longer side at least the side of the detector's closest look (``CLOSER``, 2, times its
``max_side``, 960: :mod:`attnfer.faces.base`): detection never runs finer than that, a face found
by the fine pass keeps at least twice its detected resolution in the crop, and a phone photo
decodes several times as fast. Boxes and landmarks are in the file's pixels all the same.

Framing: a detected box is turned into the model's input as the model's file says for that
detector (:mod:`attnfer.faces.framing`), so that a face in a photo is framed like the faces the
model was trained on.

Backends (``backend=``): ``auto`` (the default) runs the model in onnxruntime on the CPU, in
int8 where the model ships an int8 file (``default``, ``fast`` and ``ensemble``:
:data:`attnfer.pretrained.SHIPPED_INT8`; speed and accuracy in ``docs/model_card.md``) and in
fp32 otherwise, and in PyTorch on a GPU or when ``bf16=True`` asks for bf16. ``int8``, ``onnx``
(fp32) and ``torch`` ask for one. For fp32 onnxruntime a model's weights are exported once to a
cache (:func:`attnfer.export.cached_onnx`); nothing is ever written inside the installed package.
``model`` may also be an ``.onnx`` file written by ``attnfer export`` (fp32, or int8 with
``--calibrate``), which always runs in onnxruntime. onnxruntime uses as many threads as
``torch.get_num_threads()``.

Test-time augmentation (``tta=``): ``flip`` (the default) averages each face with its mirror
image in the same model call, which evens out the detector box's jitter (``docs/model_card.md``,
"Photos"); ``none`` and ``tencrop`` are the others.

Class balance (``balance=``): a model learns how often each expression occurs in its training
data (FER2013: a quarter of the faces happy, one in 66 disgusted) and its probabilities lean
towards the frequent ones. ``balance`` divides those frequencies out to the power given (each
class's probability times ``prior ** -balance``, renormalised): 0 leaves the probabilities as
trained, 1 takes every expression as equally likely before looking at the face. The default,
``BALANCE`` (0.75), was chosen on FER2013 val as the most balance that keeps its accuracy within
one standard error (``docs/model_card.md``, "Class balance"). The frequencies come from the
model's file (training records them) or, for the shipped models, FER2013's train split
(:data:`attnfer.pretrained.FER2013_TRAIN_COUNTS`); a model without them is used as trained.
``attnfer evaluate`` on crops reports the network's own probabilities, as the papers do.

Precision (``bf16=``, PyTorch only): the PyTorch backend runs the model channels-last under bf16
autocast where the hardware runs bf16 fast (None, the default; see :mod:`attnfer.precision`), for
calls of at least ``BF16_MIN_BATCH`` crops; fewer crops, such as one photo's few faces, run in
fp32, which is faster there, so a face may score slightly differently alone and among many.
``bf16=False`` gives fp32 always (with ``backend="torch"``, the numbers of ``attnfer
evaluate``); ``bf16=True``, bf16 always.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError, DataError, ModelError
from .export import cached_onnx
from .faces import Detector, Face, align_face, create_detector, fit_to_input, load_image
from .faces.base import CLOSER, MAX_SIDE
from .faces.framing import LEGACY_FRAMING, Framing, framings_from_info
from .faces.images import MAX_PIXELS, ImageInput, decode
from .precision import autocast
from .preprocess import Preprocess, tta_views
from .pretrained import check_prior, load_pretrained, rebalance, shipped_int8

FACE_MODES = ("auto", "crop", "detect")
BACKENDS = ("auto", "torch", "onnx", "int8")
TTA_MODES = ("none", "flip", "tencrop")
# auto: an image is a face crop when its short side is CROP_SIDE px or less, CROP_MIN_SIDE px or
# more, and its long side at most CROP_ASPECT times the short one (a face's shape, not a strip)
CROP_SIDE = 128
CROP_MIN_SIDE = 16
CROP_ASPECT = 2.0
# How far the training classes' frequencies are divided out of the probabilities by default
# (module notes; chosen on FER2013 val, docs/model_card.md, "Class balance")
BALANCE = 0.75

Runner = Callable[[torch.Tensor], torch.Tensor]  # normalised batch -> class probabilities


def is_face_crop(size: tuple[int, int]) -> bool:
    """Whether ``faces="auto"`` takes an image of ``size`` (width, height) whole, as a face crop:
    short side ``CROP_MIN_SIDE`` to ``CROP_SIDE`` px, long side at most ``CROP_ASPECT`` times it.
    A strip or a few pixels are not a face; a larger image is a photo to detect faces in."""
    short, long = min(size), max(size)
    return CROP_MIN_SIDE <= short <= CROP_SIDE and long <= CROP_ASPECT * short


@dataclass(frozen=True)
class Classifier:
    """A model ready to run: its runner, label names, preprocessing, framing per detector and
    the class frequencies it was trained with (None where unrecorded)."""

    run: Runner
    label_names: tuple[str, ...]
    preprocess: Preprocess
    framings: dict[str, Framing]
    prior: tuple[float, ...] | None = None

    def framing_for(self, detector: str) -> Framing:
        """How ``detector``'s boxes map to the model's input (:mod:`attnfer.faces.framing`)."""
        return self.framings.get(detector, LEGACY_FRAMING)


@dataclass(frozen=True)
class FaceResult:
    """One face: box ``(x1, y1, x2, y2)`` in pixels, detector score (None for a whole-image
    crop), five landmarks (see :mod:`attnfer.faces.base`) or None, class probabilities, label,
    and whether the box was found by the detector (False: the whole image taken as a crop)."""

    box: tuple[int, int, int, int]
    score: float | None
    landmarks: tuple[tuple[int, int], ...] | None
    probabilities: dict[str, float]
    label: str
    detected: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "box": list(self.box),
            "detected": self.detected,
            "score": self.score,
            "landmarks": [list(p) for p in self.landmarks] if self.landmarks else None,
            "label": self.label,
            "probabilities": self.probabilities,
        }


def _check(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _onnx_runner(path: Path, device: str) -> Classifier:
    if not path.is_file():
        raise ModelError(f"{path}: no such ONNX model file")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own error types
        raise ModelError(f"{path}: not a readable ONNX model ({exc})") from None
    meta = session.get_modelmeta().custom_metadata_map
    try:
        labels = tuple(json.loads(meta["attnfer_labels"]))
        preprocess = Preprocess(**json.loads(meta["attnfer_preprocess"]))
        framings = framings_from_info(json.loads(meta.get("attnfer_framing", "{}")), str(path))
        prior = meta.get("attnfer_class_prior")
        prior = None if prior is None else check_prior(json.loads(prior), len(labels), str(path))
    except (KeyError, ValueError, TypeError):
        raise ModelError(
            f"{path}: has no attnfer metadata (labels, preprocessing); write it with attnfer export"
        ) from None

    def run(x: torch.Tensor) -> torch.Tensor:
        (logits,) = session.run(["logits"], {"input": x.numpy()})
        return torch.from_numpy(logits).float().softmax(1)

    return Classifier(run, labels, preprocess, framings, prior)


def _torch_runner(model: str | os.PathLike, device: str, bf16: bool | None) -> Classifier:
    pre = load_pretrained(model, device=device)
    net = pre.model.eval().to(memory_format=torch.channels_last)
    target = torch.device(device)

    def run(x: torch.Tensor) -> torch.Tensor:
        with autocast(target, bf16, batch=len(x)):
            logits = net(x.to(target).contiguous(memory_format=torch.channels_last))
        return logits.float().softmax(1).cpu()

    framings = framings_from_info(pre.framing, pre.arch)
    return Classifier(run, pre.label_names, pre.preprocess, framings, pre.class_prior)


def _as_crop(src: ImageInput, bgr: bool) -> np.ndarray:
    """A face crop as a uint8 gray or RGB array (uint8 arrays are used as they are)."""
    usable = isinstance(src, np.ndarray) and src.dtype == np.uint8
    if usable and (src.ndim == 2 or (src.ndim == 3 and src.shape[2] == 3)):
        return src[..., ::-1] if bgr and src.ndim == 3 else src
    return load_image(src, bgr=bgr)


class Recognizer:
    """Finds faces in images and classifies their expressions with a trained model.

    ``model``: shipped name (``default``, ``fast``), run folder, weights file or an ``.onnx``
    file from ``attnfer export`` (run by onnxruntime). ``detector``: a name from
    :func:`attnfer.faces.list_detectors` (``default``: see :data:`DEFAULT_DETECTOR`) or a
    Detector. ``backend``: auto, int8, onnx or torch (module notes). ``faces``: auto, crop or
    detect (module notes). ``tta``: flip, none or tencrop (module notes). ``max_pixels``: larger
    image files are refused. ``batch_size``: faces per model call. ``bf16``: precision of the
    PyTorch backend (module notes). ``balance``: 0 gives the probabilities as trained, 1 divides
    out the frequencies of the classes in the training data (every expression equally likely a
    priori; None: ``BALANCE``; module notes); a model that records none is used as trained.
    """

    def __init__(
        self,
        model: str | os.PathLike = "default",
        detector: str | Detector = "default",
        backend: str = "auto",
        faces: str = "auto",
        tta: str = "flip",
        device: str = "cpu",
        max_pixels: int = MAX_PIXELS,
        batch_size: int = 256,
        bf16: bool | None = None,
        balance: float | None = None,
    ) -> None:
        self.backend = _check(backend, BACKENDS, "backend")
        balance = BALANCE if balance is None else balance
        if not (isinstance(balance, int | float) and 0 <= balance <= 1):
            raise ConfigError(f"balance must be a number from 0 to 1, got {balance!r}")
        self.faces = _check(faces, FACE_MODES, "faces")
        self.tta = _check(tta, TTA_MODES, "tta")
        self.max_pixels = max_pixels
        self.batch_size = batch_size
        int8 = shipped_int8(model)
        if backend == "int8" and int8 is None:
            raise ConfigError(
                f"backend 'int8' is for the shipped models; for {str(model)!r} write an int8 file "
                "with `attnfer export MODEL --calibrate DATA` and pass that .onnx file as the model"
            )
        if str(model).endswith(".onnx"):
            self.backend = "onnx"
            self.classifier = _onnx_runner(Path(model), device)
        elif int8 is not None and (
            backend == "int8" or (backend == "auto" and device == "cpu" and not bf16)
        ):
            self.backend = "int8"
            self.classifier = _onnx_runner(int8, device)
        elif backend == "onnx" or (backend == "auto" and device == "cpu" and not bf16):
            self.backend = "onnx"
            self.classifier = _onnx_runner(cached_onnx(model), device)
        else:
            self.backend = "torch"
            self.classifier = _torch_runner(model, device, bf16)
        self.label_names = self.classifier.label_names
        self.preprocess = self.classifier.preprocess
        self._detector = detector
        self.prior = self.classifier.prior
        self.balance = balance if self.prior is not None else 0.0

    @property
    def detector(self) -> Detector:
        """The face detector, created on first use."""
        if not isinstance(self._detector, Detector):
            self._detector = create_detector(self._detector)
        return self._detector

    @property
    def framing(self) -> Framing:
        """How this recognizer's detector's boxes map to the model's input."""
        return self.classifier.framing_for(self.detector.name)

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        """Class probabilities (N x classes) of uint8 model-sized crops, averaged over TTA views."""
        out = []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                x = self.preprocess(torch.from_numpy(crops[start : start + self.batch_size]))
                views = tta_views(x, self.tta)  # one model call for all views
                probs = self.classifier.run(torch.cat(views))
                out.append(probs.view(len(views), len(x), -1).mean(0))
        if not out:
            return np.zeros((0, len(self.label_names)), np.float32)
        return rebalance(torch.cat(out).numpy(), self.prior, self.balance)

    def align(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The model-sized crop of a detected ``face`` of an RGB ``image``, framed for the model."""
        size, channels = self.preprocess.size, self.preprocess.channels
        return align_face(image, face, size, channels, self.framing)

    @property
    def decode_side(self) -> int | None:
        """The longer side down to which :meth:`locate` decodes a large JPEG at a reduced scale
        (:func:`attnfer.faces.images.decode`); None where it takes images whole as crops."""
        if self.faces == "crop":
            return None
        made = self._detector if isinstance(self._detector, Detector) else None
        return CLOSER * (made.max_side if made else MAX_SIDE)  # without making a detector

    def locate(self, image: ImageInput, bgr: bool = False) -> list[tuple[Face, np.ndarray]]:
        """The faces of one image with their aligned, model-sized crops (detected, or the whole
        image where it is a face crop: see ``faces``). ``bgr``: an array in OpenCV's order."""
        decoded = decode(image, self.decode_side, self.max_pixels, bgr=bgr)
        rgb, reduction = decoded.image, decoded.reduction
        if self.faces == "crop" or (self.faces == "auto" and is_face_crop(decoded.size)):
            return [self._whole(rgb, decoded.size)]
        return [(f.scaled(reduction), self.align(rgb, f)) for f in self.detector.detect(rgb)]

    def _whole(
        self, image: np.ndarray, size: tuple[int, int] | None = None
    ) -> tuple[Face, np.ndarray]:
        """The whole image as one face crop; its box spans ``size`` (width, height: the file's,
        when it was decoded at a reduced scale; by default the image's own)."""
        width, height = size or (image.shape[1], image.shape[0])
        crop = fit_to_input(image, self.preprocess.size, self.preprocess.channels)
        return Face((0.0, 0.0, float(width), float(height))), crop

    def _result(self, face: Face, probs: np.ndarray) -> FaceResult:
        box = tuple(round(v) for v in face.box)
        score = None if face.score is None else round(face.score, 4)
        marks = face.landmarks and tuple((round(x), round(y)) for x, y in face.landmarks)
        named = {name: float(p) for name, p in zip(self.label_names, probs, strict=True)}
        label = self.label_names[int(np.argmax(probs))]
        return FaceResult(box, score, marks, named, label, face.score is not None)  # type: ignore[arg-type]

    def _classify(
        self, located: Sequence[list[tuple[Face, np.ndarray]] | DataError]
    ) -> list[list[FaceResult] | DataError]:
        crops = [c for item in located if not isinstance(item, DataError) for _, c in item]
        probs = iter(self.probabilities(np.stack(crops)) if crops else [])
        results: list[list[FaceResult] | DataError] = []
        for item in located:
            if isinstance(item, DataError):
                results.append(item)
            else:
                results.append([self._result(f, next(probs)) for f, _ in item])
        return results

    def predict(self, image: ImageInput, bgr: bool = False) -> list[FaceResult]:
        """The faces in one image (empty if none); DataError if it cannot be read. ``bgr``: an
        array in OpenCV's channel order (``cv2.imread``)."""
        (result,) = self._classify([self.locate(image, bgr)])
        assert not isinstance(result, DataError)
        return result

    def predict_batch(
        self, images: Iterable[ImageInput], bgr: bool = False
    ) -> list[list[FaceResult] | DataError]:
        """The faces of each image, classified in shared model calls.

        An image that cannot be read gets its DataError in its slot; the others go on.
        """
        located: list[list[tuple[Face, np.ndarray]] | DataError] = []
        for image in images:
            try:
                located.append(self.locate(image, bgr))
            except DataError as exc:
                located.append(exc)
        return self._classify(located)

    def predict_crops(self, crops: Iterable[ImageInput], bgr: bool = False) -> list[FaceResult]:
        """One result per face crop (each used whole, no detection); DataError on a bad one."""
        wholes = [self._whole(_as_crop(c, bgr)) for c in crops]
        if not wholes:
            return []
        probs = self.probabilities(np.stack([crop for _, crop in wholes]))
        return [self._result(face, p) for (face, _), p in zip(wholes, probs, strict=True)]
