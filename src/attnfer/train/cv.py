"""Subject-independent k-fold cross-validation of a recipe (CK+, JAFFE), and finished runs of a
recipe reused instead of trained again."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.dataset import FaceDataset
from ..errors import ConfigError
from ..pretrained import load_pretrained
from .config import DataConfig, ModelConfig, Recipe
from .evaluate import evaluate_model, report_stem, write_report
from .metrics import report_from_confusion
from .plots import plot_folds
from .run import fit, prepare_cv_folds


@dataclass(frozen=True)
class CrossValidation:
    """What :func:`cross_validate` measured and wrote.

    ``summary`` is cv.json: ``folds``, ``inner_val``, the test ``accuracies`` of the folds with
    their ``mean`` and ``std``, and with TTA ``tta``, ``tta_accuracies``, ``tta_mean`` and
    ``tta_std``. ``pooled`` is the report over every fold's test faces (cv_test.json), its
    ``errors`` with their ``fold`` (from 1), ``subject`` and ``row`` among those faces, most
    confident first. ``written``: the files of the pooled report.
    """

    summary: dict
    pooled: dict
    written: list[Path]


def _recipe_differences(saved: dict, current: dict, defaults: dict, prefix: str = "") -> list[str]:
    """``key: saved -> current`` for every setting that differs. A key the saved recipe lacks
    (added to the format since that run) counts with its default, which the run had."""
    diffs = []
    for key, new in current.items():
        default = defaults.get(key) if isinstance(defaults, dict) else None
        if key not in saved:
            if new != default:
                diffs.append(f"{prefix}{key}: {default!r} (before the key existed) -> {new!r}")
            continue
        old = saved[key]
        if isinstance(old, dict) and isinstance(new, dict):
            diffs += _recipe_differences(old, new, default or {}, f"{prefix}{key}.")
        elif old != new:
            diffs.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return sorted(diffs)


def check_same_recipe(recipe: Recipe, run_dir: Path) -> None:
    """Raise ConfigError, naming the settings that differ, when ``run_dir`` holds a run
    (``recipe.json``) of another recipe than ``recipe``."""
    saved_file = run_dir / "recipe.json"
    if not saved_file.exists():
        return
    saved = json.loads(saved_file.read_text())
    current = json.loads(recipe.to_json())
    defaults = json.loads(Recipe(recipe.name, DataConfig(), ModelConfig()).to_json())
    diffs = _recipe_differences(saved, current, defaults)
    if diffs:
        raise ConfigError(
            f"{run_dir} holds a run of a different recipe ({'; '.join(diffs)}): "
            "move it aside or delete it first"
        )


def finished_or_fit(recipe: Recipe, run_dir: Path, data: FaceDataset | None = None) -> dict | None:
    """The test report of the finished run of ``recipe`` in ``run_dir``; where there is none,
    ``recipe`` is trained there (resuming a run that was stopped; on ``data`` when given) and its
    test report returned (None without a test split). A run of another recipe there is refused
    (:func:`check_same_recipe`)."""
    check_same_recipe(recipe, run_dir)
    done = run_dir / f"eval_{recipe.data.test_split}.json"
    if done.exists():
        return json.loads(done.read_text())
    return fit(recipe, run_dir, resume=True, data=data).test_report


def cross_validate(
    recipe: Recipe,
    folds: int,
    run_dir: Path,
    inner_val: bool = False,
    keep_checkpoints: bool = False,
    on_fold: Callable[[int, float, float | None], None] | None = None,
) -> CrossValidation:
    """Subject-independent ``folds``-fold cross-validation of ``recipe`` in ``run_dir``.

    Each fold is the test set once and trains in ``run_dir/fold_<k>`` (k from 00), or is reused
    there when finished (:func:`finished_or_fit`); the model is the last epoch's, or with
    ``inner_val`` the epoch best on the following fold, which then does not train. Each fold is
    scored without TTA and, when the recipe's ``trainer.tta`` is not none, with it;
    ``on_fold(k, accuracy, tta_accuracy)`` (k from 1; tta_accuracy None without TTA) is called as
    each fold is done. A finished fold keeps its model.safetensors and reports; its training
    checkpoints (only needed to resume it) are deleted unless ``keep_checkpoints``.

    Writes cv.json (:attr:`CrossValidation.summary`), cv.png (the accuracy per fold) and
    cv_test.json/.md/.png with cv_test_errors.png (the pooled report over every fold's test
    faces, and its most confident mistakes).
    """
    recipe = dataclasses.replace(
        recipe,
        data=dataclasses.replace(
            recipe.data, val_split="val" if inner_val else None, test_split="test"
        ),
    )
    tta = recipe.trainer.tta
    reports, tests, plain, with_tta = [], [], [], []
    for k, fold_data in enumerate(prepare_cv_folds(recipe, folds, inner_val)):
        fold_dir = run_dir / f"fold_{k:02d}"
        finished_or_fit(recipe, fold_dir, fold_data)
        test = fold_data.split("test")
        tests.append(test)
        reports.append(_fold_report(fold_dir, test, "none"))
        plain.append(reports[-1]["accuracy"])
        if tta != "none":
            with_tta.append(_fold_report(fold_dir, test, tta)["accuracy"])
        if on_fold is not None:
            on_fold(k + 1, plain[-1], with_tta[-1] if with_tta else None)
        if not keep_checkpoints:
            for ckpt in fold_dir.glob("*.ckpt"):
                ckpt.unlink()
    summary = {"folds": folds, "inner_val": inner_val, "accuracies": plain,
               "mean": float(np.mean(plain)), "std": float(np.std(plain))}  # fmt: skip
    if with_tta:
        summary.update(tta=tta, tta_accuracies=with_tta, tta_mean=float(np.mean(with_tta)),
                       tta_std=float(np.std(with_tta)))  # fmt: skip
    (run_dir / "cv.json").write_text(json.dumps(summary, indent=2))
    plot_folds(plain, run_dir / "cv.png", with_tta, tta)
    pooled = report_from_confusion(
        sum(np.asarray(r["confusion_matrix"]) for r in reports), reports[0]["label_names"]
    )
    pooled["errors"] = sorted(
        (_pooled_error(e, k, tests) for k, r in enumerate(reports) for e in r["errors"]),
        key=lambda e: -e["confidence"],
    )
    written = write_report(pooled, run_dir / "cv_test", np.concatenate([t.images for t in tests]))
    return CrossValidation(summary, pooled, written)


def _pooled_error(error: dict, fold: int, tests: list[FaceDataset]) -> dict:
    """A fold's error with its fold (from 1), subject and row among all folds' test faces."""
    row = sum(len(t) for t in tests[:fold]) + error["row"]
    subject = str(tests[fold].subjects[error["row"]])
    return {**error, "row": row, "fold": fold + 1, "subject": subject}


def _fold_report(fold_dir: Path, test: FaceDataset, tta: str) -> dict:
    """A finished fold's test report with ``tta`` ("none" for the plain one): the one in
    ``fold_dir``, or, where there is none, or one scored over other classes than ``test`` has,
    or one that lists no errors, one evaluated from its model.safetensors and written there."""
    stem = report_stem(fold_dir, "test", tta)
    path = stem.with_suffix(".json")
    names = [test.label_names[c] for c in test.classes]
    if path.exists():
        report = json.loads(path.read_text())
        if report["label_names"] == names and "errors" in report:
            return report
    pre = load_pretrained(fold_dir / "model.safetensors")
    report = evaluate_model(pre.model, pre.preprocess, pre.label_names, test, tta)
    write_report(report, stem, test.images)
    return report
