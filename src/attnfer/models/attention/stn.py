"""Spatial transformer (Jaderberg et al.) with the localisation network of paper 001."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import TRANSFORM, AttentionModule


class SpatialTransformer(AttentionModule):
    """Warps its input with an affine transform regressed from the input itself.

    Localisation net as in Deep-Emotion (paper 001): two convolutions (8 filters 7x7, 10 filters
    5x5), each followed by 2x2 max-pooling and ReLU, then two fully connected layers (``hidden``
    units, then 6) regressing the 2x3 matrix ``theta``. The last layer starts at zero weights and
    the identity bias, so at initialisation the module returns its input.
    ``forward(x, return_map=True)`` returns ``(warped, theta)`` with ``theta`` of shape
    ``[B, 2, 3]``.
    """

    map_kinds: ClassVar[dict[str, str]] = {"": TRANSFORM}

    def __init__(
        self, in_chans: int = 1, input_size: tuple[int, int] = (48, 48), hidden: int = 32
    ) -> None:
        super().__init__()
        self.localization = nn.Sequential(
            nn.Conv2d(in_chans, 8, kernel_size=7),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 10, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.localization(torch.zeros(1, in_chans, *input_size)).shape[1]
        self.regressor = nn.Sequential(
            nn.Linear(flat, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 6)
        )
        self.reset_identity()

    def reset_identity(self) -> None:
        """Set the regressor's last layer so that ``theta`` is the identity for every input."""
        last = self.regressor[-1]
        nn.init.zeros_(last.weight)
        with torch.no_grad():
            last.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def forward(self, x: Tensor, return_map: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        theta = self.regressor(self.localization(x)).view(-1, 2, 3)
        grid = F.affine_grid(theta.float(), list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid.to(x.dtype), align_corners=False)
        return (out, theta) if return_map else out
