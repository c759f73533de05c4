"""Occlusion saliency (paper 001, section IV-C): slide a blacked-out square over the face.

Each occluded copy of a face is classified (in large batches); a pixel's value is the mean, over
the windows that cover it, of the drop in the target class's probability (``drop``) and of
whether the predicted class changed (``flip``, the paper's "regions of importance").

The square is filled in the model's normalised input space. The paper zeroes the image, i.e.
paints it black: ``fill_value(preprocess, "black")`` is the normalised value of pixel 0
(``-mean / std``, -1 for the default preprocessing). ``"mean"`` fills with 0 in normalised space
instead (the preprocessing mean: mid-grey for the default).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..precision import autocast
from ..preprocess import Preprocess

FILLS = ("black", "mean")


@dataclass(frozen=True)
class OcclusionMaps:
    """Occlusion maps of a batch of faces, all ``[B, H, W]`` on the model's input grid.

    ``drop``: mean drop of the target probability when the pixel is covered (negative where
    covering it helps the target); ``flip``: fraction of covering windows that change the
    predicted class; ``target``, ``predicted`` and ``probability`` (of the target, unoccluded)
    are ``[B]``.
    """

    drop: Tensor
    flip: Tensor
    target: Tensor
    predicted: Tensor
    probability: Tensor

    @property
    def flip_mask(self) -> Tensor:
        """Pixels where some covering window changes the prediction (``[B, H, W]`` bool)."""
        return self.flip > 0


def fill_value(preprocess: Preprocess, fill: str = "black") -> float:
    """The normalised input value of the occluding square: ``black`` (pixel 0) or ``mean``."""
    if fill not in FILLS:
        raise ConfigError(f"fill must be one of {', '.join(FILLS)}; got {fill!r}")
    return -preprocess.mean / preprocess.std if fill == "black" else 0.0


def _positions(length: int, window: int, stride: int) -> list[int]:
    """Window starts every ``stride`` pixels, plus one flush with the far edge if needed."""
    last = max(length - window, 0)
    starts = list(range(0, last + 1, stride))
    return starts if starts[-1] == last else [*starts, last]


def window_masks(height: int, width: int, window: int, stride: int) -> Tensor:
    """``[N, H, W]`` bool masks of the ``window`` x ``window`` squares, ``stride`` apart.

    Every pixel is covered: a last row and column of windows sits flush with the far edges.
    """
    if window < 1 or stride < 1:
        raise ConfigError(f"window and stride must be positive; got {window} and {stride}")
    tops, lefts = _positions(height, window, stride), _positions(width, window, stride)
    masks = torch.zeros(len(tops) * len(lefts), height, width, dtype=torch.bool)
    for k, (top, left) in enumerate(itertools.product(tops, lefts)):
        masks[k, top : top + window, left : left + window] = True
    return masks


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.inference_mode()
def occlusion(
    model: nn.Module,
    x: Tensor,
    target: int | Sequence[int] | Tensor | None = None,
    *,
    fill: float,
    window: int = 8,
    stride: int = 2,
    batch_size: int = 256,
    bf16: bool | None = None,
) -> OcclusionMaps:
    """Occlusion maps of the normalised faces ``x`` (``[B, C, H, W]``) for ``model`` (in eval).

    ``target``: the class to explain per face (one int for all); None explains the predicted
    class. ``fill``: the square's normalised value, see :func:`fill_value`. Windows of all faces
    go through the model ``batch_size`` at a time, under bf16 autocast if ``bf16`` (None: where
    the hardware runs bf16 fast, see :mod:`attnfer.precision`; it about halves the time).
    """
    device = model_device(model)

    def probabilities(batch: Tensor) -> Tensor:
        with autocast(device, bf16):
            return model(batch).float().softmax(1)

    x = x.to(device)
    base = torch.cat([probabilities(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    predicted = base.argmax(1)
    if target is None:
        targets = predicted
    else:
        targets = torch.as_tensor(target, device=device).long().expand(len(x))
    masks = window_masks(x.shape[-2], x.shape[-1], window, stride).to(device)
    n = len(masks)
    drops = torch.empty(len(x), n, device=device)
    flips = torch.empty(len(x), n, device=device)
    for start in range(0, len(x) * n, batch_size):
        index = torch.arange(start, min(start + batch_size, len(x) * n), device=device)
        face, win = index // n, index % n
        occluded = torch.where(masks[win, None], fill, x[face])
        probs = probabilities(occluded)
        picked = probs.gather(1, targets[face, None])[:, 0]
        drops[face, win] = base[face, targets[face]] - picked
        flips[face, win] = (probs.argmax(1) != predicted[face]).float()
    flat = masks.flatten(1).float()
    count = flat.sum(0)
    shape = (len(x), *x.shape[-2:])
    return OcclusionMaps(
        drop=(drops @ flat / count).view(shape).cpu(),
        flip=(flips @ flat / count).view(shape).cpu(),
        target=targets.cpu(),
        predicted=predicted.cpu(),
        probability=base.gather(1, targets[:, None])[:, 0].cpu(),
    )
