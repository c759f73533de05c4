"""Ensembles: several trained models that classify the same faces, their class probabilities
averaged.

An ensemble is kept as a model file (:func:`attnfer.pretrained.save_ensemble`) whose ``arch`` is
:data:`ENSEMBLE_ARCH` and whose ``model_kwargs`` list the members (``arch``, ``kwargs``) and their
weights. Either the members' tensors are stored in it under ``members.<i>.``, or every member
names its own model file (``file``: a bare file name in the ensemble file's folder, with the
``sha256`` of its bytes), so that a model shipped alone is not stored twice. Built, it is an
:class:`Ensemble`, whose output is the log of the weighted mean of the members' probabilities:
``softmax`` of it gives that mean, so evaluation, test-time augmentation, ONNX export and
distillation take it as they take any model. It is no zoo architecture (no ``forward_features``
or ``classifier``): it is not registered, and training and Grad-CAM do not take it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ModelError
from .cost import model_cost
from .registry import create_model, list_models, model_info

ENSEMBLE_ARCH = "ensemble"
MAX_MEMBERS = 16
PROBABILITY_FLOOR = 1e-12  # keeps the log finite where every member gives a class 0
MEMBER_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.safetensors")  # no folders, no ".."
SHA256 = re.compile(r"[0-9a-f]{64}")


class Ensemble(nn.Module):
    """Members run on the same input; ``forward(x)`` -> ``log(sum_i w_i softmax(member_i(x)))``
    [B, K], the weights ``w`` normalised to sum to 1."""

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        share = torch.tensor([float(w) for w in weights]) / sum(weights)
        self.register_buffer("weights", share, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        probs = torch.stack([m(x).float().softmax(-1) for m in self.members], dim=-1)
        return (probs @ self.weights).clamp_min(PROBABILITY_FLOOR).log()


def check_spec(kwargs: Mapping[str, Any], where: str) -> tuple[list[dict[str, Any]], list[float]]:
    """The members (``{"arch", "kwargs"}`` each, and ``file`` and ``sha256`` in all or none) and
    weights (finite, >= 0, not all 0) of an ensemble's ``model_kwargs``; ModelError naming
    ``where`` if they are malformed."""
    members, weights = kwargs.get("members"), kwargs.get("weights")
    if not isinstance(members, list) or not isinstance(weights, list):
        raise ModelError(f"{where}: an ensemble's model_kwargs need members and weights lists")
    if not 2 <= len(members) <= MAX_MEMBERS or len(weights) != len(members):
        raise ModelError(
            f"{where}: an ensemble needs 2 to {MAX_MEMBERS} members and one weight each "
            f"({len(members)} members, {len(weights)} weights)"
        )
    for m in members:
        if not isinstance(m, dict) or not isinstance(m.get("kwargs"), dict):
            raise ModelError(f"{where}: each ensemble member needs an arch and a kwargs mapping")
        if m.get("arch") not in list_models() or model_info(m["arch"]).clip:
            raise ModelError(f"{where}: ensemble member {m.get('arch')!r} is no image model")
    referenced = [m for m in members if "file" in m]
    if referenced and len(referenced) != len(members):
        raise ModelError(f"{where}: either every ensemble member names its file or none does")
    for m in referenced:
        file, digest = m.get("file"), m.get("sha256")
        if not isinstance(file, str) or not MEMBER_FILE.fullmatch(file):
            raise ModelError(
                f"{where}: member file {file!r} is not a .safetensors name in its folder"
            )
        if not isinstance(digest, str) or not SHA256.fullmatch(digest):
            raise ModelError(f"{where}: member file {file} has no sha256 of 64 hex digits")
    finite = all(isinstance(w, int | float) and 0 <= w < math.inf for w in weights)
    if not finite or sum(weights) <= 0:
        raise ModelError(f"{where}: ensemble weights must be finite, >= 0, not all 0: {weights}")
    return members, [float(w) for w in weights]


def build_ensemble(
    kwargs: Mapping[str, Any], num_classes: int, in_chans: int, input_size: tuple[int, int]
) -> Ensemble:
    """A fresh :class:`Ensemble` of the members ``kwargs`` lists (see :func:`check_spec`)."""
    members, weights = check_spec(kwargs, ENSEMBLE_ARCH)
    size = {"in_chans": in_chans, "input_size": input_size}
    built = [create_model(m["arch"], num_classes, **size, **m["kwargs"]) for m in members]
    return Ensemble(built, weights)


def ensemble_cost(
    kwargs: Mapping[str, Any], shape: tuple[int, int, int], num_classes: int
) -> tuple[int, float]:
    """Parameters and MFLOPs of one sample: the members' summed."""
    members, _ = check_spec(kwargs, ENSEMBLE_ARCH)
    costs = [model_cost(m["arch"], shape, num_classes=num_classes, **m["kwargs"]) for m in members]
    return sum(c[0] for c in costs), sum(c[1] for c in costs)
