"""Squeeze-and-Excitation channel attention (Hu et al.), used by papers 002 and 003."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from .base import CHANNEL, AttentionModule
from .create import register_attention


@register_attention("se")
class SqueezeExcite(AttentionModule):
    """``out = x * sigmoid(FC(ReLU(FC(avgpool(x)))))`` with a ``C -> C/r -> C`` bottleneck.

    ``forward(x, return_map=True)`` returns ``(out, weights)`` with ``weights`` of shape ``[B, C]``.
    """

    map_kinds: ClassVar[dict[str, str]] = {"": CHANNEL}

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )
        # Pooled batch-normalised features are near zero: a random negative bias could leave
        # every hidden unit dead from the start, so the hidden bias starts at zero.
        nn.init.zeros_(self.fc[0].bias)

    def forward(self, x: Tensor, return_map: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        weights = torch.sigmoid(self.fc(x.mean(dim=(2, 3))))
        out = x * weights[:, :, None, None]
        return (out, weights) if return_map else out
