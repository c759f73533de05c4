"""Training recipes: YAML files parsed into typed, validated settings.

A recipe names the data, the model, the loss, the optimiser and schedule, the augmentation and the
trainer settings; ``--set key=value`` overrides any of them (``trainer.epochs=5``). Unknown keys and
bad values raise ConfigError naming the recipe file and the key.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..data.transforms import Augment
from ..errors import ConfigError
from ..preprocess import Preprocess
from .choices import OPTIMIZERS, SCHEDULES, SPLITS


@dataclass
class DataConfig:
    source: str = ""
    format: str | None = None
    train_split: str = "train"
    val_split: str | None = "val"
    test_split: str | None = "test"
    # official: the source's own splits; stratified / subject: seeded random train/val/test by
    # ``fractions`` (subject keeps each subject on one side); jaffe_deep_emotion: 120/23/70.
    split: str = "official"
    fractions: list[float] | None = None
    max_bad_samples: int = 100


@dataclass
class ModelConfig:
    name: str = "resnet18_cbam"
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    weights_mode: str = "transfer_learning"


@dataclass
class LossConfig:
    class_weights: bool = False
    label_smoothing: float = 0.0
    # center / island loss on the classifier's input features (paper 002)
    feature_loss: str | None = None
    feature_lambda: float = 0.5
    island_lambda1: float = 10.0
    center_lr: float = 0.5
    # L2 norm of the last two FC layers' weights (paper 001)
    weight_norm_lambda: float = 0.0
    # weight w of the data's soft labels (FER+ votes, or a teacher's probabilities written by
    # `attnfer data distill`) in the target: (1 - w) * one-hot label + w * soft label
    soft_labels: float = 0.0
    # a model (shipped name, run folder or file) whose probabilities for each training batch as
    # the student sees it, augmented and mixed, are the soft label (weight soft_labels) in place
    # of the data's: online distillation, the target always of the image shown
    teacher: str | None = None
    # mixup (Zhang et al. 2018): each training image blended with another of its batch, and so
    # their targets, by a share drawn from Beta(mixup, mixup); 0 turns it off
    mixup: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.soft_labels, (int, float)) and not 0.0 <= self.soft_labels <= 1.0:
            raise ValueError(f"soft_labels must be in [0, 1], got {self.soft_labels}")
        if isinstance(self.mixup, (int, float)) and self.mixup < 0:
            raise ValueError(f"mixup must be >= 0 (0: off), got {self.mixup}")
        if self.teacher is not None and not isinstance(self.teacher, str):
            raise ValueError(f"teacher must be a model name or path, got {self.teacher!r}")
        if self.teacher and not self.soft_labels:
            raise ValueError("a teacher needs soft_labels > 0: its share of the target")
        if self.mixup and self.feature_loss:
            raise ValueError("mixup blends faces of two classes: it cannot go with a feature_loss")


@dataclass
class OptimizerConfig:
    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True


@dataclass
class ScheduleConfig:
    name: str = "cosine"
    warmup_epochs: int = 0
    step_size: int = 30
    gamma: float = 0.1
    patience: int = 5
    divisor: float = 10.0


@dataclass
class Stage:
    """One stage of staged fine-tuning (paper 000): train for ``epochs`` with the last
    ``trainable_convs`` conv layers of the base unfrozen, at ``lr``."""

    epochs: int
    trainable_convs: int
    lr: float


@dataclass
class TrainerConfig:
    epochs: int = 30
    batch_size: int = 128
    precision: str = "auto"
    seed: int = 0
    val_every: int = 1
    early_stopping_patience: int | None = None
    channels_last: bool = True
    compile: bool = False
    # besides the plain test report, a run writes one with this test-time augmentation
    tta: str = "flip"
    # > 0: validate and save an exponential moving average of the weights (e.g. 0.999)
    ema_decay: float = 0.0
    # progressive resizing: training faces start at this side and grow by 8 px to preprocess.size,
    # an equal share of the epochs at each side (validation, test and the saved model: full size)
    start_size: int | None = None
    # stop training after this many minutes (resumed attempts count too) and keep the best epoch
    max_minutes: float | None = None
    # Lightning's: "auto" takes every GPU (DDP when more than one), else the CPU; devices: 2 with
    # strategy: ddp runs two CPU processes; num_nodes > 1 for multi-node DDP (launched by SLURM,
    # torchrun or the like).
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.ema_decay, (int, float)) and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if isinstance(self.start_size, int) and self.start_size < 8:
            raise ValueError(f"start_size must be at least 8, got {self.start_size}")
        if isinstance(self.max_minutes, (int, float)) and self.max_minutes <= 0:
            raise ValueError(f"max_minutes must be > 0, got {self.max_minutes}")


@dataclass
class Recipe:
    name: str
    data: DataConfig
    model: ModelConfig
    preprocess: Preprocess = field(default_factory=Preprocess)
    augment: Augment | None = field(default_factory=Augment)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    stages: list[Stage] = field(default_factory=list)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    paper: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    path: str = ""

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.stages) if self.stages else self.trainer.epochs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The recipe as a run folder's ``recipe.json`` holds it."""
        return json.dumps(self.to_dict(), indent=2, default=str)


_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "preprocess": Preprocess,
    "augment": Augment,
    "loss": LossConfig,
    "optimizer": OptimizerConfig,
    "schedule": ScheduleConfig,
    "trainer": TrainerConfig,
}
_CHOICES = {
    ("data", "split"): set(SPLITS),
    ("optimizer", "name"): set(OPTIMIZERS),
    ("schedule", "name"): set(SCHEDULES),
    ("loss", "feature_loss"): {None, "center", "island"},
    ("model", "weights_mode"): {"transfer_learning", "continue_training"},
    ("trainer", "precision"): {"auto", "32-true", "bf16-mixed", "16-mixed"},
    ("trainer", "tta"): {"none", "flip", "tencrop"},
}


def _build(cls, values: Any, where: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {values!r}")
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(names)}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _check_types(obj: Any, where: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        default = f.default if f.default is not dataclasses.MISSING else None
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{where}.{f.name}: expected true/false, got {value!r}")
        if (isinstance(default, (int, float)) and not isinstance(default, bool)) and (
            isinstance(value, bool) or not isinstance(value, (int, float))
        ):
            raise ConfigError(f"{where}.{f.name}: expected a number, got {value!r}")
        section = where.rsplit(":", 1)[-1].strip()
        allowed = _CHOICES.get((section, f.name))
        if allowed is not None and value not in allowed:
            choices = ", ".join(sorted(str(a) for a in allowed))
            raise ConfigError(f"{where}.{f.name}: {value!r} is not one of {choices}")


def build_section(cls, values: Any, where: str):
    """The recipe section ``cls`` (a dataclass) from its mapping ``values``; unknown keys, values
    of the wrong type, names outside the recipe's choices and the section's own checks (a
    ValueError from ``__post_init__``) raise a ConfigError that names ``where``."""
    section = _build(cls, values, where)
    _check_types(section, where)
    return section


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str], where: str) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a raw recipe mapping."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{where}: override {item!r} is not key=value")
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: override {key!r}: {part!r} is not a section")
        node[leaf] = _parse_value(value)
    return raw


def recipe_from_dict(raw: dict[str, Any], where: str = "recipe") -> Recipe:
    """Validate a raw mapping into a Recipe."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a recipe must be a YAML mapping")
    known = {*_SECTIONS, "name", "stages", "paper", "notes"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {sorted(unknown)}; known: {sorted(known)}")
    parts: dict[str, Any] = {}
    for key, cls in _SECTIONS.items():
        if key == "augment" and raw.get(key, {}) is None:
            parts[key] = None
            continue
        parts[key] = build_section(cls, raw.get(key) or {}, f"{where}: {key}")
    if not parts["data"].source:
        raise ConfigError(f"{where}: data.source is required")
    stages = raw.get("stages") or []
    if not isinstance(stages, list):
        raise ConfigError(f"{where}: stages must be a list")
    return Recipe(
        name=str(raw.get("name") or Path(where).stem),
        stages=[_build(Stage, s, f"{where}: stages[{i}]") for i, s in enumerate(stages)],
        paper=raw.get("paper") or {},
        notes=str(raw.get("notes") or ""),
        path=where,
        **parts,
    )


def read_recipe_file(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """A recipe YAML file as a raw mapping, with ``key=value`` overrides applied."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read recipe ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return apply_overrides(raw or {}, overrides or [], str(path))


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a YAML recipe, apply overrides, validate. Relative data paths resolve from the cwd."""
    return recipe_from_dict(read_recipe_file(path, overrides), str(path))
