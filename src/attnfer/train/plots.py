"""PNG plots of evaluation reports and training histories (matplotlib Agg, written atomically)."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..files import write_atomic

DPI = 100
SPLITS = ("train", "val")
METRICS = (("loss", "loss"), ("acc", "accuracy"))


def _save_png(fig: Figure, path: str | os.PathLike) -> Path:
    """Render ``fig`` with Agg and write it atomically."""
    FigureCanvasAgg(fig)
    return write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=DPI))


def plot_confusion(report: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Row-normalised confusion matrix of an ``evaluation_report`` as an annotated heat map (%).

    Rows are true classes, columns predicted classes; the title gives the accuracy.
    """
    names = list(report["label_names"])
    cm = report["confusion_matrix_normalized"]
    k = len(names)
    side = max(4.0, 0.75 * k + 2.5)
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(cm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    for i in range(k):
        for j in range(k):
            value = cm[i][j]
            ax.text(
                j,
                i,
                f"{100 * value:.1f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if value > 0.5 else "black",
            )
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(
        f"Confusion matrix (%), accuracy {100 * report['accuracy']:.2f} % "
        f"(n = {report['num_samples']})"
    )
    return _save_png(fig, path)


def plot_reliability(report: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """The reliability diagram of a report's ``calibration``: per bin of confidence its accuracy
    (bars) and mean confidence (dots), with the share of samples per bin below. A bar below its
    dot means overconfidence there, above it underconfidence."""
    cal = report["calibration"]
    bins = cal["bins"]
    width = 1.0 / len(bins)
    lower = [b["lower"] for b in bins]
    filled = [b for b in bins if b["count"]]
    fig = Figure(figsize=(5.0, 5.6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.bar(
        lower,
        [b["accuracy"] for b in bins],
        width=width,
        align="edge",
        color="tab:blue",
        edgecolor="white",
        label="accuracy",
    )
    top.plot([0, 1], [0, 1], color="gray", linestyle="--", label="perfect calibration")
    top.plot(
        [b["lower"] + width / 2 for b in filled],
        [b["confidence"] for b in filled],
        "o",
        color="tab:orange",
        markersize=4,
        label="mean confidence of the bin",
    )
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize=8)
    top.set_title(
        f"Reliability: ECE {100 * cal['ece']:.2f} %, mean confidence "
        f"{100 * cal['mean_confidence']:.1f} %, accuracy {100 * report['accuracy']:.1f} %",
        fontsize=9,
    )
    total = sum(b["count"] for b in bins)
    bottom.bar(
        lower,
        [b["count"] / total for b in bins],
        width=width,
        align="edge",
        color="tab:gray",
        edgecolor="white",
    )
    bottom.set_xlabel("confidence (top probability)")
    bottom.set_ylabel("share")
    return _save_png(fig, path)


def plot_folds(
    accuracies: Sequence[float],
    path: str | os.PathLike,
    tta_accuracies: Sequence[float] = (),
    tta: str = "",
) -> Path:
    """Test accuracy per fold of a k-fold CV as bars (beside them, with ``tta``), the mean as a
    line: how much one fold moves the mean shows at a glance."""
    k = len(accuracies)
    fig = Figure(figsize=(max(5.0, 0.6 * k + 2.0), 3.5), layout="constrained")
    ax = fig.add_subplot()
    width = 0.4 if tta_accuracies else 0.8
    series = [("plain", accuracies, "tab:blue")]
    if tta_accuracies:
        series.append((f"{tta} TTA", tta_accuracies, "tab:orange"))
    for i, (label, values, color) in enumerate(series):
        offset = (i - (len(series) - 1) / 2) * width
        mean = 100 * sum(values) / len(values)
        xs = [x + offset for x in range(1, k + 1)]
        ax.bar(xs, [100 * v for v in values], width, color=color, label=f"{label}, mean {mean:.2f}")
        ax.axhline(mean, color=color, linestyle="--", linewidth=1)
    ax.set_xticks(range(1, k + 1))
    ax.set_xlabel("fold")
    ax.set_ylabel("test accuracy (%)")
    low = 100 * min(min(accuracies), min(tta_accuracies, default=1.0))
    ax.set_ylim(max(0.0, low - 10), 100)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{k}-fold cross-validation")
    return _save_png(fig, path)


def plot_cv_runs(
    runs: Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    target: float | None = None,
) -> Path:
    """Several k-fold runs side by side: each fold's test accuracy as a dot, the run's mean as a
    black line and, with ``target`` (a fraction), a paper's figure as a dashed line. Whether
    recipes differ or only their folds' noise does shows at a glance."""
    names = list(runs)
    fig = Figure(figsize=(max(5.0, 1.1 * len(names) + 2.0), 4.0), layout="constrained")
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)  # the same horizontal jitter of the dots every time
    for x, name in enumerate(names):
        values = 100 * np.asarray(runs[name], dtype=float)
        jitter = rng.uniform(-0.2, 0.2, len(values))
        ax.scatter(x + jitter, values, s=12, color="tab:blue", alpha=0.6)
        ax.hlines(values.mean(), x - 0.3, x + 0.3, color="black", linewidth=2)
        ax.text(x + 0.32, values.mean(), f"{values.mean():.2f}", va="center", fontsize=8)
    if target is not None:
        ax.axhline(100 * target, color="tab:red", linestyle="--", linewidth=1)
        ax.text(-0.45, 100 * target, f"target {100 * target:.2f}", color="tab:red",
                ha="left", va="bottom", fontsize=8)  # fmt: skip
    ax.set_xlim(-0.5, len(names) - 0.1)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy (%): folds, mean")
    low = 100 * min(min(values) for values in runs.values())
    ax.set_ylim(max(0.0, low - 3), 100.5)
    ax.set_title("cross-validation runs")
    return _save_png(fig, path)


def plot_errors(
    images: np.ndarray,
    errors: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    limit: int = 40,
) -> Path:
    """The first ``limit`` of an evaluation's ``errors`` (most confident first) as a grid of the
    faces (``images[row]``), each captioned true label -> predicted label and its probability:
    what a model gets wrong, and how sure it is, at a glance."""
    shown = list(errors)[:limit]
    columns = min(8, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    fig = Figure(figsize=(1.4 * columns, 1.6 * rows + 0.5), layout="constrained")
    for k, error in enumerate(shown):
        ax = fig.add_subplot(rows, columns, k + 1)
        ax.imshow(images[error["row"]], cmap="gray", vmin=0, vmax=255)
        ax.set_title(
            f"{error['label']}\n-> {error['predicted']} {error['confidence']:.2f}", fontsize=7
        )
        ax.axis("off")
    fig.suptitle(f"The {len(shown)} most confident of {len(errors)} mistakes (true -> predicted)")
    return _save_png(fig, path)


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _read_history(history: str | os.PathLike | Iterable[Mapping[str, Any]]) -> list[dict]:
    """Rows of a CSV file or list of dicts, merged per epoch (the last non-empty value wins, so
    Lightning's CSVLogger files, which log train and val of one epoch on separate rows, work)."""
    if isinstance(history, (str, os.PathLike)):
        with open(history, newline="") as fh:
            rows: Iterable[Mapping[str, Any]] = list(csv.DictReader(fh))
    else:
        rows = history
    merged: dict[float, dict] = {}
    for index, row in enumerate(rows):
        epoch = _to_float(row.get("epoch"))
        key = index + 1 if math.isnan(epoch) else epoch
        slot = merged.setdefault(key, {"epoch": key})
        for name, value in row.items():
            number = _to_float(value)
            if name != "epoch" and not math.isnan(number):
                slot[name] = number
    return [merged[key] for key in sorted(merged)]


def _column(split: str, metric: str, rows: list[dict]) -> str | None:
    """The first of ``{split}_{metric}`` and ``{split}_{metric}_epoch`` present in any row."""
    for name in (f"{split}_{metric}", f"{split}_{metric}_epoch"):
        if any(name in row for row in rows):
            return name
    return None


def plot_curves(
    history: str | os.PathLike | Iterable[Mapping[str, Any]], path: str | os.PathLike
) -> Path:
    """Loss and accuracy per epoch for train and val, from a CSV file or a list of dicts.

    Columns used: ``epoch`` (row number when missing), ``train_loss``, ``val_loss``, ``train_acc``,
    ``val_acc`` (or the same with an ``_epoch`` suffix); missing ones are skipped, and a panel with
    no column at all is left out. Raises ValueError when there is nothing to plot.
    """
    rows = _read_history(history)
    panels = []
    for metric, title in METRICS:
        series = {}
        for split in SPLITS:
            column = _column(split, metric, rows)
            if column is not None:
                points = [(row["epoch"], row[column]) for row in rows if column in row]
                series[split] = tuple(zip(*points, strict=True))
        if series:
            panels.append((title, series))
    if not panels:
        raise ValueError("training history has no train/val loss or accuracy columns")
    fig = Figure(figsize=(5.0 * len(panels), 4.0), layout="constrained")
    for index, (title, series) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), index)
        for split, (epochs, values) in series.items():
            ax.plot(epochs, values, marker="o", markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(title)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save_png(fig, path)
