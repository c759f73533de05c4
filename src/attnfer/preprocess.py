"""How raw faces become model input (:class:`Preprocess`, saved with every model) and the
test-time views of that input (:func:`tta_views`).

Both work on whole batches (B x C x H x W), on CPU or GPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Preprocess:
    """How raw uint8 faces become model input; saved with every checkpoint."""

    size: int = 48
    channels: int = 1
    mean: float = 0.5
    std: float = 0.5

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B,H,W), (B,H,W,3) or (B,C,H,W) -> normalised float (B,channels,size,size)."""
        x = images
        if x.ndim == 3:
            x = x.unsqueeze(1)
        elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.permute(0, 3, 1, 2)
        x = x.float().div_(255.0)
        if x.shape[1] == 3 and self.channels == 1:
            x = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        elif x.shape[1] == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True
            )
        return (x - self.mean) / self.std

    def to_dict(self) -> dict:
        return asdict(self)


def tta_views(x: torch.Tensor, mode: str = "flip") -> list[torch.Tensor]:
    """Test-time views of a normalised batch: ``none`` (the batch), ``flip`` (2 views) or
    ``tencrop`` (10 views: the four corners and the centre at 23/24 of the side, resized back,
    and their mirror images; docs/model_card.md says why 23/24). ValueError for another mode."""
    if mode == "none":
        return [x]
    if mode == "flip":
        return [x, x.flip(-1)]
    if mode != "tencrop":
        raise ValueError(f"unknown TTA mode {mode!r}; use none, flip or tencrop")
    h, w = x.shape[-2:]
    ch, cw = round(h * 23 / 24), round(w * 23 / 24)
    tops = [0, 0, h - ch, h - ch, (h - ch) // 2]
    lefts = [0, w - cw, 0, w - cw, (w - cw) // 2]
    crops = [
        F.interpolate(x[..., t : t + ch, left : left + cw], size=(h, w), mode="bilinear")
        for t, left in zip(tops, lefts, strict=True)
    ]
    return crops + [c.flip(-1) for c in crops]
