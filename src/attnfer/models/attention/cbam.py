"""Convolutional Block Attention Module (Woo et al. 2018): channel then spatial attention."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from .base import CHANNEL, SPATIAL, AttentionModule
from .channel import ChannelAttention
from .create import register_attention
from .spatial import SpatialAttention


@register_attention("cbam")
class CBAM(AttentionModule):
    """``F' = M_c(F) * F``, ``F'' = M_s(F') * F'`` (papers 000 and 002).

    Paper 000 uses ``reduction=8, spatial_kernel=3`` after VGG16 (about 66K parameters on 512
    channels); paper 002 uses a 7x7 spatial kernel in every ResNet block.
    ``forward(x, return_map=True)`` returns ``(out, {"channel": [B, C], "spatial": [B, 1, H, W]})``.
    """

    map_kinds: ClassVar[dict[str, str]] = {"channel": CHANNEL, "spatial": SPATIAL}

    def __init__(self, channels: int, reduction: int = 16, spatial_kernel: int = 7) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(spatial_kernel)

    def forward(
        self, x: Tensor, return_map: bool = False
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        x, channel_map = self.channel(x, return_map=True)
        x, spatial_map = self.spatial(x, return_map=True)
        return (x, {"channel": channel_map, "spatial": spatial_map}) if return_map else x
