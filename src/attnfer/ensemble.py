"""Ensembles: several trained models that classify the same faces, their class probabilities
averaged, kept as one model file.

An ensemble file is an attnfer model file (:mod:`attnfer.pretrained`) whose ``arch`` is
:data:`ENSEMBLE_ARCH` and whose ``model_kwargs`` list the members (``arch``, ``kwargs``) and their
weights; the members' tensors are stored under ``members.<i>.``. Loaded, it is an
:class:`Ensemble`, whose output is the log of the weighted mean of the members' probabilities:
``softmax`` of it gives that mean, so evaluation, test-time augmentation, ONNX export and
distillation take it as they take any model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import ConfigError, ModelError
from .models import create_model, list_models, model_info
from .models.cost import model_cost

ENSEMBLE_ARCH = "ensemble"
MAX_MEMBERS = 16
PROBABILITY_FLOOR = 1e-12  # keeps the log finite where every member gives a class 0


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
    """The members (``{"arch", "kwargs"}`` each) and weights of an ensemble's ``model_kwargs``;
    ModelError naming ``where`` if they are malformed."""
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
    if not all(isinstance(w, int | float) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise ModelError(f"{where}: ensemble weights must be >= 0, not all 0: {weights}")
    return members, [float(w) for w in weights]


def build_ensemble(
    kwargs: Mapping[str, Any], num_classes: int, in_chans: int, input_size: tuple[int, int]
) -> Ensemble:
    """A fresh :class:`Ensemble` of the members ``kwargs`` lists (see :func:`check_spec`)."""
    members, weights = check_spec(kwargs, ENSEMBLE_ARCH)
    size = {"in_chans": in_chans, "input_size": input_size}
    built = [create_model(m["arch"], num_classes, **size, **m["kwargs"]) for m in members]
    return Ensemble(built, weights)


def ensemble_cost(kwargs: Mapping[str, Any], shape: tuple[int, int, int], num_classes: int):
    """Parameters and MFLOPs of one sample: the members' summed."""
    members, _ = check_spec(kwargs, ENSEMBLE_ARCH)
    costs = [model_cost(m["arch"], shape, num_classes=num_classes, **m["kwargs"]) for m in members]
    return sum(c[0] for c in costs), sum(c[1] for c in costs)


def combine(
    models: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    weights: Sequence[float] | None = None,
    half: bool = False,
) -> Path:
    """Write the ensemble of ``models`` (shipped names, run folders or model files; weights equal
    unless given) to ``out``. It takes the label names, preprocessing and framing of the first
    model: list first the one whose framing was measured.

    Raises ConfigError for fewer than two models, a weight count that differs, members that are
    ensembles themselves, or members that disagree on label names or preprocessing.
    """
    from .pretrained import Pretrained, load_pretrained

    weights = [1.0] * len(models) if weights is None else list(weights)
    if not 2 <= len(models) <= MAX_MEMBERS or len(weights) != len(models):
        raise ConfigError(
            f"an ensemble needs 2 to {MAX_MEMBERS} models and one weight each "
            f"({len(models)} models, {len(weights)} weights)"
        )
    if min(weights) < 0 or sum(weights) <= 0:
        raise ConfigError(f"ensemble weights must be >= 0, not all 0: {weights}")
    loaded = [load_pretrained(m) for m in models]
    first = loaded[0]
    for name, pre in zip(models, loaded, strict=True):
        if pre.arch == ENSEMBLE_ARCH:
            raise ConfigError(f"{name} is an ensemble already: list its members instead")
        if (pre.label_names, pre.preprocess) != (first.label_names, first.preprocess):
            raise ConfigError(
                f"{name} takes {pre.preprocess} and predicts {', '.join(pre.label_names)}; "
                f"{models[0]} takes {first.preprocess} and predicts {', '.join(first.label_names)}"
            )
    spec = {
        "members": [{"arch": p.arch, "kwargs": p.model_kwargs} for p in loaded],
        "weights": weights,
    }
    info = {
        "members": [str(m) for m in models],
        "member_val_acc": [p.info.get("best_val_acc") for p in loaded],
    }
    model = Ensemble([p.model for p in loaded], weights)
    ensemble = Pretrained(
        model, ENSEMBLE_ARCH, first.label_names, first.preprocess, spec, info, first.framing
    )
    return ensemble.save(out, half=half)
