"""Small Lightning pieces: atomic checkpoint files and staged unfreezing (paper 000)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from .config import Stage

log = logging.getLogger("attnfer.train")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file, then renames it: a run killed mid-write
    never leaves a truncated checkpoint behind. Loads with ``weights_only=True``."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        super().save_checkpoint(checkpoint, tmp, storage_options)
        os.replace(tmp, path)

    def load_checkpoint(self, path, map_location=None, weights_only: bool | None = None):
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)


def conv_layers(model: nn.Module) -> list[nn.Conv2d]:
    """The conv layers of a model's base (``model.features`` where it has one), in order."""
    base = getattr(model, "features", model)
    return [m for m in base.modules() if isinstance(m, nn.Conv2d)]


class StagedUnfreeze(L.Callback):
    """Freeze the conv base, then unfreeze its last k conv layers stage by stage, setting each
    stage's learning rate (paper 000: head first, then the last 1, 2, 3 convs at lr / 10 each)."""

    def __init__(self, stages: list[Stage]):
        self.stages = stages

    def stage_at(self, epoch: int) -> Stage:
        end = 0
        for stage in self.stages:
            end += stage.epochs
            if epoch < end:
                return stage
        return self.stages[-1]

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        stage = self.stage_at(trainer.current_epoch)
        convs = conv_layers(pl_module.model)
        first_trainable = len(convs) - stage.trainable_convs
        for i, conv in enumerate(convs):
            conv.requires_grad_(i >= first_trainable)
        for group in trainer.optimizers[0].param_groups[:1]:
            group["lr"] = stage.lr


class EpochSummary(L.Callback):
    """One log line per epoch (losses, accuracies, images/s), readable in a log file too."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = time.perf_counter() - self._start
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        images = trainer.num_training_batches * trainer.datamodule.batch_size
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        names = ("train_loss", "train_acc", "val_loss", "val_acc")
        parts += [f"{k} {metrics[k]:.4f}" for k in names if k in metrics]
        parts.append(f"{images / seconds:.0f} img/s, {seconds:.0f} s")
        log.info("  ".join(parts))
