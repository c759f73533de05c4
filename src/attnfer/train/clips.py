"""Training and evaluating clip classifiers (paper 004): FAN and frame-wise models on clip sets.

A clip recipe is an ordinary training recipe (:mod:`attnfer.train.config`) with one more
section, ``clips``::

    clips:
      frames: 3            # K segments, one random frame each per training clip
      aggregation: null    # test time: decision, mean or attention (null: the model's default)
      groups: 10           # frame groups of decision-level aggregation
      max_frames: 16       # frames used by feature-level aggregation
      detector: default    # face detector for video clips (their crops are cached)
      every: 1             # detect every N frames, track in between
      cache_dir: null      # face-crop cache (null: <data.source>/.attnfer-faces)
      subject_pattern: null  # regex whose group 1 is the subject id in clip file names

``data.source`` is a clip tree (``<label>/*.mp4``) or CK+ crops (one clip per sequence);
``data.split`` ``subject`` keeps each subject on one side. FAN (``fan_resnet18``) takes the K
frames of a clip at once; a frame-wise model (``deep_emotion``) trains on every sampled frame
with its clip's label and is validated on the clip's mean probabilities. ``model.weights``
(a file, a run folder or a shipped model name) with ``weights_mode: transfer_learning`` starts
FAN's frame embedding from a ResNet18 (e.g. the shipped ``default``, a ResNet18 + CBAM whose
attention weights FAN has no place for); keys without a ``backbone.`` prefix are mapped into it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..data.clips import ClipDataset, clip_splits, segment_indices
from ..data.transforms import Augment
from ..errors import ConfigError, DataError
from ..models import load_weights
from ..preprocess import Preprocess
from ..pretrained import resolve
from .aggregate import AGGREGATIONS, GROUPS, MAX_FRAMES, clip_probabilities, is_clip_model
from .config import Recipe, build_section, read_recipe_file, recipe_from_dict
from .evaluate import report_over_known_classes, write_report
from .run import RunResult, run_trainer, save_run
from .task import FERTask

FAN_PARTS = ("backbone.", "frame_attention.", "classifier.")


@dataclass
class ClipConfig:
    """The ``clips`` section of a clip recipe (see the module notes)."""

    frames: int = 3
    aggregation: str | None = None
    groups: int = GROUPS
    max_frames: int = MAX_FRAMES
    detector: str = "default"
    every: int = 1
    cache_dir: str | None = None
    subject_pattern: str | None = None

    def __post_init__(self) -> None:
        if self.aggregation not in (None, *AGGREGATIONS):
            raise ValueError(
                f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {self.aggregation!r}"
            )
        for name in ("frames", "groups", "max_frames", "every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")


@dataclass
class ClipRecipe:
    """A training recipe and its clip settings."""

    recipe: Recipe
    clips: ClipConfig = field(default_factory=ClipConfig)

    @property
    def name(self) -> str:
        return self.recipe.name

    def to_dict(self) -> dict[str, Any]:
        return {**self.recipe.to_dict(), "clips": dataclasses.asdict(self.clips)}


def clip_recipe_from_dict(raw: dict[str, Any], where: str = "recipe") -> ClipRecipe:
    """Validate a raw mapping into a ClipRecipe (its ``clips`` section checked as every other)."""
    raw = dict(raw)
    clips = build_section(ClipConfig, raw.pop("clips", None) or {}, f"{where}: clips")
    return ClipRecipe(recipe_from_dict(raw, where), clips)


def load_clip_recipe(path: str | Path, overrides: list[str] | None = None) -> ClipRecipe:
    """Read a clip recipe YAML, apply ``key=value`` overrides (``clips.frames=5`` too)."""
    return clip_recipe_from_dict(read_recipe_file(path, overrides), str(path))


def with_clip_splits(data: ClipDataset, cr: ClipRecipe) -> ClipDataset:
    """``data`` with the recipe's splits (``data.split``)."""
    cfg = cr.recipe.data
    data = clip_splits(data, cfg.split, cfg.fractions, cr.recipe.trainer.seed)
    if cfg.train_split not in data.splits:
        raise ConfigError(
            f"{cr.recipe.path}: clips in {cfg.source} have no split {cfg.train_split!r} "
            f"(splits: {', '.join(data.splits) or 'none'}); set data.split to make them"
        )
    return data


class SampledClips(Dataset):
    """K frames per clip: one random frame per segment (``train``) or evenly spaced."""

    def __init__(self, data: ClipDataset, k: int, train: bool, seed: int = 0) -> None:
        self.data, self.k = data, k
        self.rng = np.random.default_rng(seed) if train else None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        idx = segment_indices(int(self.data.lengths[i]), self.k, self.rng)
        return torch.from_numpy(self.data.clip(i)[idx]), int(self.data.labels[i])


class ClipDataModule(L.LightningDataModule):
    """Serves uint8 clips of K frames; preprocessing and augmentation run per batch."""

    def __init__(
        self,
        train: ClipDataset,
        val: ClipDataset | None,
        preprocess: Preprocess,
        augment: Augment | None,
        frames: int = 3,
        batch_size: int = 48,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.train_set, self.val_set = train, val
        self.preprocess, self.augment = preprocess, augment
        self.frames, self.batch_size, self.seed = frames, batch_size, seed

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            SampledClips(self.train_set, self.frames, True, self.seed),
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=len(self.train_set) > self.batch_size,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def val_dataloader(self) -> DataLoader:
        """Asked for only when there is a val set (``run_trainer`` skips the loop otherwise)."""
        return DataLoader(
            SampledClips(self.val_set, self.frames, False), batch_size=self.batch_size
        )

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        clips, labels = batch
        b, k = clips.shape[:2]
        x = self.preprocess(clips.flatten(0, 1))
        if self.trainer is not None and self.trainer.training and self.augment is not None:
            x = self.augment.lower_resolution(self.augment(x))
        return x.unflatten(0, (b, k)), labels


class ClipTask(FERTask):
    """:class:`FERTask` on clips (B x K x C x H x W): FAN classifies each clip; a frame-wise
    model trains on each frame with its clip's label and validates on mean probabilities."""

    def clip_probs(self, x: torch.Tensor) -> torch.Tensor:
        model = self.eval_model
        if is_clip_model(model):
            return model(x).float().softmax(1)
        probs = model(x.flatten(0, 1)).float().softmax(1)
        return probs.unflatten(0, x.shape[:2]).mean(1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        if not is_clip_model(self.model):
            x, y = x.flatten(0, 1), y.repeat_interleave(x.shape[1])
        return super().training_step((x, y), batch_idx)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        probs = self.clip_probs(x)
        loss = F.nll_loss(probs.clamp_min(1e-8).log(), y)
        self.log_epoch("val_loss", loss)
        self.log_epoch("val_acc", (probs.argmax(1) == y).float().mean())


def _fan_key(key: str) -> str:
    return key if key.startswith(FAN_PARTS) else "backbone." + key


def make_clip_task(recipe: Recipe, label_names: Sequence[str]) -> ClipTask:
    """The task, with ``model.weights`` loaded (a ResNet18 file maps into FAN's backbone;
    ``continue_training`` checks the file's class names against ``label_names``)."""
    task = ClipTask(recipe, len(label_names))
    if recipe.model.weights:
        key_map = _fan_key if is_clip_model(task.model) else None
        path, mode = resolve(recipe.model.weights), recipe.model.weights_mode
        load_weights(task.model, path, mode, key_map, class_names=label_names)
    return task


def fit_clips(
    cr: ClipRecipe,
    run_dir: str | Path,
    data: ClipDataset,
    resume: bool = False,
    progress: bool = True,
) -> RunResult:
    """Train a clip recipe on ``data`` (clips with splits, :func:`with_clip_splits`) into
    ``run_dir`` (checkpoints, model.safetensors, curves, the test report ``eval_test``);
    ``resume`` continues from ``run_dir/last.ckpt``. Video clips are read for a recipe by
    :func:`attnfer.video.clips.recipe_clips`."""
    start = time.time()
    recipe, cfg = cr.recipe, cr.recipe.data
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "recipe.json").write_text(json.dumps(cr.to_dict(), indent=2, default=str))
    train = data.split(cfg.train_split)
    val = data.split(cfg.val_split) if cfg.val_split in data.splits else None
    L.seed_everything(recipe.trainer.seed, workers=True, verbose=False)
    task = make_clip_task(recipe, data.label_names)
    dm = ClipDataModule(
        train, val, recipe.preprocess, recipe.augment, cr.clips.frames,
        recipe.trainer.batch_size, recipe.trainer.seed,
    )  # fmt: skip
    has_val = val is not None
    model, best_val, epochs = run_trainer(recipe, run_dir, task, dm, has_val, resume, progress)
    extra = {
        "clips": dataclasses.asdict(cr.clips),
        "split": {"method": cfg.split, "fractions": cfg.fractions, "seed": recipe.trainer.seed},
    }
    model_path = save_run(recipe, run_dir, model, data.label_names, best_val, epochs, start, extra)
    report = None
    if cfg.test_split and cfg.test_split in data.splits:
        report = evaluate_clips(
            model, recipe.preprocess, data.label_names, data.split(cfg.test_split), cr.clips
        )
        write_report(report, run_dir / f"eval_{cfg.test_split}")
    return RunResult(run_dir, model_path, best_val, report, time.time() - start)


@torch.inference_mode()
def predict_clips(
    model: torch.nn.Module, preprocess: Preprocess, data: ClipDataset, clips: ClipConfig
) -> np.ndarray:
    """Class probabilities of every clip (clips x classes) by ``clips.aggregation``."""
    model.eval()
    out = []
    for i in range(len(data)):
        x = preprocess(torch.from_numpy(data.clip(i)))
        probs = clip_probabilities(
            model, x, clips.aggregation, clips.groups, clips.frames, clips.max_frames
        )
        out.append(probs)
    return np.stack(out)


def evaluate_clips(
    model: torch.nn.Module,
    preprocess: Preprocess,
    label_names: tuple[str, ...],
    data: ClipDataset,
    clips: ClipConfig | None = None,
) -> dict:
    """Accuracy, per-class scores and confusion matrix of ``model`` on clips.

    As :func:`attnfer.train.evaluate.evaluate_model`: clips whose label the model does not know
    are left out, and predictions are restricted to the classes the data set has.
    """
    clips = clips or ClipConfig()
    known = np.flatnonzero(data.labels < len(label_names))
    if not len(known):
        raise DataError(f"{data.name}: no clip has a label the model knows")
    probs = predict_clips(model, preprocess, data.subset(known), clips)
    report = report_over_known_classes(probs, data.labels[known], data.classes, label_names, known)
    report.update(
        data=data.name,
        aggregation=clips.aggregation or ("attention" if is_clip_model(model) else "decision"),
        samples=len(known),
        excluded_unknown_labels=len(data) - len(known),
    )
    return report
