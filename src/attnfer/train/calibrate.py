"""Temperature scaling (Guo et al., 2017): calibrated probabilities at unchanged accuracy.

One scalar ``T`` is fitted on a held-out split by minimising the negative log-likelihood of
``softmax(logits / T)``; ``T`` above 1 softens overconfident probabilities, below 1 sharpens
underconfident ones (a model distilled from softened targets, such as the shipped ``fast``).
Dividing logits by ``T`` changes no argmax, so accuracy stays as it was.

The temperature is folded into the model: every registered model ends in a linear
``classifier`` (``forward(x) == classifier(forward_features(x))``), whose weight and bias are
divided by ``T``. So the calibrated file gives calibrated probabilities everywhere it is used,
in PyTorch, ONNX and TorchScript alike, and records what was done in its ``info["calibration"]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..data.dataset import FaceDataset
from ..errors import ConfigError, ModelError
from ..pretrained import Pretrained
from .evaluate import predict_logits
from .metrics import calibration_summary

TEMPERATURE_RANGE = (0.05, 20.0)  # beyond these a fit says more about the data than the model


@dataclass(frozen=True)
class Calibration:
    """A fitted temperature and the calibration summaries on the fitting split before and after
    (:func:`~attnfer.train.metrics.calibration_summary`)."""

    temperature: float
    before: dict
    after: dict


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The ``T`` that minimises the mean NLL of ``softmax(logits / T)`` against ``labels``.

    The NLL is convex in ``1 / T``; L-BFGS on ``log T`` finds its minimum in a few steps."""
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise ConfigError(f"need logits [N, K] for N > 0 labels: {tuple(logits.shape)}")
    logits, labels = logits.detach().double(), labels.long()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def nll() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(nll)
    low, high = TEMPERATURE_RANGE
    return float(min(max(math.exp(log_t.item()), low), high))


def fold_temperature(model: torch.nn.Module, temperature: float) -> None:
    """Divide ``model.classifier``'s weight and bias by ``temperature`` in place."""
    head = getattr(model, "classifier", None)
    if not isinstance(head, torch.nn.Linear):
        raise ModelError(f"{type(model).__name__} has no linear classifier to calibrate")
    with torch.no_grad():
        head.weight.div_(temperature)
        if head.bias is not None:
            head.bias.div_(temperature)


def calibrate(pre: Pretrained, data: FaceDataset) -> Calibration:
    """Fit a temperature for ``pre`` on ``data`` (its own held-out split: FER2013's val for a
    FER2013 model) and fold it into ``pre.model``. Faces whose label the model does not know are
    left out, as in evaluation."""
    known = np.flatnonzero(data.labels < len(pre.label_names))
    if len(known) == 0:
        raise ConfigError(f"{data.name}: no face with a label that the model knows")
    logits = predict_logits(pre.model, pre.preprocess, data.images[known])[0]
    labels = torch.from_numpy(data.labels[known])
    temperature = fit_temperature(logits, labels)
    before = calibration_summary(labels.numpy(), logits.softmax(1).numpy())
    after = calibration_summary(labels.numpy(), logits.div(temperature).softmax(1).numpy())
    fold_temperature(pre.model, temperature)
    previous = pre.info.get("calibration", {}).get("temperature", 1.0)
    pre.info["calibration"] = {
        "temperature": round(previous * temperature, 6),
        "fitted_on": data.name,
        "samples": len(known),
        "ece_before": round(before["ece"], 6),
        "ece_after": round(after["ece"], 6),
        "nll_before": round(before["nll"], 6),
        "nll_after": round(after["nll"], 6),
    }
    return Calibration(temperature, before, after)
