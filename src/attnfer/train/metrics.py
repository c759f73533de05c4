"""Classification metrics in numpy: accuracy, per-class precision / recall / F1, confusion matrices,
and calibration (how far a model's confidence matches its accuracy).

Conventions: confusion matrix rows are true classes and columns predicted classes (as paper 002's
tables). A ratio with a zero denominator is 0. Macro-F1 and mean class accuracy average over the
classes that occur in ``y_true``, so a label absent from the evaluation data (e.g. contempt when a
CK+ model is tested on FER2013) does not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

CALIBRATION_BINS = 15  # the usual choice since Guo et al. (2017), "On Calibration of Modern NNs"


def as_predictions(y_pred_or_prob: ArrayLike) -> np.ndarray:
    """Predicted class indices [N] from indices [N] or class scores [N, K] (argmax)."""
    arr = np.asarray(y_pred_or_prob)
    if arr.ndim == 2:
        return arr.argmax(axis=1)
    if arr.ndim != 1:
        raise ValueError(f"expected labels [N] or scores [N, K], got shape {arr.shape}")
    return arr.astype(np.int64)


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """Counts [K, K], int64: entry (i, j) is the number of class-i samples predicted as j."""
    true = np.asarray(y_true, dtype=np.int64).ravel()
    pred = as_predictions(y_pred)
    if true.shape != pred.shape:
        raise ValueError(f"{true.size} true labels but {pred.size} predictions")
    for name, arr in (("true", true), ("predicted", pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} labels must lie in [0, {num_classes})")
    return np.bincount(true * num_classes + pred, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def normalize_rows(cm: np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix: each true class's predictions as fractions (rows sum to 1;
    a class without samples has a zero row)."""
    return _ratio(cm, cm.sum(axis=1, keepdims=True))


def per_class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 (float64) and support (int64) per class from a confusion matrix."""
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    precision = _ratio(tp, cm.sum(axis=0))
    recall = _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of predictions (indices or scores [N, K]) equal to the true labels."""
    true = np.asarray(y_true).ravel()
    pred = as_predictions(y_pred)
    if true.shape != pred.shape or true.size == 0:
        raise ValueError(f"need equal, non-zero numbers of labels: {true.size} vs {pred.size}")
    return float((true == pred).mean())


def macro_f1(cm: np.ndarray) -> float:
    """Mean F1 over the classes with at least one true sample."""
    scores = per_class_scores(cm)
    present = scores["support"] > 0
    return float(scores["f1"][present].mean()) if present.any() else 0.0


def evaluation_report(
    y_true: ArrayLike, y_prob: ArrayLike, label_names: Sequence[str]
) -> dict[str, Any]:
    """A JSON-serialisable report from true labels and predictions (indices or scores [N, K]).

    Keys: ``num_samples``, ``accuracy``, ``macro_f1``, ``mean_class_accuracy`` (mean recall over
    classes present), ``label_names``, ``per_class`` (name -> precision, recall, f1, support),
    ``confusion_matrix`` (counts) and ``confusion_matrix_normalized`` (rows sum to 1).
    """
    scores = np.asarray(y_prob)
    k = len(label_names)
    if scores.ndim == 2 and scores.shape[1] != k:
        raise ValueError(f"{scores.shape[1]} score columns but {k} label names")
    return report_from_confusion(confusion_matrix(y_true, scores, k), label_names)


def report_from_confusion(cm: np.ndarray, label_names: Sequence[str]) -> dict[str, Any]:
    """The ``evaluation_report`` of a confusion matrix of counts (rows true, columns predicted):
    the sum of several test sets' matrices gives their pooled report (k-fold CV)."""
    names = [str(n) for n in label_names]
    cm = np.asarray(cm, dtype=np.int64)
    if cm.sum() == 0:
        raise ValueError("evaluation_report needs at least one sample")
    per_class = per_class_scores(cm)
    present = per_class["support"] > 0
    return {
        "num_samples": int(cm.sum()),
        "accuracy": float(np.trace(cm) / cm.sum()),
        "macro_f1": macro_f1(cm),
        "mean_class_accuracy": float(per_class["recall"][present].mean()),
        "label_names": names,
        "per_class": {
            name: {
                "precision": float(per_class["precision"][i]),
                "recall": float(per_class["recall"][i]),
                "f1": float(per_class["f1"][i]),
                "support": int(per_class["support"][i]),
            }
            for i, name in enumerate(names)
        },
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_normalized": normalize_rows(cm).tolist(),
    }


def calibration_summary(
    y_true: ArrayLike, y_prob: ArrayLike, bins: int = CALIBRATION_BINS
) -> dict[str, Any]:
    """How well the top probability of ``y_prob`` [N, K] predicts being right.

    Keys: ``ece`` (expected calibration error: over ``bins`` equal-width bins of confidence,
    the sample-weighted mean gap between accuracy and mean confidence; Guo et al., 2017),
    ``nll`` (mean negative log-likelihood of the true class), ``mean_confidence``, and ``bins``:
    per bin its ``lower`` edge, ``count``, ``accuracy`` and ``confidence`` (0 when empty), the
    points of a reliability diagram.
    """
    prob = np.asarray(y_prob, dtype=np.float64)
    true = np.asarray(y_true, dtype=np.int64).ravel()
    if prob.ndim != 2 or len(prob) != len(true) or len(true) == 0:
        raise ValueError(f"need scores [N, K] for N > 0 labels: {prob.shape} vs {true.size}")
    confidence = prob.max(axis=1)
    correct = prob.argmax(axis=1) == true
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    accuracy_per_bin = _ratio(np.bincount(which, weights=correct, minlength=bins), count)
    confidence_per_bin = _ratio(np.bincount(which, weights=confidence, minlength=bins), count)
    gap = np.abs(accuracy_per_bin - confidence_per_bin)
    return {
        "ece": float((count * gap).sum() / len(true)),
        "nll": float(-np.log(np.clip(prob[np.arange(len(true)), true], 1e-12, None)).mean()),
        "mean_confidence": float(confidence.mean()),
        "bins": [
            {
                "lower": i / bins,
                "count": int(count[i]),
                "accuracy": float(accuracy_per_bin[i]),
                "confidence": float(confidence_per_bin[i]),
            }
            for i in range(bins)
        ],
    }


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def report_markdown(report: dict[str, Any]) -> str:
    """Markdown summary of ``evaluation_report``: accuracy and macro-F1 lines, the row-normalised
    confusion matrix in % (rows true, columns predicted, diagonal in bold, as paper 002's tables)
    and a per-class precision / recall / F1 / support table."""
    names = report["label_names"]
    lines = [
        f"- Accuracy: {100 * report['accuracy']:.2f} % ({report['num_samples']} samples)",
        f"- Macro-F1: {100 * report['macro_f1']:.2f} %",
        f"- Mean class accuracy: {100 * report['mean_class_accuracy']:.2f} %",
    ]
    if "calibration" in report:
        cal = report["calibration"]
        lines.append(
            f"- Calibration: expected calibration error {100 * cal['ece']:.2f} % over "
            f"{len(cal['bins'])} bins, mean confidence {100 * cal['mean_confidence']:.2f} %, "
            f"NLL {cal['nll']:.4f}"
        )
    lines += [
        "",
        "Row-normalised confusion matrix (%; rows: true class, columns: predicted class)",
        "",
    ]
    cm_rows = []
    for i, (name, row) in enumerate(zip(names, report["confusion_matrix_normalized"], strict=True)):
        cells = [f"{100 * v:.2f}" for v in row]
        cells[i] = f"**{cells[i]}**"
        cm_rows.append([name, *cells])
    lines += _table(["true \\ predicted", *names], cm_rows)
    lines += ["", "Per-class scores (%)", ""]
    pc = report["per_class"]
    score_rows = [
        [
            n,
            *(f"{100 * pc[n][k]:.2f}" for k in ("precision", "recall", "f1")),
            str(pc[n]["support"]),
        ]
        for n in names
    ]
    lines += _table(["class", "precision", "recall", "F1", "support"], score_rows)
    return "\n".join(lines) + "\n"
