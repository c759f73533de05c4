"""Small Lightning pieces: atomic checkpoint files, staged unfreezing (paper 000), epoch lines."""

from __future__ import annotations

import logging
import os
import pickle
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from ..errors import ModelError
from .config import Stage

log = logging.getLogger("attnfer.train")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file (``<name>.tmp``), then renames it: a run
    killed mid-write never leaves a truncated checkpoint behind. Loads with
    ``weights_only=True``; a file that is not a readable checkpoint, or that holds Python objects
    beyond tensors and plain values, raises a one-line ModelError naming it."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        super().save_checkpoint(checkpoint, tmp, storage_options)
        os.replace(tmp, path)

    def load_checkpoint(self, path, map_location=None, weights_only: bool | None = None):
        try:
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError:  # weights_only met an object it will not build
            raise ModelError(
                f"{path}: holds Python objects beyond tensors and plain values, so it is not "
                "loaded (loading them could run code); it is not a checkpoint attnfer wrote"
            ) from None
        except FileNotFoundError:
            raise ModelError(f"{path}: no such checkpoint") from None
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelError(
                f"{path}: not a readable checkpoint (truncated or corrupt: {reason})"
            ) from None


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
    """One log line per epoch (losses, accuracies, images/s, time left), readable in a log file
    too. The time left is the epochs to go times this attempt's mean epoch. With
    ``every_seconds`` (where no progress bar shows, as in a log file) also a line within the
    epoch at most that often: the batch reached, images/s and the time to the epoch's end."""

    def __init__(self, every_seconds: float | None = None):
        self.every_seconds = every_seconds

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._durations: list[float] = []
        log.info(
            "training on %s, precision %s, %d batches an epoch",
            pl_module.device, trainer.precision, trainer.num_training_batches,
        )  # fmt: skip

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._last_line = time.perf_counter()
        self._batches = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        self._batches += 1  # this attempt's, for the rate: a resumed epoch starts mid-way
        now = time.perf_counter()
        if self.every_seconds is None or now - self._last_line < self.every_seconds:
            return
        self._last_line = now
        seconds, left = now - self._start, trainer.num_training_batches - batch_idx - 1
        log.info(
            "epoch %d/%d, batch %d/%d: %.0f img/s, %s to the epoch's end",
            trainer.current_epoch + 1, trainer.max_epochs, batch_idx + 1,
            trainer.num_training_batches, self._batches * trainer.datamodule.batch_size / seconds,
            format_duration(left * seconds / self._batches),
        )  # fmt: skip

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = time.perf_counter() - self._start
        self._durations.append(seconds)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        images = trainer.num_training_batches * trainer.datamodule.batch_size
        done = trainer.current_epoch + 1
        parts = [f"epoch {done}/{trainer.max_epochs}"]
        names = ("train_loss", "train_acc", "val_loss", "val_acc")
        parts += [f"{k} {metrics[k]:.4f}" for k in names if k in metrics]
        left = (trainer.max_epochs - done) * sum(self._durations) / len(self._durations)
        parts.append(f"{images / seconds:.0f} img/s, {seconds:.0f} s, {format_duration(left)} left")
        log.info("  ".join(parts))


class EpochRecord(L.Callback):
    """Keeps an epoch's metrics in the checkpoint written at its end, and logs them again in a
    run resumed from it: Lightning writes an epoch's checkpoint before it logs the epoch's
    training metrics, so a run killed in between would otherwise resume without them in its
    history (a resumed epoch's last rows win there, so a row logged twice changes nothing)."""

    KEY = "epoch_metrics"

    def __init__(self) -> None:
        self._restored: dict[str, Any] | None = None

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        checkpoint[self.KEY] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        checkpoint[self.KEY]["metrics"] = metrics

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._restored = checkpoint.get(self.KEY)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        restored, self._restored = self._restored, None
        if restored and restored["metrics"] and trainer.logger is not None:
            metrics = {**restored["metrics"], "epoch": restored["epoch"]}
            trainer.logger.log_metrics(metrics, step=max(0, restored["step"] - 1))
            trainer.logger.save()


def format_duration(seconds: float) -> str:
    """``42 s``, ``17 min``, ``2 h 05 min``."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
