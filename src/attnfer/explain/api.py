"""Explanations of a trained model's decisions on face crops and on the faces in photos.

``explain_crops(model, crops, method)`` explains face crops; ``explain_faces(recognizer, image,
method)`` finds and aligns the faces of a photo as :class:`~attnfer.recognize.Recognizer` does and
explains each one. Methods: ``occlusion`` (paper 001), ``cbam`` (spatial maps and channel weights
of every CBAM/SE block), ``stn`` (the spatial transformer's warp) and ``gradcam``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..models.ensemble import ENSEMBLE_ARCH
from ..preprocess import Preprocess
from ..pretrained import Pretrained, load_pretrained, rebalance
from .attention import attention_maps, stn_warp
from .gradcam import grad_cam
from .occlusion import fill_value, model_device, occlusion

if TYPE_CHECKING:
    from ..faces.images import ImageInput
    from ..recognize import Recognizer

METHODS = ("occlusion", "cbam", "stn", "gradcam")
ModelSource = str | os.PathLike | Pretrained


@dataclass(frozen=True)
class Explanation:
    """One face explained by ``method``.

    ``face``: the model's input shown as an image, ``(H, W)`` gray or ``(H, W, 3)``, in [0, 1];
    ``label`` and ``probability``: the prediction; ``target``: the class explained; ``maps``:
    named arrays (``(H, W)`` maps on the face, ``(C,)`` channel weights, ``(2, 3)`` theta);
    ``note``: the method's settings; ``box``: the face in the photo (``explain_faces`` only).
    """

    method: str
    face: np.ndarray
    label: str
    probability: float
    target: str
    maps: dict[str, np.ndarray]
    note: str = ""
    box: tuple[int, int, int, int] | None = None


def as_pretrained(model: ModelSource, device: str = "cpu") -> Pretrained:
    """A loaded model: shipped name, run folder or weights file, or a :class:`Pretrained`."""
    return model if isinstance(model, Pretrained) else load_pretrained(model, device=device)


def to_image(x: Tensor, preprocess: Preprocess) -> np.ndarray:
    """Normalised input ``[B, C, H, W]`` -> ``[B, H, W]`` (gray) or ``[B, H, W, 3]`` in [0, 1]."""
    images = (x.detach().float().cpu() * preprocess.std + preprocess.mean).clamp(0, 1)
    return images[:, 0].numpy() if images.shape[1] == 1 else images.permute(0, 2, 3, 1).numpy()


def class_index(label_names: Sequence[str], target: str | int | None) -> int | None:
    """The model's index of class ``target`` (a name or an index); None stays None."""
    if target is None:
        return None
    if isinstance(target, str) and target in label_names:
        return list(label_names).index(target)
    if isinstance(target, int | np.integer) and 0 <= target < len(label_names):
        return int(target)
    raise ConfigError(f"unknown class {target!r}; the model knows {', '.join(label_names)}")


def preprocess_crops(pre: Pretrained, crops: Sequence[np.ndarray] | np.ndarray) -> Tensor:
    """uint8 face crops (gray ``H x W`` or RGB ``H x W x 3``, any size) -> model input."""
    if len(crops) == 0:
        return torch.zeros(0, pre.preprocess.channels, pre.preprocess.size, pre.preprocess.size)
    batch = [pre.preprocess(torch.tensor(np.asarray(c))[None]) for c in crops]
    return torch.cat(batch).to(model_device(pre.model))


def _method_maps(
    pre: Pretrained, x: Tensor, method: str, target: int | Tensor, options: dict[str, Any]
) -> tuple[dict[str, Tensor], Tensor | None, str]:
    """``(maps [B, ...] by name, target classes or None, note)`` of one method; ``target``: the
    class explained, one for all faces or one a face."""
    model = pre.model
    if method != "occlusion" and pre.arch == ENSEMBLE_ARCH:
        raise ConfigError(
            f"--method {method} looks inside one network and this model averages "
            f"{len(pre.model.members)}: explain it with occlusion, or explain one of its members"
        )
    if method == "occlusion":
        window, stride, fill = options["window"], options["stride"], options["fill"]
        found = occlusion(
            model,
            x,
            target,
            fill=fill_value(pre.preprocess, fill),
            window=window,
            stride=stride,
            batch_size=options["batch_size"],
        )
        note = f"occlusion: {window}x{window} {fill} window, stride {stride}"
        return {"drop": found.drop, "flip": found.flip}, found.target, note
    if method == "gradcam":
        cam = grad_cam(model, x, target)
        return {"cam": cam.maps}, cam.target, f"Grad-CAM at {cam.layer}"
    if method == "stn":
        warp = stn_warp(model, x)
        warped = torch.from_numpy(to_image(warp.warped, pre.preprocess))
        return {"warped": warped, "theta": warp.theta}, None, "spatial transformer"
    found = attention_maps(model, x)
    maps = {f"spatial.{k}": v for k, v in found.spatial.items()}
    maps.update({f"channel.{k}": v for k, v in found.channel.items()})
    return maps, None, "attention maps"


def explain_crops(
    model: ModelSource,
    crops: Sequence[np.ndarray] | np.ndarray,
    method: str = "occlusion",
    target: str | int | None = None,
    *,
    window: int = 8,
    stride: int = 2,
    fill: str = "black",
    batch_size: int = 256,
    device: str = "cpu",
    balance: float = 0.0,
) -> list[Explanation]:
    """Explain uint8 face crops (each used whole, resized to the model's input).

    ``target``: the class to explain (name or index; e.g. the true label) for occlusion and
    Grad-CAM; None explains each predicted class. ``window``, ``stride`` (input pixels), ``fill``
    (``black`` as the paper, or ``mean``) and ``batch_size`` are occlusion's settings.
    ``balance`` divides the model's class prior out of the prediction as
    :class:`~attnfer.recognize.Recognizer` does (0: the network as trained); the maps are the
    network's own for the class explained.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    pre = as_pretrained(model, device)
    x = preprocess_crops(pre, crops)
    if len(x) == 0:
        return []
    with torch.inference_mode():
        probs = pre.model(x).float().softmax(1).cpu().numpy()
    probs = torch.from_numpy(rebalance(probs, pre.class_prior, balance))
    predicted = probs.argmax(1)
    chosen = class_index(pre.label_names, target)
    options = {"window": window, "stride": stride, "fill": fill, "batch_size": batch_size}
    maps, targets, note = _method_maps(
        pre, x, method, predicted if chosen is None else chosen, options
    )
    targets = predicted if targets is None else targets
    faces = to_image(x, pre.preprocess)
    return [
        Explanation(
            method=method,
            face=faces[i],
            label=pre.label_names[int(predicted[i])],
            probability=float(probs[i, predicted[i]]),
            target=pre.label_names[int(targets[i])],
            maps={name: value[i].numpy() for name, value in maps.items()},
            note=note,
        )
        for i in range(len(x))
    ]


def explain_faces(
    recognizer: Recognizer,
    image: ImageInput,
    method: str = "occlusion",
    *,
    model: ModelSource = "default",
    **options: Any,
) -> list[Explanation]:
    """Explain each face the recognizer finds in ``image`` (same detection and alignment).

    ``model`` is the model explained: give the one the recognizer was built with (a loaded
    :class:`Pretrained` avoids loading it again); its labels and preprocessing must match.
    ``options`` go to :func:`explain_crops`, with the recognizer's class balance, so that the
    label explained is the one it predicts. Each explanation carries its face's ``box``.
    """
    pre = as_pretrained(model, options.get("device", "cpu"))
    if pre.label_names != recognizer.label_names or pre.preprocess != recognizer.preprocess:
        raise ConfigError(
            "the model to explain does not match the recognizer's (labels or preprocessing)"
        )
    located = recognizer.locate(image)
    crops = [crop for _, crop in located]
    explained = explain_crops(pre, crops, method, balance=recognizer.balance, **options)
    return [
        replace(e, box=tuple(round(v) for v in face.box))  # type: ignore[arg-type]
        for e, (face, _) in zip(explained, located, strict=True)
    ]
