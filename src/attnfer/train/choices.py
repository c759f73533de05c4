"""The names a recipe chooses among, and what each builds: data splits, optimisers and
learning-rate schedules. A new choice is one entry in its table: :mod:`.config` checks a recipe's
names against these tables, and the trainer builds from them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import torch

from ..data.dataset import FaceDataset
from ..data.splits import (
    deep_emotion_jaffe_split,
    stratified_split,
    subject_fraction_splits,
    with_splits,
)

if TYPE_CHECKING:
    from .config import OptimizerConfig, ScheduleConfig

DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)

# data.split: (data set, data.fractions or None, seed) -> the data set with its splits
SPLITS: dict[str, Callable[[FaceDataset, Sequence[float] | None, int], FaceDataset]] = {
    "official": lambda data, fractions, seed: data,
    "stratified": lambda data, fractions, seed: stratified_split(
        data, fractions or DEFAULT_FRACTIONS, seed=seed
    ),
    "subject": lambda data, fractions, seed: with_splits(
        data, subject_fraction_splits(data, fractions or DEFAULT_FRACTIONS, seed)
    ),
    "jaffe_deep_emotion": lambda data, fractions, seed: deep_emotion_jaffe_split(data, seed=seed),
}

ParamGroups = list[dict[str, Any]]

# optimizer.name: (parameter groups, optimizer settings) -> the optimiser
OPTIMIZERS: dict[str, Callable[[ParamGroups, OptimizerConfig], torch.optim.Optimizer]] = {
    "sgd": lambda groups, cfg: torch.optim.SGD(
        groups,
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        nesterov=cfg.nesterov and cfg.momentum > 0,
    ),
    "adam": lambda groups, cfg: torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay),
    "adamw": lambda groups, cfg: torch.optim.AdamW(
        groups, lr=cfg.lr, weight_decay=cfg.weight_decay
    ),
}


def warmup_cosine(step: int, warmup: int, total: int, floor: float = 1e-3) -> float:
    """Learning-rate factor: linear warm-up for ``warmup`` steps, then cosine decay to ``floor``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _cosine(optimizer, cfg: ScheduleConfig, steps: int, epochs: int) -> dict[str, Any]:
    warmup = int(steps * cfg.warmup_epochs / max(epochs, 1))
    schedule = partial(warmup_cosine, warmup=warmup, total=steps)
    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), "interval": "step"}


def _plateau(optimizer, cfg: ScheduleConfig, steps: int, epochs: int) -> dict[str, Any]:
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=1 / cfg.divisor, patience=cfg.patience
    )
    return {"scheduler": scheduler, "monitor": "val_acc"}


def _step(optimizer, cfg: ScheduleConfig, steps: int, epochs: int) -> dict[str, Any]:
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    return {"scheduler": scheduler}


# schedule.name: (optimiser, schedule settings, optimiser steps, epochs) -> Lightning's
# lr_scheduler configuration, or None for a constant learning rate
SCHEDULES: dict[str, Callable[..., dict[str, Any] | None]] = {
    "none": lambda optimizer, cfg, steps, epochs: None,
    "cosine": _cosine,
    "step": _step,
    "plateau": _plateau,
}
