"""Knowledge distillation: a data set with a teacher model's class probabilities as soft labels,
for a student to train on (recipe: ``data.source`` the packed file, ``loss.soft_labels``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import numpy as np

from ..data.dataset import FaceDataset
from ..errors import ConfigError
from ..pretrained import load_pretrained
from .evaluate import predict_proba

CHUNK = 2048  # faces between two progress reports
BATCH_SIZE = 256  # faces per teacher call
TEACHER_TTA = ("none", "flip")


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
    pre = load_pretrained(teacher)
    if pre.label_names != data.label_names:
        raise ConfigError(
            f"teacher {teacher} predicts {', '.join(pre.label_names)}; "
            f"{data.name} has {', '.join(data.label_names)}"
        )
    parts = []
    for start in range(0, len(data), CHUNK):
        images = data.images[start : start + CHUNK]
        parts.append(predict_proba(pre.model, pre.preprocess, images, tta, BATCH_SIZE, temperature))
        if progress is not None:
            progress(start + len(images), len(data))
    soft = np.concatenate(parts) if parts else np.zeros((0, data.num_classes), np.float32)
    return dataclasses.replace(data, soft_labels=soft)
