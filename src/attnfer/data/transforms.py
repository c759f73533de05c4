"""Batched training augmentation (:class:`Augment`); model input preparation and test-time
views are in :mod:`attnfer.preprocess`.

It works on whole batches (B x C x H x W), on CPU or GPU, so that training reads uint8 tensors
from memory and never touches PIL in the loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """Random per-sample augmentation of a normalised batch, in one affine resampling.

    ``shift`` is the largest translation as a fraction of the side (random crop with padding),
    ``rotation`` in degrees, ``zoom`` the largest relative scale change, ``erasing`` the
    probability of one random erased rectangle (2-33 % of the area). ``final_scale`` anneals
    the strength: every magnitude above but ``flip`` falls linearly over training to that
    fraction of its value (1: constant), strong regularisation early and a closer fit late.

    ``low_res`` is the probability that :meth:`lower_resolution` shows a face at a lower
    resolution, as a small face in a photo reaches the model: downscaled (area averaging) to a
    side drawn uniformly from ``low_res_side`` up to the input's and upscaled back (bilinear, as
    :func:`attnfer.faces.align.align_face` does). It is a step of its own, applied by the trainer
    after the rest, so that a teacher (``loss.teacher``) sees the face at full resolution.
    """

    flip: float = 0.5
    shift: float = 0.1
    rotation: float = 10.0
    zoom: float = 0.1
    brightness: float = 0.2
    contrast: float = 0.2
    erasing: float = 0.25
    low_res: float = 0.0
    low_res_side: int = 16
    final_scale: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.final_scale <= 1.0:
            raise ValueError(f"final_scale must be in [0, 1], got {self.final_scale}")
        if not 0.0 <= self.low_res <= 1.0:
            raise ValueError(f"low_res is a probability in [0, 1], got {self.low_res}")
        if self.low_res_side < 2:
            raise ValueError(f"low_res_side must be at least 2 pixels, got {self.low_res_side}")

    def at(self, progress: float) -> Augment:
        """The augmentation ``progress`` (0 at the first epoch, 1 at the last) through training."""
        s = 1.0 - (1.0 - self.final_scale) * min(max(progress, 0.0), 1.0)
        if s == 1.0:
            return self
        magnitudes = ("shift", "rotation", "zoom", "brightness", "contrast", "erasing")
        return replace(self, **{name: getattr(self, name) * s for name in magnitudes})

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b, dev = x.shape[0], x.device

        def uniform(lo: float, hi: float) -> torch.Tensor:
            return torch.rand(b, generator=generator, device=dev) * (hi - lo) + lo

        angle = uniform(-self.rotation, self.rotation) * (math.pi / 180)
        scale = 1.0 / uniform(1 - self.zoom, 1 + self.zoom)
        mirror = torch.where(torch.rand(b, generator=generator, device=dev) < self.flip, -1.0, 1.0)
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack(
            [
                torch.stack([cos * mirror, -sin, uniform(-self.shift, self.shift) * 2], 1),
                torch.stack([sin * mirror, cos, uniform(-self.shift, self.shift) * 2], 1),
            ],
            1,
        ).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        gain = uniform(1 - self.contrast, 1 + self.contrast).view(b, 1, 1, 1)
        offset = uniform(-self.brightness, self.brightness).view(b, 1, 1, 1)
        x = (x - mean) * gain + mean + offset
        if self.erasing > 0:
            x = x.masked_fill(self._erase_mask(x, generator), 0.0)
        return x

    def lower_resolution(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The batch with each face chosen by ``low_res`` downscaled to its drawn side and
        upscaled back to ``H x W``; the batch itself when ``low_res`` is 0."""
        if self.low_res == 0:
            return x
        b, _, h, w = x.shape
        chosen = torch.rand(b, generator=generator, device=x.device) < self.low_res
        sides = torch.randint(self.low_res_side, h + 1, (b,), generator=generator, device=x.device)
        out = x.clone()
        for side in sides[chosen & (sides < h)].unique().tolist():
            pick = chosen & (sides == side)
            small = F.interpolate(x[pick], size=(side, max(1, round(side * w / h))), mode="area")
            out[pick] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        return out

    def _erase_mask(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One random rectangle per chosen sample, as a B x 1 x H x W boolean mask."""
        b, _, h, w = x.shape
        dev = x.device
        rand = lambda: torch.rand(b, generator=generator, device=dev)  # noqa: E731
        area = (rand() * 0.31 + 0.02) * h * w
        aspect = torch.exp((rand() - 0.5) * 2 * math.log(3.0))
        eh = (area * aspect).sqrt().clamp(max=h)
        ew = (area / aspect).sqrt().clamp(max=w)
        top = rand() * (h - eh)
        left = rand() * (w - ew)
        ys = torch.arange(h, device=dev).view(1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, w)
        inside = (
            (ys >= top.view(b, 1, 1))
            & (ys < (top + eh).view(b, 1, 1))
            & (xs >= left.view(b, 1, 1))
            & (xs < (left + ew).view(b, 1, 1))
        )
        chosen = (rand() < self.erasing).view(b, 1, 1)
        return (inside & chosen).unsqueeze(1)
