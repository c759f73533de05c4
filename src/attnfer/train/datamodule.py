"""The Lightning data module: decoded faces in memory, batched augmentation on the device."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ..data.dataset import FaceDataset
from ..data.transforms import Augment
from ..preprocess import Preprocess


class FaceDataModule(L.LightningDataModule):
    """Serves uint8 faces from memory; preprocessing and augmentation run per batch after the
    transfer to the device, so a batch costs one tensor gather and a few batched kernels."""

    def __init__(
        self,
        train: FaceDataset,
        val: FaceDataset | None,
        preprocess: Preprocess,
        augment: Augment | None,
        batch_size: int = 128,
        channels_last: bool = True,
        seed: int = 0,
        soft_labels: bool = False,
        start_size: int | None = None,
    ):
        super().__init__()
        self.train_set, self.val_set = train, val
        self.soft_labels = soft_labels
        self.preprocess, self.augment = preprocess, augment
        self.batch_size = batch_size
        self.channels_last = channels_last
        self.seed = seed
        self.start_size = start_size

    @staticmethod
    def _tensors(data: FaceDataset, soft_labels: bool = False) -> TensorDataset:
        tensors = [torch.from_numpy(data.images), torch.from_numpy(data.labels)]
        if soft_labels:
            tensors.append(torch.from_numpy(np.asarray(data.soft_labels, dtype=np.float32)))
        return TensorDataset(*tensors)

    def train_dataloader(self) -> DataLoader:
        """Batches of (uint8 faces, labels), with the soft labels third when training on them."""
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            self._tensors(self.train_set, self.soft_labels),
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=len(self.train_set) > self.batch_size,
            generator=gen,
        )

    def val_dataloader(self) -> DataLoader:
        """Asked for only when there is a val set (``run_trainer`` skips the loop otherwise)."""
        return DataLoader(self._tensors(self.val_set), batch_size=max(self.batch_size, 256))

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels, *soft = batch
        x = self.preprocess(images)
        if self.trainer is not None and self.trainer.training and self.augment is not None:
            progress = self.trainer.current_epoch / max(1, self.trainer.max_epochs - 1)
            x = self.augment.at(progress)(x)
        if self.trainer is not None and self.trainer.training and self.start_size is not None:
            side = progressive_size(
                self.trainer.current_epoch, self.trainer.max_epochs, self.start_size, x.shape[-1]
            )
            if side != x.shape[-1]:
                x = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, labels, *soft


def progressive_size(epoch: int, epochs: int, start: int, full: int, step: int = 8) -> int:
    """The training side at ``epoch`` of ``epochs``: ``start``, ``start + step``, ... up to
    ``full``, each for an equal share of the epochs (``start >= full``: always ``full``)."""
    sides = [*range(start, full, step), full]
    return sides[min(epoch * len(sides) // max(epochs, 1), len(sides) - 1)]
