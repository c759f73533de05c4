"""Metrics on a hand-made example, the Markdown report and the PNG plots."""

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from attnfer.train.evaluate import report_over_known_classes
from attnfer.train.metrics import (
    accuracy,
    as_predictions,
    calibration_summary,
    confusion_matrix,
    evaluation_report,
    macro_f1,
    normalize_rows,
    per_class_scores,
    report_from_confusion,
    report_markdown,
)
from attnfer.train.plots import (
    plot_confusion,
    plot_curves,
    plot_cv_runs,
    plot_errors,
    plot_folds,
    plot_reliability,
)

NAMES = ["angry", "happy", "sad"]
# Confusion matrix (rows true, columns predicted):
#   angry [3, 1, 0]   support 4
#   happy [0, 2, 0]   support 2
#   sad   [1, 1, 2]   support 4
CM = np.array([[3, 1, 0], [0, 2, 0], [1, 1, 2]])
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
Y_PRED = np.array([0, 0, 0, 1, 1, 1, 0, 1, 2, 2])
# precision = tp / column sum: 3/4, 2/4, 2/2; recall = tp / row sum: 3/4, 2/2, 2/4
# F1 = 2PR / (P + R): 3/4, 2/3, 2/3; macro-F1 = (3/4 + 4/3) / 3 = 25/36; accuracy = 7/10.
PRECISION = [0.75, 0.5, 1.0]
RECALL = [0.75, 1.0, 0.5]
F1 = [0.75, 2 / 3, 2 / 3]


def _probs(pred, k=3):
    probs = np.full((len(pred), k), 0.1)
    probs[np.arange(len(pred)), pred] = 0.8
    return probs


def test_confusion_and_scores_by_hand():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.tolist() == CM.tolist()
    assert np.array_equal(confusion_matrix(Y_TRUE, _probs(Y_PRED), 3), CM)
    scores = per_class_scores(cm)
    assert np.allclose(scores["precision"], PRECISION)
    assert np.allclose(scores["recall"], RECALL)
    assert np.allclose(scores["f1"], F1)
    assert scores["support"].tolist() == [4, 2, 4]
    assert macro_f1(cm) == pytest.approx(25 / 36)
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(0.7)
    assert np.allclose(normalize_rows(cm), [[0.75, 0.25, 0], [0, 1, 0], [0.25, 0.25, 0.5]])


def test_zero_denominators_and_absent_class():
    # Class 3 never occurs and is never predicted: zero row, zero scores, left out of macro-F1.
    cm = confusion_matrix(Y_TRUE, Y_PRED, 4)
    assert cm[3].sum() == 0 and cm[:, 3].sum() == 0
    assert normalize_rows(cm)[3].tolist() == [0, 0, 0, 0]
    scores = per_class_scores(cm)
    assert scores["precision"][3] == 0 and scores["recall"][3] == 0 and scores["f1"][3] == 0
    assert macro_f1(cm) == pytest.approx(25 / 36)


def test_bad_inputs():
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError):
        confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError):
        as_predictions(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        evaluation_report(Y_TRUE, _probs(Y_PRED, 4), NAMES)


def test_evaluation_report_and_markdown():
    report = evaluation_report(Y_TRUE, _probs(Y_PRED), NAMES)
    assert json.loads(json.dumps(report)) == report
    assert report["num_samples"] == 10
    assert report["accuracy"] == pytest.approx(0.7)
    assert report["macro_f1"] == pytest.approx(25 / 36)
    assert report["mean_class_accuracy"] == pytest.approx((0.75 + 1.0 + 0.5) / 3)
    assert report["per_class"]["happy"] == {
        "precision": 0.5,
        "recall": 1.0,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert report["confusion_matrix"] == CM.tolist()
    assert report["confusion_matrix_normalized"][2] == [0.25, 0.25, 0.5]

    md = report_markdown(report)
    assert "- Accuracy: 70.00 % (10 samples)" in md
    assert "- Macro-F1: 69.44 %" in md
    assert "| true \\ predicted | angry | happy | sad |" in md
    assert "| angry | **75.00** | 25.00 | 0.00 |" in md
    assert "| sad | 25.00 | 25.00 | **50.00** |" in md
    assert "| happy | 50.00 | 100.00 | 66.67 | 2 |" in md


def test_summed_confusion_matrices_give_the_pooled_report():
    halves = [confusion_matrix(Y_TRUE[i::2], Y_PRED[i::2], 3) for i in (0, 1)]
    pooled = report_from_confusion(halves[0] + halves[1], NAMES)
    assert pooled == evaluation_report(Y_TRUE, Y_PRED, NAMES)


def test_a_split_without_a_class_is_scored_over_its_data_sets_classes():
    """CK+ (no neutral, index 2 here) in a fold whose test faces hold no contempt (index 3)."""
    names = ("angry", "happy", "neutral", "contempt")
    probs = np.array([[0.5, 0.1, 0.9, 0.4], [0.1, 0.2, 0.0, 0.7], [0.1, 0.8, 0.0, 0.1]])
    labels = np.array([0, 1, 1])
    report = report_over_known_classes(probs, labels, (0, 1, 3), names, np.arange(3))
    assert report["label_names"] == ["angry", "happy", "contempt"]  # neutral left out
    assert report["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]  # contempt chosen
    assert report["accuracy"] == pytest.approx(2 / 3)
    only_present = report_over_known_classes(probs, labels, (0, 1), names, np.arange(3))
    assert only_present["accuracy"] == 1.0  # what choosing among the split's classes gave


def test_errors_name_the_misclassified_rows_most_confident_first():
    names = ("angry", "disgust", "fear")
    probs = np.array([[0.6, 0.4, 0.0], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.9, 0.05, 0.05]])
    labels = np.array([1, 1, 0, 2])
    rows = np.array([10, 11, 14, 20])  # the data set rows these four faces come from
    report = report_over_known_classes(probs, labels, (0, 1, 2), names, rows)
    assert report["errors"] == [
        {"row": 20, "label": "fear", "predicted": "angry", "confidence": 0.9},
        {"row": 14, "label": "angry", "predicted": "fear", "confidence": 0.8},
        {"row": 10, "label": "disgust", "predicted": "angry", "confidence": 0.6},
    ]
    assert len(report["errors"]) == report["num_samples"] - np.trace(report["confusion_matrix"])


def test_plot_errors_png(tmp_path):
    faces = np.random.default_rng(0).integers(0, 256, (30, 48, 48), dtype=np.uint8)
    errors = [{"row": r, "label": "sad", "predicted": "fear", "confidence": 0.5} for r in range(30)]
    path = plot_errors(faces, errors, tmp_path / "errors.png", limit=12)
    _assert_png(path, min_size=(1000, 300))  # 8 columns, 2 rows
    _assert_png(plot_errors(faces[:1], errors[:1], tmp_path / "one.png"), min_size=(100, 100))


def _assert_png(path, min_size=(200, 200)):
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width >= min_size[0] and image.height >= min_size[1]
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 0  # something was drawn
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_plot_confusion_png(tmp_path):
    report = evaluation_report(Y_TRUE, Y_PRED, NAMES)
    path = plot_confusion(report, tmp_path / "out" / "cm.png")
    assert path == tmp_path / "out" / "cm.png"
    _assert_png(path)


def test_plot_reliability_png_honours_the_umask(tmp_path):
    probs = np.eye(len(NAMES))[Y_PRED] * 0.5 + 0.5 / len(NAMES)
    report = evaluation_report(Y_TRUE, probs, NAMES)
    report["calibration"] = calibration_summary(Y_TRUE, probs)
    previous = os.umask(0o027)
    try:
        path = plot_reliability(report, tmp_path / "reliability.png")
    finally:
        os.umask(previous)
    _assert_png(path)
    assert path.stat().st_mode & 0o777 == 0o640


def test_plot_folds_png(tmp_path):
    path = plot_folds([0.9, 0.8, 1.0], tmp_path / "cv.png", [0.92, 0.78, 1.0], "flip")
    _assert_png(path)
    _assert_png(plot_folds([0.9, 0.8], tmp_path / "plain.png"))


def test_plot_cv_runs_png(tmp_path):
    runs = {"runs/a": [0.9, 0.95, 1.0], "runs/b": [0.97, 0.99, 0.98], "runs/c": [0.5, 0.6]}
    path = plot_cv_runs(runs, tmp_path / "runs.png", target=0.974)
    _assert_png(path, min_size=(500, 300))
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.sum() > 100  # the target's dashed line
    _assert_png(plot_cv_runs({"runs/a": [0.9, 0.8]}, tmp_path / "one.png"))


def test_plot_curves_from_rows_and_lightning_csv(tmp_path):
    rows = [
        {"epoch": 0, "train_loss": 1.9, "val_loss": 1.7},
        {"epoch": 1, "train_loss": 1.5},  # val_loss missing this epoch
        {"epoch": 2, "train_loss": 1.2, "val_loss": 1.3},
    ]
    path = plot_curves(rows, tmp_path / "rows.png")
    _assert_png(path)
    # Lightning's CSVLogger: train and val of an epoch on separate rows, empty cells elsewhere.
    csv_path = tmp_path / "metrics.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["epoch", "step", "train_acc", "train_loss", "val_acc", "val_loss"])
        writer.writerows(
            [
                [0, 9, "", "", 0.40, 1.6],
                [0, 9, 0.35, 1.8, "", ""],
                [1, 19, "", "", 0.50, 1.3],
                [1, 19, 0.48, 1.4, "", ""],
            ]
        )
    wide = plot_curves(csv_path, tmp_path / "csv.png")
    _assert_png(wide)
    with Image.open(path) as one_panel, Image.open(wide) as two_panels:
        assert two_panels.width > one_panel.width  # loss and accuracy panels side by side
    with pytest.raises(ValueError):
        plot_curves([{"epoch": 0, "lr": 0.1}], tmp_path / "none.png")
