"""Channel attention of CBAM: ``M_c = sigmoid(MLP(avgpool(F)) + MLP(maxpool(F)))``."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from .base import CHANNEL, AttentionModule
from .create import register_attention


@register_attention("channel")
class ChannelAttention(AttentionModule):
    """Reweights channels with a shared MLP ``C -> C/r -> C`` over average- and max-pooled maps.

    ``forward(x, return_map=True)`` returns ``(out, weights)`` with ``weights`` of shape
    ``[B, C]`` in (0, 1); ``out = x * weights``.
    """

    map_kinds: ClassVar[dict[str, str]] = {"": CHANNEL}

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )
        nn.init.zeros_(self.mlp[0].bias)  # no hidden unit starts dead (see SqueezeExcite)

    def forward(self, x: Tensor, return_map: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        weights = torch.sigmoid(self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3))))
        out = x * weights[:, :, None, None]
        return (out, weights) if return_map else out
