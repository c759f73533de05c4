"""Grad-CAM (Selvaraju et al. 2017) on the last convolutional block of any model, with hooks.

The class score's gradient with respect to a layer's activations, averaged over positions,
weights that layer's channels; the ReLU of the weighted sum, upsampled onto the input and scaled
to [0, 1] per face, shows where the evidence for the class lies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ModelError


@dataclass(frozen=True)
class GradCam:
    """``maps`` ``[B, H, W]`` in [0, 1] on the input grid, for classes ``target`` ``[B]``, taken at
    module ``layer`` (activations ``[B, C, h, w]``)."""

    maps: Tensor
    target: Tensor
    layer: str


def last_conv_layer(model: nn.Module, x: Tensor) -> str:
    """The module whose output is the model's last spatial feature map (more than 1 x 1).

    Found by running ``x`` once: of the modules returning ``[B, C, h, w]`` maps, the one that
    finishes last (the outermost, e.g. ``layer4`` of a ResNet rather than its last convolution).
    """
    order: list[str] = []

    def record(name: str) -> Any:
        def hook(_module: nn.Module, _args: Any, out: Any) -> None:
            if isinstance(out, Tensor) and out.ndim == 4 and out.shape[-2:].numel() > 1:
                order.append(name)

        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for handle in handles:
            handle.remove()
    if not order:
        raise ModelError("Grad-CAM needs a model with a spatial feature map; found none")
    return order[-1]


def grad_cam(
    model: nn.Module,
    x: Tensor,
    target: int | Sequence[int] | Tensor | None = None,
    layer: str | None = None,
) -> GradCam:
    """Grad-CAM maps of the normalised faces ``x`` ``[B, C, H, W]`` for ``model`` (in eval).

    ``target``: the class per face (one int for all); None takes the predicted class. ``layer``:
    a module name (``model.named_modules()``); None uses :func:`last_conv_layer`.
    """
    with torch.inference_mode(False), torch.enable_grad():
        x = x.clone()
        name = layer or last_conv_layer(model, x)
        modules = dict(model.named_modules())
        if name not in modules:
            raise ModelError(f"the model has no module {name!r} for Grad-CAM")
        saved: list[Tensor] = []

        def keep(_module: nn.Module, _args: Any, out: Tensor) -> Tensor:
            out = out.clone()  # later in-place layers must not change what we differentiate
            saved.append(out)
            return out

        handle = modules[name].register_forward_hook(keep)
        try:
            logits = model(x)
        finally:
            handle.remove()
        targets = logits.argmax(1) if target is None else torch.as_tensor(target)
        targets = targets.to(logits.device).long().expand(len(x))
        score = logits.gather(1, targets[:, None]).sum()
        (grads,) = torch.autograd.grad(score, saved[-1])
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * saved[-1].detach()).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(1).clamp_min(1e-12)
    return GradCam(maps=(cam / peak[:, None, None]).cpu(), target=targets.cpu(), layer=name)
