"""Fit a recipe: data in memory, Lightning trainer, checkpoints, the exported model and reports."""

from __future__ import annotations

import csv
import logging
import shutil
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from ..data.dataset import FaceDataset
from ..data.readers import load_dataset
from ..data.splits import (
    subject_kfold_split,
)
from ..errors import ConfigError
from ..models import load_weights
from ..precision import bf16_is_fast
from ..pretrained import resolve, save_pretrained
from .callbacks import AtomicCheckpointIO, EpochRecord, EpochSummary, StagedUnfreeze
from .choices import SPLITS
from .config import Recipe
from .datamodule import FaceDataModule
from .distill import OnlineTeacher
from .evaluate import evaluate_model, report_stem, write_report
from .losses import class_weights
from .plots import plot_curves
from .task import FERTask

PROGRESS_LINE_SECONDS = 60.0  # where no progress bar shows: a line within the epoch this often
RUN_FILES = ("model.safetensors", "last.ckpt", "best.ckpt")  # a run folder holding any is taken
log = logging.getLogger("attnfer.train")


@dataclass
class RunResult:
    run_dir: Path
    model_path: Path
    best_val_acc: float | None
    test_report: dict | None
    seconds: float


def pick_precision(requested: str) -> str:
    """``auto``: bf16 autocast on a GPU or a CPU with bf16 instructions, else fp32."""
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "bf16-mixed" if bf16_is_fast(torch.device("cuda")) else "16-mixed"
    return "bf16-mixed" if bf16_is_fast(torch.device("cpu")) else "32-true"


def prepare_data(recipe: Recipe) -> FaceDataset:
    """Load the recipe's data and give it train/val/test splits by ``data.split``."""
    cfg, seed = recipe.data, recipe.trainer.seed
    data = load_dataset(cfg.source, format=cfg.format, max_bad_samples=cfg.max_bad_samples)
    data = SPLITS[cfg.split](data, cfg.fractions, seed)
    if cfg.train_split not in data.splits:
        raise ConfigError(
            f"{recipe.path}: data {cfg.source} has no split {cfg.train_split!r} "
            f"(splits: {', '.join(data.splits) or 'none'}); set data.split to make them"
        )
    return data


def prepare_cv_folds(recipe: Recipe, k: int, inner_val: bool = False):
    """The recipe's data once per subject-independent fold: fold ``i`` as ``test`` and, with
    ``inner_val``, fold ``i + 1`` as ``val`` (to choose the epoch), the rest as ``train``."""
    data = load_dataset(
        recipe.data.source, format=recipe.data.format, max_bad_samples=recipe.data.max_bad_samples
    )
    for i in range(k):
        val_fold = (i + 1) % k if inner_val else None
        yield subject_kfold_split(data, k, i, recipe.trainer.seed, val_fold)


def fit(
    recipe: Recipe,
    run_dir: str | Path,
    resume: bool = False,
    data: FaceDataset | None = None,
    progress: bool = True,
    force: bool = False,
) -> RunResult:
    """Train ``recipe`` into ``run_dir``; with ``resume`` continue the run there (see
    :func:`resume_point`). A folder that holds a run is refused (ConfigError) unless ``resume``,
    or ``force``, which trains a new run over it (see :func:`claim_run_dir`)."""
    start = time.time()
    run_dir = Path(run_dir)
    claim_run_dir(run_dir, resume, force)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "recipe.json").write_text(recipe.to_json())
    data = data if data is not None else prepare_data(recipe)
    cfg = recipe.data
    train = data.split(cfg.train_split)
    val = data.split(cfg.val_split) if cfg.val_split and cfg.val_split in data.splits else None
    L.seed_everything(recipe.trainer.seed, workers=True, verbose=False)

    soft = recipe.loss.soft_labels > 0 and not recipe.loss.teacher  # the data's soft labels
    if soft:
        _check_soft_labels(recipe, train, data.num_classes)
    teacher = None
    if recipe.loss.teacher:
        teacher = OnlineTeacher(
            recipe.loss.teacher, data.label_names, recipe.preprocess, cfg.source
        )
    weights = class_weights(train.labels, data.num_classes) if recipe.loss.class_weights else None
    task = make_task(recipe, data.label_names, weights, teacher)
    dm = FaceDataModule(
        train, val, recipe.preprocess, recipe.augment, recipe.trainer.batch_size,
        task.channels_last, recipe.trainer.seed, soft_labels=soft,
        start_size=recipe.trainer.start_size,
    )  # fmt: skip
    has_val = val is not None
    model, best_val, epochs = run_trainer(recipe, run_dir, task, dm, has_val, resume, progress)
    extra = {
        "precision": pick_precision(recipe.trainer.precision),
        "class_prior": training_prior(train.labels, data.num_classes),
    }
    model_path = save_run(recipe, run_dir, model, data.label_names, best_val, epochs, start, extra)
    report = None
    if cfg.test_split and cfg.test_split in data.splits:
        test = data.split(cfg.test_split)
        report = evaluate_model(model, recipe.preprocess, data.label_names, test)
        write_report(report, report_stem(run_dir, cfg.test_split), test.images)
        if (tta := recipe.trainer.tta) != "none":
            tta_report = evaluate_model(model, recipe.preprocess, data.label_names, test, tta)
            write_report(tta_report, report_stem(run_dir, cfg.test_split, tta), test.images)
    return RunResult(run_dir, model_path, best_val, report, time.time() - start)


def claim_run_dir(run_dir: Path, resume: bool, force: bool) -> None:
    """Refuse ``run_dir`` when it holds a run (any of :data:`RUN_FILES`), unless ``resume``;
    with ``force``, delete that run's checkpoints and logs so that a new one starts clean (its
    model and reports are overwritten when the new run ends)."""
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if resume or not found:
        return
    if not force:
        raise ConfigError(
            f"{run_dir} holds a run ({', '.join(found)}): --resume continues it, --force trains "
            "a new one over it, or choose another --out"
        )
    for name in ("last.ckpt", "best.ckpt"):
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "logs", ignore_errors=True)
    log.warning("%s: training a new run over the one there (--force)", run_dir)


def resume_point(run_dir: Path) -> Path | None:
    """The checkpoint a resumed run continues from, logged with its epoch: ``last.ckpt``, else
    ``best.ckpt`` (a run stopped while writing its first ``last.ckpt`` has the same epoch's
    full state there); None to start from scratch (a warning when a checkpoint was cut off). A
    checkpoint that does not load raises ModelError naming it."""
    for name in ("last.ckpt", "best.ckpt"):
        path = run_dir / name
        if path.is_file():
            state = AtomicCheckpointIO().load_checkpoint(path, map_location="cpu")
            log.info(
                "resuming from %s: epoch %d done, step %d",
                path, state.get("epoch", -1) + 1, state.get("global_step", 0),
            )  # fmt: skip
            return path
    cut = sorted(p.name for p in run_dir.glob("*.ckpt.tmp"))
    if cut:
        log.warning(
            "%s: nothing to resume (%s cut off mid-write); starting from scratch",
            run_dir, ", ".join(cut),
        )  # fmt: skip
    else:
        log.info("%s: no checkpoint yet; starting from scratch", run_dir)
    return None


def _check_soft_labels(recipe: Recipe, train: FaceDataset, num_classes: int) -> None:
    source = recipe.data.source
    if train.soft_labels is None:
        raise ConfigError(
            f"{recipe.path}: loss.soft_labels needs soft labels, and {source} has none "
            "(FER+ has its votes; `attnfer data distill` writes a teacher's)"
        )
    if train.soft_labels.shape[1] != num_classes:
        raise ConfigError(
            f"{recipe.path}: {source} has soft labels over {train.soft_labels.shape[1]} classes, "
            f"its labels {num_classes}"
        )


def training_prior(labels: np.ndarray, classes: int) -> list[float]:
    """How often each class occurs in ``labels``, add-one smoothed (no class at 0), to 6 places:
    what ``Recognizer(balance=...)`` divides out."""
    counts = np.bincount(labels, minlength=classes)[:classes] + 1
    return [round(float(c), 6) for c in counts / counts.sum()]


def save_run(
    recipe: Recipe,
    run_dir: Path,
    model: torch.nn.Module,
    label_names: tuple[str, ...],
    best_val: float | None,
    epochs: int,
    start: float,
    extra: dict,
) -> Path:
    """Write the run's model.safetensors (with its provenance and ``extra``) and curves.png."""
    info = {
        "recipe": recipe.name,
        "recipe_path": recipe.path,
        "data": recipe.data.source,
        "epochs": epochs,
        "best_val_acc": best_val,
        "train_seconds": round(time.time() - start, 1),
        **extra,
    }
    model_path = save_pretrained(
        run_dir / "model.safetensors", model, recipe.model.name, label_names,
        recipe.preprocess, recipe.model.kwargs, info,
    )  # fmt: skip
    rows = history(run_dir)
    if rows:
        plot_curves(rows, run_dir / "curves.png")
    return model_path


def run_trainer(
    recipe: Recipe,
    run_dir: Path,
    task: L.LightningModule,
    datamodule: L.LightningDataModule,
    has_val: bool,
    resume: bool,
    progress: bool,
) -> tuple[torch.nn.Module, float | None, int]:
    """Fit ``task`` with the recipe's trainer settings (checkpoints in ``run_dir``; ``resume``
    from its last.ckpt), then load the best epoch by validation accuracy (the last without
    validation). Returns the model in eval mode, the best val accuracy and the epochs run.
    Under DDP only the first process returns; the others exit once training is done."""
    checkpoint = ModelCheckpoint(
        dirpath=run_dir, filename="best", monitor="val_acc" if has_val else None, mode="max",
        every_n_epochs=1, enable_version_counter=False,
    )  # fmt: skip
    # Its own callback, after the best one (so it holds the updated best score): Lightning's
    # save_last writes last.ckpt only in epochs that improve the monitored value.
    last_checkpoint = ModelCheckpoint(
        dirpath=run_dir, filename="last", every_n_epochs=1, enable_version_counter=False
    )
    show_bar = progress and sys.stderr.isatty()
    summary = EpochSummary(every_seconds=None if show_bar else PROGRESS_LINE_SECONDS)
    callbacks: list[L.Callback] = [checkpoint, last_checkpoint, summary, EpochRecord()]
    if recipe.stages:
        callbacks.append(StagedUnfreeze(recipe.stages))
    if recipe.trainer.early_stopping_patience and has_val:
        callbacks.append(
            EarlyStopping("val_acc", mode="max", patience=recipe.trainer.early_stopping_patience)
        )
    minutes = recipe.trainer.max_minutes
    with quiet_lightning():
        trainer = L.Trainer(
            max_epochs=recipe.total_epochs,
            max_time=timedelta(minutes=minutes) if minutes else None,
            precision=pick_precision(recipe.trainer.precision),
            devices=recipe.trainer.devices,
            strategy=recipe.trainer.strategy,
            num_nodes=recipe.trainer.num_nodes,
            callbacks=callbacks,
            # Rows reach the disk as they are logged (by default every 100 steps), so that a
            # killed run's history holds all it logged (EpochRecord keeps the rest).
            logger=CSVLogger(
                run_dir / "logs",
                name="",
                version=f"attempt_{_attempt(run_dir)}",
                flush_logs_every_n_steps=1,
            ),
            plugins=[AtomicCheckpointIO()],
            check_val_every_n_epoch=recipe.trainer.val_every,
            limit_val_batches=None if has_val else 0,
            num_sanity_val_steps=0,
            enable_progress_bar=show_bar,
            enable_model_summary=False,
            default_root_dir=run_dir,
        )
        ckpt_path = resume_point(run_dir) if resume else None
        for cut_off in run_dir.glob("*.ckpt.tmp"):
            cut_off.unlink()
        trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path)
    if not trainer.is_global_zero:
        raise SystemExit(0)  # other DDP processes stop here: the first saves and evaluates
    best_path = checkpoint.best_model_path or str(run_dir / "last.ckpt")
    state = AtomicCheckpointIO().load_checkpoint(best_path, map_location="cpu")["state_dict"]
    task.load_state_dict(state)
    model = task.eval_model.float().eval().to(memory_format=torch.contiguous_format)
    best_val = float(checkpoint.best_model_score) if checkpoint.best_model_score else None
    return model, best_val, trainer.current_epoch


# Lightning warnings that do not apply to how runs drive it: the run folder holds recipe.json
# and logs before the first checkpoint, metrics are logged per epoch, and one deprecation is
# Lightning's own.
IGNORED_WARNINGS = (
    r"Checkpoint directory .* exists and is not empty",
    r"The number of training batches .* is smaller than the logging interval",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's start-up chatter (accelerators found, a logger advert, why fit stopped)
    and :data:`IGNORED_WARNINGS`; its real warnings and errors still show."""
    chatter = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = chatter.level
    chatter.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message in IGNORED_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        chatter.setLevel(level)


def _attempt(run_dir: Path) -> int:
    """Each start or resume logs to its own CSV (Lightning's logger clears an existing one)."""
    return len(list((run_dir / "logs").glob("attempt_*")))


def history(run_dir: Path) -> list[dict]:
    """Logged metrics of every attempt of a run, in order (a resumed epoch's last rows win)."""
    rows: list[dict] = []
    for path in sorted((run_dir / "logs").glob("attempt_*/metrics.csv"), key=_attempt_number):
        with path.open(newline="") as f:
            rows.extend(csv.DictReader(f))
    return rows


def _attempt_number(path: Path) -> int:
    return int(path.parent.name.removeprefix("attempt_"))


def make_task(
    recipe: Recipe,
    label_names: Sequence[str],
    weights: torch.Tensor | None,
    teacher: OnlineTeacher | None = None,
):
    task = FERTask(recipe, len(label_names), weights, teacher)
    if recipe.model.weights:
        path = resolve(recipe.model.weights)
        load_weights(task.model, path, recipe.model.weights_mode, class_names=label_names)
    if task.channels_last:  # the whole task, so a weight average is channels-last too
        task.to(memory_format=torch.channels_last)
    if recipe.trainer.compile:
        task.model.compile()  # in place: state_dict keys stay those of the plain model
    return task
