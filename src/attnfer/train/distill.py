"""Knowledge distillation from a teacher model, two ways (recipe: ``loss.soft_labels`` the
teacher's share of the target):

- offline, :func:`distill_dataset`: a data set packed with the teacher's class probabilities for
  each face as it is stored (``attnfer data distill``; recipe: ``data.source`` the packed file);
- online, :class:`OnlineTeacher`: the teacher's probabilities for each training batch as the
  student sees it, augmented and mixed (recipe: ``loss.teacher``), so that the target always
  describes the image the student is shown (consistent teaching; docs/results.md).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data.dataset import FaceDataset
from ..errors import ConfigError
from ..preprocess import Preprocess
from ..pretrained import Pretrained, load_pretrained
from .evaluate import predict_proba

CHUNK = 2048  # faces between two progress reports
BATCH_SIZE = 256  # faces per teacher call
TEACHER_TTA = ("none", "flip")


def load_teacher(
    teacher: str | os.PathLike, label_names: Sequence[str], data_name: str
) -> Pretrained:
    """The model ``teacher`` (shipped name, run folder or weights file); ConfigError when it
    predicts other labels than ``label_names`` (of the data set ``data_name``)."""
    pre = load_pretrained(teacher)
    if tuple(pre.label_names) != tuple(label_names):
        raise ConfigError(
            f"teacher {teacher} predicts {', '.join(pre.label_names)}; "
            f"{data_name} has {', '.join(label_names)}"
        )
    return pre


def distill_dataset(
    data: FaceDataset,
    teacher: str | os.PathLike,
    temperature: float = 2.0,
    tta: str = "flip",
    progress: Callable[[int, int], None] | None = None,
) -> FaceDataset:
    """``data`` (a copy) with ``soft_labels`` [N, K]: the class probabilities of the model
    ``teacher`` (shipped name, run folder or weights file) for each face, softened by
    ``temperature`` (softmax of logits / temperature; above 1: softer) and averaged over the
    test-time views ``tta`` (none or flip). ``progress(done, total)`` is called as faces are done.

    Raises ConfigError for a temperature that is not positive, another ``tta``, or a teacher that
    predicts other labels than ``data`` has.
    """
    if temperature <= 0 or tta not in TEACHER_TTA:
        raise ConfigError(f"need --temperature > 0 and --tta none or flip: {temperature}, {tta}")
    pre = load_teacher(teacher, data.label_names, data.name)
    parts = []
    for start in range(0, len(data), CHUNK):
        images = data.images[start : start + CHUNK]
        parts.append(predict_proba(pre.model, pre.preprocess, images, tta, BATCH_SIZE, temperature))
        if progress is not None:
            progress(start + len(images), len(data))
    soft = np.concatenate(parts) if parts else np.zeros((0, data.num_classes), np.float32)
    return dataclasses.replace(data, soft_labels=soft)


class OnlineTeacher:
    """A frozen model whose class probabilities for a normalised training batch are the
    student's soft target. Called with the batch the student trains on; a batch smaller than
    the teacher's input (progressive resizing) is resized to it. Not an ``nn.Module``, so that
    neither checkpoints nor the optimiser hold its weights; it follows the batch's device.

    Raises ConfigError when the teacher predicts other labels than the student or normalises
    faces differently (channels, mean, std)."""

    def __init__(
        self,
        teacher: str | os.PathLike,
        label_names: Sequence[str],
        preprocess: Preprocess,
        data_name: str,
    ) -> None:
        pre = load_teacher(teacher, label_names, data_name)
        theirs, ours = pre.preprocess, preprocess
        if (theirs.channels, theirs.mean, theirs.std) != (ours.channels, ours.mean, ours.std):
            raise ConfigError(
                f"teacher {teacher} takes {theirs.channels}-channel faces normalised by mean "
                f"{theirs.mean}, std {theirs.std}; the recipe's preprocess gives {ours.channels}"
                f"-channel faces with mean {ours.mean}, std {ours.std}"
            )
        self.model = pre.model.eval().requires_grad_(False)
        self.size = theirs.size

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities [B, K] (float32) for the normalised batch ``x`` [B, C, H, W]."""
        self.model.to(x.device)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.model(x).float().softmax(-1)
