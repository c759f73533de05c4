"""Calibration: the summary's figures, temperature fitting, folding, `attnfer calibrate`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from attnfer.cli import app
from attnfer.data.readers import load_dataset
from attnfer.errors import ConfigError
from attnfer.models import create_model
from attnfer.pretrained import load_pretrained
from attnfer.train.calibrate import calibrate, fit_temperature, fold_temperature
from attnfer.train.evaluate import evaluate_model, predict_logits, write_report
from attnfer.train.metrics import calibration_summary, report_markdown

FER = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fer2013"
SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fer2013_sample.csv"


def test_calibration_summary_by_hand():
    # Two faces at 0.9 confidence, one right: gap 0.4; two at 0.6, both right: gap 0.4.
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    summary = calibration_summary(np.array([0, 1, 1, 1]), probs, bins=10)
    assert summary["ece"] == pytest.approx(0.4)
    assert summary["mean_confidence"] == pytest.approx(0.75)
    assert summary["nll"] == pytest.approx(-(np.log(0.9) + np.log(0.1) + 2 * np.log(0.6)) / 4)
    filled = {round(b["lower"], 6): b for b in summary["bins"] if b["count"]}
    assert filled.keys() == {0.6, 0.9}
    assert filled[0.9]["accuracy"] == 0.5 and filled[0.9]["confidence"] == pytest.approx(0.9)
    assert sum(b["count"] for b in summary["bins"]) == 4


def test_labels_drawn_from_the_probabilities_are_calibrated():
    rng = np.random.default_rng(0)
    probs = torch.randn(20_000, 7).mul(2).softmax(1).numpy()
    labels = np.array([rng.choice(7, p=p / p.sum()) for p in probs])
    assert calibration_summary(labels, probs)["ece"] < 0.02
    overconfident = torch.from_numpy(np.log(probs)).mul(3).softmax(1).numpy()
    assert calibration_summary(labels, overconfident)["ece"] > 0.1


@pytest.mark.parametrize("true_temperature", [0.5, 2.0])
def test_fit_temperature_recovers_the_one_that_made_the_labels(true_temperature):
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(20_000, 7, generator=generator) * 3
    labels = torch.multinomial((logits / true_temperature).softmax(1), 1, generator=generator)
    fitted = fit_temperature(logits, labels.squeeze(1))
    assert fitted == pytest.approx(true_temperature, rel=0.05)


def test_folding_divides_the_logits_and_keeps_every_prediction():
    model = create_model("resnet18_cbam", 7, width=8).eval()
    x = torch.randn(16, 1, 48, 48)
    with torch.no_grad():
        before = model(x)
        fold_temperature(model, 2.5)
        after = model(x)
    torch.testing.assert_close(after, before / 2.5, rtol=1e-5, atol=1e-5)
    assert torch.equal(after.argmax(1), before.argmax(1))


def test_a_model_without_a_linear_classifier_is_refused():
    with pytest.raises(Exception, match="no linear classifier"):
        fold_temperature(torch.nn.Sequential(torch.nn.Linear(4, 2)), 2.0)
    with pytest.raises(ConfigError, match="logits"):
        fit_temperature(torch.zeros(0, 7), torch.zeros(0, dtype=torch.long))


def test_calibrate_records_and_composes_the_temperature():
    pre = load_pretrained("fast")
    data = load_dataset(SAMPLE)
    first = calibrate(pre, data).temperature
    pre.model.classifier.weight.data.mul_(1.5)  # a model that needs a second fit
    logits = predict_logits(pre.model, pre.preprocess, data.images)[0]
    result = calibrate(pre, data)
    refitted = predict_logits(pre.model, pre.preprocess, data.images)[0]
    torch.testing.assert_close(refitted, logits / result.temperature, rtol=1e-4, atol=1e-4)
    record = pre.info["calibration"]
    assert record["temperature"] == pytest.approx(first * result.temperature, rel=1e-4)
    assert record["samples"] == len(data) and record["fitted_on"] == data.name
    assert record["nll_after"] <= record["nll_before"] + 1e-9


def test_reports_carry_calibration_and_its_diagram(tmp_path):
    pre = load_pretrained("fast")
    data = load_dataset(SAMPLE)
    report = evaluate_model(pre.model, pre.preprocess, pre.label_names, data)
    assert 0 <= report["calibration"]["ece"] <= 1
    assert "expected calibration error" in report_markdown(report)
    paths = write_report(report, tmp_path / "eval", data.images)
    diagram = tmp_path / "eval_reliability.png"
    assert diagram in paths and Image.open(diagram).size[0] > 300


@pytest.mark.slow
def test_calibrate_command_on_fer2013_val(tmp_path):
    """Calibrating the shipped fast on val: the written model's logits are the shipped one's
    divided by the fitted temperature, its negative log-likelihood on val (what the temperature
    is fitted to) falls with its calibration error kept low, and fitting the written model again
    finds nothing left to fix."""
    if not FER.is_dir():
        pytest.skip("../shared/datasets/fer2013 is absent")
    val_only = tmp_path / "fer2013"  # FER2013's val split alone: 3,589 faces load in a second
    val_only.mkdir()
    (val_only / "val").symlink_to(FER / "val")
    out = tmp_path / "fast_calibrated.safetensors"
    result = CliRunner().invoke(app, ["calibrate", "fast", "--data", val_only, "--out", out])
    assert result.exit_code == 0, result.output
    assert "fer2013/val: temperature" in result.output and "calibration error" in result.output
    calibrated, shipped = load_pretrained(out), load_pretrained("fast")
    record = calibrated.info["calibration"]
    assert record["nll_after"] < record["nll_before"] and record["ece_after"] < 0.04
    faces = load_dataset(SAMPLE).images
    new = predict_logits(calibrated.model, calibrated.preprocess, faces)[0]
    old = predict_logits(shipped.model, shipped.preprocess, faces)[0]
    torch.testing.assert_close(new, old / record["temperature"], rtol=1e-3, atol=1e-3)
    twice = tmp_path / "fast_twice.safetensors"
    result = CliRunner().invoke(app, ["calibrate", str(out), "--data", val_only, "--out", twice])
    assert result.exit_code == 0, result.output
    again = load_pretrained(twice).info["calibration"]["temperature"]
    assert again == pytest.approx(record["temperature"], rel=0.02)


def test_calibrate_command_refuses_the_test_split(tmp_path):
    result = CliRunner().invoke(
        app, ["calibrate", "fast", "--data", str(SAMPLE), "--split", "test", "--out", "x"]
    )
    assert result.exit_code != 0 and "not test" in str(result.exception)
