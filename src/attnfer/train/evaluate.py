"""Evaluation of a trained model on a data split, across data sets with label mapping."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..data.dataset import FaceDataset
from ..precision import autocast
from ..preprocess import Preprocess, tta_views
from ..pretrained import rebalance
from .metrics import calibration_summary, evaluation_report, report_markdown
from .plots import plot_confusion, plot_errors, plot_reliability


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module,
    preprocess: Preprocess,
    images: np.ndarray,
    tta: str = "none",
    batch_size: int = 256,
    bf16: bool = False,
) -> torch.Tensor:
    """Logits [views, N, K] (fp32) for uint8 faces, one slice per test-time view. The model
    runs channels-last (1.5x the crops/s of NCHW in fp32 on 2 AMD EPYC cores); ``bf16``: under
    bf16 autocast (about twice as fast again on a CPU with AVX512-BF16 or AMX)."""
    model.eval().to(memory_format=torch.channels_last)
    out = []
    for start in range(0, len(images), batch_size):
        x = preprocess(torch.from_numpy(images[start : start + batch_size]))
        x = x.contiguous(memory_format=torch.channels_last)
        views = []
        for view in tta_views(x, tta):
            with autocast(torch.device("cpu"), bf16):
                views.append(model(view).float())
        out.append(torch.stack(views))
    return torch.cat(out, dim=1) if out else torch.zeros((1, 0, 0))


def predict_proba(
    model: torch.nn.Module,
    preprocess: Preprocess,
    images: np.ndarray,
    tta: str = "none",
    batch_size: int = 256,
    temperature: float = 1.0,
    bf16: bool = False,
) -> np.ndarray:
    """Class probabilities [N, K] for uint8 faces, averaged over the test-time views; a
    ``temperature`` above 1 softens them (softmax of logits / temperature)."""
    logits = predict_logits(model, preprocess, images, tta, batch_size, bf16)
    return logits.div(temperature).softmax(-1).mean(0).numpy()


def evaluate_model(
    model: torch.nn.Module,
    preprocess: Preprocess,
    label_names: tuple[str, ...],
    data: FaceDataset,
    tta: str = "none",
    bf16: bool = False,
    prior: Sequence[float] | None = None,
    balance: float = 0.0,
) -> dict:
    """Accuracy, per-class P/R/F1, macro-F1 and confusion matrix of ``model`` on ``data``; with a
    ``prior`` and ``balance`` > 0, of its probabilities rebalanced as the Recognizer does
    (:func:`attnfer.pretrained.rebalance`).

    Labels are canonical indices on both sides. Samples whose label the model does not know
    (contempt for a seven-class model) are left out (see :func:`report_over_known_classes`).
    """
    known = np.flatnonzero(data.labels < len(label_names))
    probs = predict_proba(model, preprocess, data.images[known], tta, bf16=bf16)
    probs = rebalance(probs, prior, balance)
    report = report_over_known_classes(probs, data.labels[known], data.classes, label_names, known)
    report.update(
        data=data.name,
        tta=tta,
        precision="bf16" if bf16 else "fp32",
        samples=len(known),
        excluded_unknown_labels=len(data) - len(known),
    )
    return report


def report_over_known_classes(
    probs: np.ndarray,
    labels: np.ndarray,
    classes: tuple[int, ...],
    label_names: tuple[str, ...],
    rows: np.ndarray,
) -> dict:
    """The evaluation report of ``probs`` (over the model's ``label_names``) against ``labels``,
    predictions restricted to the data set's ``classes`` that the model knows: a FER2013 model
    on CK+48, which has no neutral, chooses among six. The data set's classes, not the split's:
    a CK+ fold whose test faces hold no contempt still lets the model answer contempt.

    ``errors`` lists the misclassified samples, most confident first, by their data set
    ``rows`` (the row of each line of ``probs``)."""
    present = np.array([c for c in classes if c < len(label_names)], dtype=np.int64)
    names = [label_names[i] for i in present]
    probs = probs[:, present]
    probs = probs / probs.sum(1, keepdims=True)
    y_true = np.searchsorted(present, labels)
    report = evaluation_report(y_true, probs, names)
    report["calibration"] = calibration_summary(y_true, probs)
    predicted = probs.argmax(1)
    confidence = probs.max(1)
    wrong = np.flatnonzero(predicted != y_true)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    report["errors"] = [
        {"row": int(rows[i]), "label": names[y_true[i]], "predicted": names[predicted[i]],
         "confidence": round(float(confidence[i]), 4)}
        for i in wrong
    ]  # fmt: skip
    return report


def report_stem(run_dir: Path, split: str, tta: str = "none") -> Path:
    """Where a run keeps its report on ``split``: ``eval_test``, or ``eval_test_flip`` with TTA."""
    return run_dir / (f"eval_{split}" if tta == "none" else f"eval_{split}_{tta}")


def write_report(report: dict, stem: str | Path, images: np.ndarray | None = None) -> list[Path]:
    """``stem``.json, .md and .png (row-normalised confusion matrix), ``stem``_reliability.png
    (the reliability diagram) where the report has a calibration summary, and given the evaluated
    ``images`` (indexed by the report's error rows), ``stem``_errors.png: the mistakes."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), stem.with_suffix(".png")]
    paths[0].write_text(json.dumps(report, indent=2))
    paths[1].write_text(report_markdown(report))
    plot_confusion(report, paths[2])
    if "calibration" in report:
        paths.append(plot_reliability(report, f"{stem}_reliability.png"))
    if images is not None and report.get("errors"):
        paths.append(plot_errors(images, report["errors"], f"{stem}_errors.png"))
    return paths
