"""What the attention modules do to a face: CBAM spatial maps, channel weights, the STN warp.

CBAM's spatial map of each block (``[B, 1, h, w]`` on that block's feature map, in (0, 1)) is
upsampled bilinearly onto the input face; channel weights (CBAM or squeeze-and-excitation,
``[B, C]``) are reported as they are. A spatial transformer's output is the input the rest of the
network actually sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ModelError
from ..models.attention import SpatialTransformer

SPATIAL_SUFFIX = ".spatial"
CHANNEL_SUFFIX = ".channel"


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


def _block_name(key: str, suffix: str) -> str:
    return key[: -len(suffix)] if key.endswith(suffix) else key


@torch.inference_mode()
def attention_maps(model: nn.Module, x: Tensor, upsample: bool = True) -> AttentionMaps:
    """CBAM spatial maps and CBAM/SE channel weights of the normalised faces ``x``.

    ``upsample``: spatial maps bilinearly resized to the input's ``H x W`` (values stay in
    (0, 1)); otherwise at each block's feature-map size. ModelError when the model has none.
    """
    found = model.attention_maps(x) if hasattr(model, "attention_maps") else {}
    spatial, channel = {}, {}
    for key, value in found.items():
        if key.endswith(SPATIAL_SUFFIX) and value.ndim == 4:
            if upsample:
                value = F.interpolate(value, x.shape[-2:], mode="bilinear", align_corners=False)
            spatial[_block_name(key, SPATIAL_SUFFIX)] = value[:, 0].cpu()
        elif value.ndim == 2:
            channel[_block_name(key, CHANNEL_SUFFIX)] = value.cpu()
    if not spatial and not channel:
        raise ModelError(
            f"{type(model).__name__} has no CBAM or squeeze-and-excitation attention; "
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
