"""Frame attention of the Frame Attention Network (Meng et al. 2019; paper 004)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from ...errors import ConfigError
from .base import FRAME, AttentionModule

FRAME_ATTENTION_MODES = ("self", "relation")


class FrameAttention(AttentionModule):
    """Pools per-frame features ``f_i`` (``[B, K, D]``) into one clip feature.

    Self-attention: ``a_i = sigmoid(f_i . q0)``, ``f_v = sum a_i f_i / sum a_i``.
    Relation attention (``mode="relation"``): ``b_i = sigmoid([f_i : f_v] . q1)`` and the clip
    feature ``sum a_i b_i [f_i : f_v] / sum a_i b_i`` (dimension ``2D``); ``mode="self"`` returns
    ``f_v`` (dimension ``D``). ``q0`` and ``q1`` are bias-free linear maps, as in the formulas.
    ``forward(f, return_map=True)`` returns ``(clip, maps)`` with ``maps["alpha"]``,
    ``maps["beta"]`` (relation only) and ``maps["weights"]``, the normalised per-frame weights
    (``[B, K]``, summing to 1) with which the clip feature averages the frames.
    """

    map_kinds: ClassVar[dict[str, str]] = {"alpha": FRAME, "beta": FRAME, "weights": FRAME}

    def __init__(self, dim: int, mode: str = "relation") -> None:
        super().__init__()
        if mode not in FRAME_ATTENTION_MODES:
            raise ConfigError(
                f"frame attention mode must be one of {FRAME_ATTENTION_MODES}, got {mode!r}"
            )
        self.mode = mode
        self.q0 = nn.Linear(dim, 1, bias=False)
        self.q1 = nn.Linear(2 * dim, 1, bias=False) if mode == "relation" else None
        self.out_features = 2 * dim if mode == "relation" else dim

    def forward(
        self, f: Tensor, return_map: bool = False
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        alpha = torch.sigmoid(self.q0(f)).squeeze(-1)
        weights = alpha / alpha.sum(dim=1, keepdim=True)
        clip = (weights.unsqueeze(-1) * f).sum(dim=1)
        maps = {"alpha": alpha}
        if self.q1 is not None:
            pair = torch.cat([f, clip.unsqueeze(1).expand_as(f)], dim=-1)
            beta = torch.sigmoid(self.q1(pair)).squeeze(-1)
            ab = alpha * beta
            weights = ab / ab.sum(dim=1, keepdim=True)
            clip = (weights.unsqueeze(-1) * pair).sum(dim=1)
            maps["beta"] = beta
        maps["weights"] = weights
        return (clip, maps) if return_map else clip
