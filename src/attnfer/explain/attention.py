"""What the attention modules do to a face: spatial maps, channel weights, the STN warp.

Every attention module declares the kind of each map it applies (``AttentionModule.map_kinds``):
spatial maps (``[B, 1, h, w]`` on that block's feature map, in (0, 1), e.g. CBAM's) are upsampled
bilinearly onto the input face; channel weights (``[B, C]``, e.g. CBAM's or
squeeze-and-excitation's) are reported as they are. A spatial transformer's output is the input
the rest of the network actually sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ModelError
from ..models.attention import CHANNEL, SPATIAL, SpatialTransformer, attention_modules, map_key


@dataclass(frozen=True)
class AttentionMaps:
    """Per attention block (module name, e.g. ``layer1.0.attention``): ``spatial`` maps
    ``[B, h, w]`` (or ``[B, H, W]`` when upsampled onto the input) and ``channel`` weights
    ``[B, C]``."""

    spatial: dict[str, Tensor]
    channel: dict[str, Tensor]


@dataclass(frozen=True)
class StnWarp:
    """The spatial transformer's input and output (``[B, C, H, W]``) and ``theta`` ``[B, 2, 3]``."""

    original: Tensor
    warped: Tensor
    theta: Tensor


@torch.inference_mode()
def attention_maps(model: nn.Module, x: Tensor, upsample: bool = True) -> AttentionMaps:
    """Spatial maps and channel weights of the attention modules, on the normalised faces ``x``.

    Maps are filed by the kind their module declares, under the module's name.
    ``upsample``: spatial maps bilinearly resized to the input's ``H x W`` (values stay in
    (0, 1)); otherwise at each block's feature-map size. ModelError when the model has none.
    """
    found = model.attention_maps(x) if hasattr(model, "attention_maps") else {}
    spatial, channel = {}, {}
    for name, module in attention_modules(model):
        for map_name, kind in module.map_kinds.items():
            value = found.get(map_key(name, map_name))
            if value is None:
                continue
            if kind == SPATIAL:
                if upsample:
                    value = F.interpolate(value, x.shape[-2:], mode="bilinear", align_corners=False)
                spatial[name] = value[:, 0].cpu()
            elif kind == CHANNEL:
                channel[name] = value.cpu()
    if not spatial and not channel:
        raise ModelError(
            f"{type(model).__name__} has no spatial or channel attention; "
            "explain it with occlusion or gradcam"
        )
    return AttentionMaps(spatial, channel)


@torch.inference_mode()
def stn_warp(model: nn.Module, x: Tensor) -> StnWarp:
    """The first spatial transformer's input, warped output and ``theta`` for faces ``x``."""
    stn = next((m for m in model.modules() if isinstance(m, SpatialTransformer)), None)
    if stn is None:
        raise ModelError(f"{type(model).__name__} has no spatial transformer; try deep_emotion")
    seen: dict[str, Tensor] = {}

    def hook(module: nn.Module, args: tuple[Tensor, ...], _out: Any) -> None:
        seen["original"] = args[0]
        seen["warped"], seen["theta"] = module.forward(args[0], return_map=True)

    handle = stn.register_forward_hook(hook)
    try:
        model(x)
    finally:
        handle.remove()
    return StnWarp(**{k: v.cpu() for k, v in seen.items()})
