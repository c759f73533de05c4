"""Spatial attention of CBAM: ``M_s = sigmoid(conv_k([mean over C; max over C]))``."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from ...errors import ConfigError
from .base import SPATIAL, AttentionModule


class SpatialAttention(AttentionModule):
    """Reweights positions with a ``k x k`` convolution over the channel mean and max.

    ``forward(x, return_map=True)`` returns ``(out, map)`` with ``map`` of shape ``[B, 1, H, W]``
    (the feature map's size) in (0, 1); ``out = x * map``.
    """

    map_kinds: ClassVar[dict[str, str]] = {"": SPATIAL}

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ConfigError(f"spatial attention kernel must be odd, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor, return_map: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        attn = torch.sigmoid(self.conv(pooled))
        out = x * attn
        return (out, attn) if return_map else out
