"""Training losses of the papers, each a small module with its formula.

- ``class_weights``: N / (K * n_c) per class (paper 000, eq. 5).
- ``CrossEntropy``: cross-entropy with class weights, label smoothing and soft targets (FER+ votes).
- ``WeightNormPenalty``: lambda * ||w_fc||_2 over the last FC layers' weights (paper 001).
- ``CenterLoss``: 1/2 * sum_i ||x_i - c_{y_i}||^2 with learnable centres (paper 002, eq. 2).
- ``IslandLoss``: center loss + lambda1 * sum over ordered centre pairs of (cos + 1) (paper 002,
  eq. 4). Paper 002's total is ``L_S + lambda * L_island``, lambda = 0.5; the caller adds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def class_weights(labels: Sequence[int] | np.ndarray | Tensor, num_classes: int) -> Tensor:
    """Per-class weights w_c = N / (K * n_c) (paper 000, eq. 5), float32 of shape [K].

    N is the number of labels, K = ``num_classes`` and n_c the count of class c. A class with no
    samples gets weight 0 (it never occurs as a target, so its weight is never used).
    """
    labels = torch.as_tensor(labels, dtype=torch.long).flatten()
    if labels.numel() == 0:
        raise ValueError("class_weights needs at least one label")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes})")
    counts = torch.bincount(labels, minlength=num_classes).to(torch.float32)
    weights = labels.numel() / (num_classes * counts)
    return torch.where(counts > 0, weights, torch.zeros_like(weights))


class CrossEntropy(nn.Module):
    """Softmax cross-entropy, optionally class-weighted, label-smoothed, or with soft targets.

    ``target`` is either class indices [B] or per-class scores [B, K] (probabilities or FER+ vote
    counts); scores are normalised to sum to 1 per row, giving -1/B * sum_i sum_c w_c p_ic log q_ic.
    With indices and weights the mean is over sum_i w_{y_i} (torch's convention). Label smoothing
    eps replaces a target p by (1 - eps) * p + eps / K (``torch.nn.functional.cross_entropy``).
    """

    weight: Tensor | None

    def __init__(self, weight: Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        weight = None if weight is None else torch.as_tensor(weight).float()
        self.register_buffer("weight", weight, persistent=False)  # from the data, not learnt
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Scalar loss for logits [B, K] and target [B] (indices) or [B, K] (scores)."""
        if target.is_floating_point():
            target = target / target.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return F.cross_entropy(
            logits, target, weight=self.weight, label_smoothing=self.label_smoothing
        )


class WeightNormPenalty(nn.Module):
    """lambda * ||w||_2, w the weights (not biases) of the given layers as one vector (paper 001).

    Paper 001 adds "the norm of the weights in the last two fully-connected layers" to the
    cross-entropy, lambda tuned on validation; its equation is not in the text, so the plain
    (unsquared) L2 norm is the default and ``squared=True`` gives lambda * ||w||_2^2.
    The layers are held in a plain tuple, not registered, so a state dict does not list them twice.
    """

    def __init__(self, layers: Iterable[nn.Module], lam: float, squared: bool = False) -> None:
        super().__init__()
        self.layers = tuple(layers)
        if not self.layers:
            raise ValueError("WeightNormPenalty needs at least one layer")
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.lam = lam
        self.squared = squared

    def forward(self) -> Tensor:
        """The penalty over the layers' current weights, a scalar tensor."""
        sq = sum(layer.weight.float().pow(2).sum() for layer in self.layers)
        return self.lam * (sq if self.squared else sq.sqrt())


class CenterLoss(nn.Module):
    """Center loss with learnable class centres ``centers`` [K, D] (paper 002, eq. 2).

    L_C = 1/2 * sum_i ||x_i - c_{y_i}||_2^2 over the batch. ``reduction="sum"`` is eq. 2 as
    written (with the squared norm of Wen et al., which paper 002 prints without the square);
    the default ``"mean"`` divides by the batch size B, as the reference implementations do, so
    that the loss does not grow with the batch. Centres are ``nn.Parameter``s updated by the
    optimiser; leave them out of weight decay. The loss is computed in float32.
    """

    def __init__(
        self, num_classes: int, feat_dim: int, reduction: Literal["mean", "sum"] = "mean"
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.num_classes = num_classes
        self.feat_dim = feat_dim
        self.reduction = reduction
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        """Scalar loss for features [B, D] and class indices labels [B]."""
        if features.ndim != 2 or features.shape[1] != self.feat_dim:
            raise ValueError(f"features must be [B, {self.feat_dim}], got {list(features.shape)}")
        if labels.shape != features.shape[:1]:
            raise ValueError(f"labels must be [{features.shape[0]}], got {list(labels.shape)}")
        # float32 even under bf16 autocast: the squared distances are summed over B * D terms.
        loss = 0.5 * (features.float() - self.centers[labels]).pow(2).sum()
        return loss / features.shape[0] if self.reduction == "mean" else loss


class IslandLoss(CenterLoss):
    """Island loss (paper 002, eq. 4; Cai et al. 2018), centre term as in ``CenterLoss``.

    L_island = L_C + lambda1 * sum_{j} sum_{k != j} (c_k . c_j / (||c_k||_2 ||c_j||_2) + 1),
    summed over ordered pairs of all K classes' centres (each unordered pair counts twice), as the
    double sum of eq. 4 is written; each term lies in [0, 2]. Paper 002 gives no separate value
    for lambda1 (it reuses the symbol lambda); the island loss's own weight (0.5) is the caller's.
    """

    def __init__(
        self,
        num_classes: int,
        feat_dim: int,
        lambda1: float,
        reduction: Literal["mean", "sum"] = "mean",
    ) -> None:
        super().__init__(num_classes, feat_dim, reduction)
        self.lambda1 = lambda1

    def pair_term(self) -> Tensor:
        """sum over ordered pairs j != k of (cos(c_j, c_k) + 1), a scalar."""
        unit = F.normalize(self.centers, dim=1)
        cos = unit @ unit.T
        off_diagonal = ~torch.eye(self.num_classes, dtype=torch.bool, device=cos.device)
        return (cos[off_diagonal] + 1).sum()

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        """Scalar loss for features [B, D] and class indices labels [B]."""
        return super().forward(features, labels) + self.lambda1 * self.pair_term()
