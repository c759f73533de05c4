"""The training engine end to end on real faces: fit, reports, staged unfreezing, resume."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import typer
from safetensors.torch import load_file
from typer.testing import CliRunner

from attnfer.cli.data import distill
from attnfer.cli.train import compare, cv
from attnfer.data.dataset import FaceDataset
from attnfer.data.labels import BASIC7, CANONICAL
from attnfer.data.readers import load_dataset
from attnfer.data.transforms import Augment
from attnfer.errors import ConfigError, ModelError
from attnfer.preprocess import Preprocess
from attnfer.pretrained import load_pretrained
from attnfer.train.callbacks import format_duration
from attnfer.train.choices import OPTIMIZERS, SCHEDULES, SPLITS
from attnfer.train.config import OptimizerConfig, ScheduleConfig, load_recipe
from attnfer.train.datamodule import FaceDataModule, progressive_size
from attnfer.train.distill import OnlineTeacher, distill_dataset
from attnfer.train.evaluate import evaluate_model, predict_proba
from attnfer.train.memory_format import unsafe_convs
from attnfer.train.run import fit, history, make_task, quiet_lightning

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FER = DATASETS / "fer2013"
CKPLUS = DATASETS / "ckplus48"
TOOLS = Path(__file__).resolve().parents[1] / "tools"


@pytest.fixture(scope="module")
def fer_subset(tmp_path_factory) -> Path:
    """A small FER2013 tree of real faces: 120 per class in train, 20 in val and test."""
    if not FER.is_dir():
        pytest.skip("../shared/datasets/fer2013 is absent")
    root = tmp_path_factory.mktemp("fer_subset")
    for split, count in (("train", 120), ("val", 20), ("test", 20)):
        for label_dir in sorted((FER / split).iterdir()):
            out = root / split / label_dir.name
            out.mkdir(parents=True)
            for src in sorted(label_dir.glob("*.jpg"))[:count]:
                shutil.copy(src, out / src.name)
    return root


def write_recipe(
    path: Path, source: Path, model: str = "deep_emotion", name: str = "t", **sections
) -> Path:
    """A small recipe file; ``sections`` are YAML snippets per section."""
    parts = {
        "data": f"{{source: '{source}'}}",
        "model": f"{{name: {model}}}",
        "optimizer": "{name: adam, lr: 0.002, weight_decay: 0.0}",
        "schedule": "{name: none}",
        "trainer": "{epochs: 2, batch_size: 64, precision: 32-true}",
    }
    parts.update(sections)
    path.write_text(f"name: {name}\n" + "".join(f"{k}: {v}\n" for k, v in parts.items()))
    return path


def train_command(recipe: Path, run_dir: Path) -> list[str]:
    """`attnfer train` in a child process, as a user runs it."""
    return [sys.executable, "-m", "attnfer", "train", "-c", str(recipe), "--out", str(run_dir)]


@pytest.mark.slow
def test_fit_writes_model_reports_and_lowers_the_loss(fer_subset, tmp_path, caplog, monkeypatch):
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", fer_subset), ["trainer.epochs=4"])
    monkeypatch.setattr("attnfer.train.run.PROGRESS_LINE_SECONDS", 0.0)  # a line after every batch
    with caplog.at_level(logging.INFO, logger="attnfer.train"):
        result = fit(recipe, tmp_path / "run", progress=False)
    lines = [r.message for r in caplog.records if r.message.startswith("epoch ")]
    epoch_lines = [line for line in lines if ", batch " not in line]
    assert len(epoch_lines) == 4 and epoch_lines[-1].endswith(", 0 s left")
    batch_lines = [line.split(":")[0] for line in lines if ", batch " in line]
    n = int(batch_lines[0].split("/")[-1])  # batches an epoch
    assert batch_lines == [
        f"epoch {e}/4, batch {b}/{n}" for e in range(1, 5) for b in range(1, n + 1)
    ]
    assert lines[-1].startswith("epoch 4/4  ")  # the epoch's line comes after its batches'
    for name in ("model.safetensors", "last.ckpt", "best.ckpt", "curves.png", "eval_test.json",
                 "eval_test.md", "eval_test.png"):  # fmt: skip
        assert (result.run_dir / name).is_file(), name
    rows = [r for r in history(result.run_dir) if r.get("train_loss")]
    losses = [float(r["train_loss"]) for r in rows]
    assert len(losses) == 4 and losses[-1] < losses[0]
    report = json.loads((result.run_dir / "eval_test.json").read_text())
    assert report["samples"] == 140 and 0 <= report["accuracy"] <= 1
    loaded = load_pretrained(result.model_path)
    flip = json.loads((result.run_dir / "eval_test_flip.json").read_text())  # trainer.tta: flip
    expected = evaluate_model(loaded.model, loaded.preprocess, loaded.label_names,
                              load_dataset(fer_subset).split("test"), tta="flip")  # fmt: skip
    assert flip["tta"] == "flip" and flip["accuracy"] == pytest.approx(expected["accuracy"])
    assert loaded.arch == "deep_emotion" and len(loaded.label_names) == 7
    assert loaded.info["best_val_acc"] == pytest.approx(result.best_val_acc)
    # The training split's class frequencies (add-one smoothed), which Recognizer(balance=) uses.
    train = load_dataset(fer_subset).split("train")
    counts = np.bincount(train.labels, minlength=7) + 1
    assert loaded.class_prior == pytest.approx(counts / counts.sum(), abs=1e-6)


@pytest.mark.slow
def test_max_minutes_stops_training_early_and_keeps_a_model(fer_subset, tmp_path):
    path = write_recipe(tmp_path / "r.yaml", fer_subset)
    recipe = load_recipe(path, ["trainer.epochs=50", "trainer.max_minutes=0.05"])  # 3 s
    result = fit(recipe, tmp_path / "run", progress=False)
    epochs = [r for r in history(result.run_dir) if r.get("train_loss")]
    assert 1 <= len(epochs) < 50
    assert load_pretrained(result.model_path).info["epochs"] < 50
    with pytest.raises(ConfigError, match="max_minutes"):
        load_recipe(path, ["trainer.max_minutes=0"])


@pytest.mark.slow
def test_island_loss_is_added_with_its_weight_and_logged(fer_subset, tmp_path):
    loss = "{feature_loss: island, feature_lambda: 0.01, island_lambda1: 10.0}"
    path = write_recipe(tmp_path / "r.yaml", fer_subset, "small_cnn", loss=loss)
    run = fit(load_recipe(path, ["trainer.epochs=3"]), tmp_path / "run", progress=False).run_dir
    rows = [r for r in history(run) if r.get("train_loss")]
    feature_losses = [float(r["train_feature_loss"]) for r in rows]
    assert len(feature_losses) == 3 and feature_losses[-1] < feature_losses[0]
    for row, feature_loss in zip(rows, feature_losses, strict=True):
        softmax_loss = float(row["train_loss"]) - 0.01 * feature_loss  # epoch means add up too
        assert 0 < softmax_loss < 2.5, "the total is the softmax loss + 0.01 x the island loss"


def test_mixup_blends_images_and_targets_alike(tmp_path):
    """Each mixed image is its two sources blended by the same shares as its target; the label
    kept for the accuracy is the larger share's."""
    path = write_recipe(tmp_path / "r.yaml", tmp_path, "small_cnn", loss="{mixup: 0.4}")
    task = make_task(load_recipe(path), BASIC7, None)
    labels = torch.arange(7)
    images = labels.float().view(7, 1, 1, 1).expand(7, 1, 4, 4)  # image k holds the value k
    for seed in range(5):
        torch.manual_seed(seed)
        mixed, target, kept = task._mix(images, labels, labels)
        assert torch.allclose(target.sum(1), torch.ones(7))
        assert ((target > 0).sum(1) <= 2).all()
        blended = (target * labels.float()).sum(1)  # the value a blend by the target's shares has
        assert torch.allclose(mixed[:, 0, 0, 0], blended, atol=1e-5)
        assert torch.equal(kept, target.argmax(1)) or (target.max(1).values == 0.5).any()


@pytest.mark.parametrize(
    ("seconds", "text"), [(42.4, "42 s"), (61, "1 min"), (1019, "17 min"), (7500, "2 h 05 min")]
)
def test_durations_read_as_a_person_says_them(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.slow
def test_seeded_runs_repeat(fer_subset, tmp_path):
    path = write_recipe(tmp_path / "r.yaml", fer_subset, trainer="{epochs: 1, precision: 32-true}")
    weights = []
    for run in ("a", "b"):
        fit(load_recipe(path), tmp_path / run, progress=False)
        weights.append(load_file(str(tmp_path / run / "model.safetensors")))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.slow
def test_staged_unfreezing_trains_only_the_unfrozen_convs(fer_subset, tmp_path, recwarn):
    stages = (
        "[{epochs: 1, trainable_convs: 0, lr: 0.001}, {epochs: 1, trainable_convs: 1, lr: 0.0001}]"
    )
    data = f"{{source: '{fer_subset}', val_split: null}}"  # no val: the model is the last epoch's
    path = write_recipe(tmp_path / "r.yaml", fer_subset, "small_cnn", stages=stages, data=data)
    recipe = load_recipe(path)
    torch.manual_seed(recipe.trainer.seed)
    initial = make_task(recipe, BASIC7, None).model.state_dict()
    fit(recipe, tmp_path / "run", progress=False)
    assert [str(w.message) for w in recwarn] == []  # no val: Lightning is not handed an empty one
    trained = load_file(str(tmp_path / "run" / "model.safetensors"))
    conv_keys = [k for k in initial if k.endswith("weight") and initial[k].ndim == 4]
    assert len(conv_keys) >= 2
    assert all(torch.equal(initial[k], trained[k]) for k in conv_keys[:-1])
    assert not torch.equal(initial[conv_keys[-1]], trained[conv_keys[-1]])


@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_and_finishes(fer_subset, tmp_path):
    recipe = write_recipe(
        tmp_path / "r.yaml", fer_subset, model="small_cnn",
        trainer="{epochs: 4, batch_size: 16, precision: 32-true}",
    )  # fmt: skip
    run_dir = tmp_path / "run"
    cmd = train_command(recipe, run_dir)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (run_dir / "last.ckpt").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # into the next epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (run_dir / "last.ckpt").exists(), "no checkpoint before the kill"
    assert not (run_dir / "model.safetensors").exists(), "the run finished before it was killed"
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert "training on cpu, precision 32-true, 52 batches an epoch" in output
    for chatter in ("GPU available", "litlogger", "Checkpoint directory", "LeafSpec"):
        assert chatter not in output, f"Lightning's {chatter!r} line is back"
    epochs = {int(float(r["epoch"])) for r in history(run_dir) if r.get("train_loss")}
    assert epochs == {0, 1, 2, 3}
    assert load_pretrained(run_dir).info["epochs"] == 4
    assert len(list((run_dir / "logs").glob("attempt_*"))) == 2


KILLED_AFTER_CHECKPOINT = """
import os, sys
from attnfer.cli import run
from attnfer.train.callbacks import AtomicCheckpointIO
save, saved = AtomicCheckpointIO.save_checkpoint, []
def save_then_die(self, checkpoint, path, storage_options=None):
    save(self, checkpoint, path, storage_options)
    saved.append(str(path))
    if sum(p.endswith("last.ckpt") for p in saved) == 2:
        os._exit(9)  # killed as epoch 1's checkpoint is written, before its metrics are logged
AtomicCheckpointIO.save_checkpoint = save_then_die
sys.argv = ["attnfer", *sys.argv[1:]]
run()
"""


@pytest.mark.slow
def test_run_killed_right_after_a_checkpoint_keeps_that_epochs_history(fer_subset, tmp_path):
    """Lightning writes an epoch's checkpoint before it logs the epoch's training metrics; a run
    killed in between resumes with them all the same (from the checkpoint)."""
    recipe = write_recipe(
        tmp_path / "r.yaml", fer_subset, model="small_cnn",
        trainer="{epochs: 3, batch_size: 16, precision: 32-true}",
    )  # fmt: skip
    run_dir = tmp_path / "run"
    args = ["train", "-c", str(recipe), "--out", str(run_dir)]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_CHECKPOINT, *args], capture_output=True, check=False
    )
    assert killed.returncode == 9 and (run_dir / "last.ckpt").exists()
    first = {int(float(r["epoch"])) for r in history(run_dir) if r.get("train_loss")}
    assert first == {0}  # epoch 1 ended and was saved, its training metrics not yet logged
    done = subprocess.run([*train_command(recipe, run_dir), "--resume"], capture_output=True)
    assert done.returncode == 0, done.stderr[-2000:]
    epochs = {int(float(r["epoch"])) for r in history(run_dir) if r.get("train_loss")}
    assert epochs == {0, 1, 2}


class NotTensors:
    """An object a checkpoint has no business holding."""


@pytest.mark.slow
def test_a_run_folder_is_not_trained_over_without_resume_or_force(fer_subset, tmp_path, caplog):
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", fer_subset), ["trainer.epochs=1"])
    run_dir = tmp_path / "run"
    (run_dir / "logs" / "attempt_0").mkdir(parents=True)
    (run_dir / "model.safetensors").write_bytes(b"a finished run")
    with pytest.raises(ConfigError, match=r"run holds a run \(model.safetensors\): --resume"):
        fit(recipe, run_dir)
    assert (run_dir / "model.safetensors").read_bytes() == b"a finished run"
    with caplog.at_level(logging.INFO, logger="attnfer"):
        fit(recipe, run_dir, force=True)
    assert "training a new run over the one there (--force)" in caplog.text
    assert load_pretrained(run_dir).info["epochs"] == 1
    assert [p.name for p in (run_dir / "logs").iterdir()] == ["attempt_0"]
    assert {int(float(r["epoch"])) for r in history(run_dir) if r.get("train_loss")} == {0}


@pytest.mark.slow
def test_resume_names_its_checkpoint_and_survives_a_cut_first_write(fer_subset, tmp_path, caplog):
    recipe = write_recipe(tmp_path / "r.yaml", fer_subset)
    run_dir = tmp_path / "run"
    fit(load_recipe(recipe, ["trainer.epochs=1"]), run_dir)
    # killed while writing its first last.ckpt: best.ckpt of the same epoch is whole
    (run_dir / "last.ckpt").rename(run_dir / "last.ckpt.tmp")
    (run_dir / "model.safetensors").unlink()
    with caplog.at_level(logging.INFO, logger="attnfer"):
        fit(load_recipe(recipe), run_dir, resume=True)
    assert f"resuming from {run_dir / 'best.ckpt'}: epoch 1 done" in caplog.text
    assert {int(float(r["epoch"])) for r in history(run_dir) if r.get("train_loss")} == {0, 1}
    assert not list(run_dir.glob("*.tmp"))

    empty = tmp_path / "cut"
    empty.mkdir()
    (empty / "best.ckpt.tmp").write_bytes(b"PK\x03\x04 cut")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="attnfer"):
        fit(load_recipe(recipe, ["trainer.epochs=1"]), empty, resume=True)
    assert "nothing to resume (best.ckpt.tmp cut off mid-write); starting from scratch" in (
        caplog.text
    )


def test_a_truncated_or_pickled_checkpoint_is_a_one_line_error(fer_subset, tmp_path):
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", fer_subset), ["trainer.epochs=1"])
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"epoch": 0, "state_dict": {"w": torch.zeros(64)}}, run_dir / "last.ckpt")
    data = (run_dir / "last.ckpt").read_bytes()
    (run_dir / "last.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError) as truncated:
        fit(recipe, run_dir, resume=True)
    assert str(truncated.value).startswith(f"{run_dir / 'last.ckpt'}: not a readable checkpoint")
    torch.save({"epoch": 0, "callbacks": NotTensors()}, run_dir / "last.ckpt")
    with pytest.raises(ModelError) as pickled:
        fit(recipe, run_dir, resume=True)
    assert str(pickled.value).startswith(f"{run_dir / 'last.ckpt'}: holds Python objects")
    for error in (truncated.value, pickled.value):
        assert "\n" not in str(error) and "weights_only" not in str(error)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_shards_the_data_and_saves_once(fer_subset, tmp_path):
    """Lightning's DDP (gloo) with two CPU processes: the same path as several GPUs or nodes."""
    recipe = write_recipe(
        tmp_path / "r.yaml", fer_subset, model="small_cnn",
        trainer="{epochs: 2, batch_size: 30, precision: 32-true, devices: 2, strategy: ddp}",
    )  # fmt: skip
    run = tmp_path / "run"
    done = subprocess.run(train_command(recipe, run), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("test accuracy") == 1, "only the first process evaluates"
    steps = [int(r["step"]) for r in history(run) if r.get("train_loss")]
    assert steps == [13, 27], "each process takes half of the 840 faces: 14 batches of 30 an epoch"
    assert load_pretrained(run).info["epochs"] == 2
    assert json.loads((run / "eval_test.json").read_text())["samples"] == 140


@pytest.mark.slow
def test_compare_trains_each_recipe_once_and_tabulates_it_beside_the_paper(
    fer_subset, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    configs = [
        write_recipe(
            tmp_path / f"{name}.yaml", fer_subset, model=model, name=name,
            trainer="{epochs: 1, batch_size: 64, precision: 32-true}",
            paper=f"{{id: '00{k}', result: {figure}}}",
        )
        for k, (name, model, figure) in enumerate(
            [("row_a", "deep_emotion", 70.02), ("row_b", "small_cnn", 65.2)]
        )
    ]  # fmt: skip
    app = typer.Typer()
    app.command()(compare)
    args = [str(c) for c in configs]
    first = CliRunner().invoke(app, args, terminal_width=200)
    assert first.exit_code == 0, first.output
    reports = [tmp_path / "runs" / name / "eval_test.json" for name in ("row_a", "row_b")]
    stamps = [r.stat().st_mtime_ns for r in reports]
    for name, figure, report in zip(("row_a", "row_b"), ("70.02", "65.20"), reports, strict=True):
        ours = 100 * json.loads(report.read_text())["accuracy"]
        rows = [line for line in first.output.splitlines() if name in line and figure in line]
        assert len(rows) == 1, first.output  # the table's row (log lines name the run too)
        assert f"{ours:.2f}" in rows[0] and f"{ours - float(figure):+.2f}" in rows[0]
    again = CliRunner().invoke(app, args, terminal_width=200)
    assert again.exit_code == 0, again.output
    assert [r.stat().st_mtime_ns for r in reports] == stamps  # finished runs are reused
    longer = CliRunner().invoke(app, [*args, "--set", "trainer.epochs=3"], terminal_width=200)
    assert isinstance(longer.exception, ConfigError)  # not the 1-epoch runs passed off as 3
    assert "runs/row_a holds a run of a different recipe" in str(longer.exception)
    assert "trainer.epochs: 1 -> 3" in str(longer.exception)


@pytest.fixture(scope="module")
def ck_subset(tmp_path_factory) -> Path:
    """Real CK+ faces, the first 24 of each class."""
    if not CKPLUS.is_dir():
        pytest.skip("../shared/datasets/ckplus48 is absent")
    subset = tmp_path_factory.mktemp("ck")
    for label_dir in sorted(CKPLUS.iterdir()):
        (subset / label_dir.name).mkdir(parents=True)
        for src in sorted(label_dir.glob("*.png"))[:24]:
            shutil.copy(src, subset / label_dir.name / src.name)
    return subset


def cv_app_and_recipe(tmp_path: Path, subset: Path, epochs: int = 1) -> tuple[typer.Typer, Path]:
    config = write_recipe(
        tmp_path / "ck.yaml", subset, model="small_cnn", name="ck_cv",
        data=f"{{source: '{subset}', split: subject}}",
        trainer=f"{{epochs: {epochs}, batch_size: 32, precision: 32-true}}",
    )  # fmt: skip
    app = typer.Typer()
    app.command()(cv)
    return app, config


@pytest.mark.slow
def test_cv_trains_each_fold_once_and_refuses_another_recipes_folds(
    ck_subset, tmp_path, monkeypatch
):
    app, config = cv_app_and_recipe(tmp_path, ck_subset)
    monkeypatch.chdir(tmp_path)
    args = ["--config", str(config), "--folds", "2"]
    first = CliRunner().invoke(app, args, terminal_width=200)
    assert first.exit_code == 0, first.output
    summary = json.loads((tmp_path / "runs" / "ck_cv" / "cv.json").read_text())
    folds = [tmp_path / "runs" / "ck_cv" / f"fold_{k:02d}" for k in (0, 1)]
    reports = [fold / "eval_test.json" for fold in folds]
    assert summary["accuracies"] == [json.loads(r.read_text())["accuracy"] for r in reports]
    flips = [json.loads((fold / "eval_test_flip.json").read_text())["accuracy"] for fold in folds]
    assert summary["tta"] == "flip" and summary["tta_accuracies"] == flips
    pooled = json.loads((tmp_path / "runs" / "ck_cv" / "cv_test.json").read_text())
    fold_reports = [json.loads(r.read_text()) for r in reports]
    assert pooled["num_samples"] == sum(r["num_samples"] for r in fold_reports) == 7 * 24
    summed = np.add(*[np.asarray(r["confusion_matrix"]) for r in fold_reports])
    assert pooled["confusion_matrix"] == summed.tolist()
    mistakes = pooled["num_samples"] - np.trace(summed)
    assert len(pooled["errors"]) == sum(len(r["errors"]) for r in fold_reports) == mistakes
    folds_of = {}
    for error in pooled["errors"]:
        folds_of.setdefault(error["subject"], set()).add(error["fold"])
    assert folds_of and all(len(f) == 1 for f in folds_of.values())  # a subject in one fold
    tool = [sys.executable, str(TOOLS / "shared_mistakes.py"), "runs/ck_cv", "runs/ck_cv"]
    shared = subprocess.run(
        [*tool, "--plot", "runs/cv_runs.png", "--target", "97.4"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "wrote runs/cv_runs.png" in shared
    assert (tmp_path / "runs" / "cv_runs.png").stat().st_size > 1000
    missing = subprocess.run([*tool, "runs/none"], capture_output=True, text=True)
    assert missing.returncode == 1 and "runs/none/cv_test.json" in missing.stderr
    groups = {(e["subject"], e["label"]) for e in pooled["errors"]}
    assert f"runs/ck_cv: {mistakes} wrong faces in {len(groups)} groups" in shared
    assert f"wrong in every run: {len(groups)} groups" in shared  # a run shares all with itself
    assert (tmp_path / "runs" / "ck_cv" / "cv_test_errors.png").is_file()
    assert (tmp_path / "runs" / "ck_cv" / "cv.png").is_file()
    assert not [*folds[0].glob("*.ckpt"), *folds[1].glob("*.ckpt")]  # finished: dropped

    (folds[1] / "eval_test_flip.json").unlink()  # as a fold trained before runs wrote one
    stale = dict(fold_reports[0], label_names=fold_reports[0]["label_names"][:-1])
    reports[0].write_text(json.dumps(stale))  # as scored over its test faces' classes alone
    stamps = [r.stat().st_mtime_ns for r in reports]
    again = CliRunner().invoke(app, args, terminal_width=200)
    assert again.exit_code == 0, again.output
    assert reports[1].stat().st_mtime_ns == stamps[1]  # finished folds are reused
    assert json.loads(reports[0].read_text()) == fold_reports[0]  # the stale one scored again
    summary = json.loads((tmp_path / "runs" / "ck_cv" / "cv.json").read_text())
    assert summary["tta_accuracies"] == pytest.approx(flips)  # evaluated again from the model
    stamps = [r.stat().st_mtime_ns for r in reports]
    longer = CliRunner().invoke(app, [*args, "--set", "trainer.epochs=2"], terminal_width=200)
    assert isinstance(longer.exception, ConfigError)
    assert "trainer.epochs: 1 -> 2" in str(longer.exception)

    for fold in folds:  # as runs made before augment.final_scale existed
        saved = json.loads((fold / "recipe.json").read_text())
        del saved["augment"]["final_scale"]
        (fold / "recipe.json").write_text(json.dumps(saved))
    assert CliRunner().invoke(app, args).exit_code == 0  # they had its default: reused
    assert [r.stat().st_mtime_ns for r in reports] == stamps
    annealed = CliRunner().invoke(app, [*args, "--set", "augment.final_scale=0.5"])
    assert "augment.final_scale: 1.0 (before the key existed) -> 0.5" in str(annealed.exception)


@pytest.mark.slow
def test_cv_with_an_inner_validation_fold_keeps_the_best_epoch_on_it(
    ck_subset, tmp_path, monkeypatch
):
    app, config = cv_app_and_recipe(tmp_path, ck_subset, epochs=3)
    monkeypatch.chdir(tmp_path)
    args = ["--config", str(config), "--folds", "3", "--inner-val", "--keep-checkpoints"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "ck_cv"
    assert json.loads((run / "cv.json").read_text())["inner_val"] is True
    sizes = []
    for k in range(3):
        fold = run / f"fold_{k:02d}"
        assert json.loads((fold / "recipe.json").read_text())["data"]["val_split"] == "val"
        assert (fold / "last.ckpt").is_file()
        best = load_pretrained(fold / "model.safetensors").info["best_val_acc"]
        val_accs = [float(r["val_acc"]) for r in history(fold) if r.get("val_acc")]
        assert len(val_accs) == 3 and best == pytest.approx(max(val_accs))
        sizes.append(json.loads((fold / "eval_test.json").read_text())["samples"])
    assert sum(sizes) == len(load_dataset(ck_subset))  # every face tested once
    plain = CliRunner().invoke(app, ["--config", str(config), "--folds", "3"])
    assert "data.val_split: 'val' -> None" in str(plain.exception)  # not mixed with plain folds


def test_ema_averages_each_step_from_the_starting_weights(fer_subset, tmp_path):
    path = write_recipe(tmp_path / "r.yaml", fer_subset, "sepconv_se")
    task = make_task(load_recipe(path, ["trainer.ema_decay=0.75"]), BASIC7, None)
    task.on_fit_start()
    start = {k: v.clone() for k, v in task.model.state_dict().items()}
    with torch.no_grad():
        for p in task.model.parameters():
            p.add_(1.0)
    faces = load_dataset(fer_subset).split("train").images[:64]
    task.on_train_batch_end(None, (Preprocess()(torch.from_numpy(faces)),), 0)
    average = task.ema.state_dict()
    for key, value in task.model.named_parameters():
        torch.testing.assert_close(average[key], 0.75 * start[key] + 0.25 * value)
    buffers = [key for key, _ in task.model.named_buffers()]
    assert buffers and all(torch.equal(average[k], start[k]) for k in buffers)  # recomputed instead
    assert task.eval_model is task.ema


def test_channels_last_recipe_makes_the_weight_average_channels_last_too(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", tmp_path, "sepconv_se")
    recipe = load_recipe(path, ["trainer.ema_decay=0.9", "trainer.channels_last=true"])
    task = make_task(recipe, BASIC7, None)
    task.on_fit_start()
    convs = [m.weight for m in task.ema.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)


@pytest.mark.parametrize("avx512", [True, False])
def test_narrow_resnets_train_contiguous_on_cpus_without_avx512(tmp_path, monkeypatch, avx512):
    # oneDNN issue 6035: AVX2 kernels mistrain strided 1x1 convs with < 8 input channels
    # channels-last. Width 4 has one (layer2's shortcut); width 8 and every recipe model do not.
    flags = frozenset({"avx2", "avx512f"} if avx512 else {"avx2"})
    monkeypatch.setattr("attnfer.train.memory_format.cpu_flags", lambda: flags)
    path = write_recipe(tmp_path / "r.yaml", tmp_path, "resnet18")
    narrow, wide = (
        make_task(load_recipe(path, [f"model.kwargs={{width: {w}}}"]), BASIC7, None) for w in (4, 8)
    )
    assert unsafe_convs(narrow.model) == ["layer2.0.downsample.0"] and not unsafe_convs(wide.model)
    assert wide.channels_last and narrow.channels_last is avx512
    conv = narrow.model.layer1[0].conv1.weight  # 4 x 4 x 3 x 3: the layouts differ
    assert conv.is_contiguous(memory_format=torch.channels_last) is avx512


def test_ema_batch_norm_statistics_are_recomputed_before_validation(fer_subset, tmp_path):
    path = write_recipe(tmp_path / "r.yaml", fer_subset, "sepconv_se")  # has batch norm
    task = make_task(load_recipe(path, ["trainer.ema_decay=0.9"]), BASIC7, None)
    task.on_fit_start()
    faces = torch.from_numpy(load_dataset(fer_subset).split("train").images[:256])
    batches = [Preprocess()(faces[i : i + 64]) for i in range(0, 256, 64)]
    for x in batches:
        task.on_train_batch_end(None, (x,), 0)
    bn = next(m for m in task.ema.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    hook = bn.register_forward_hook(lambda module, args, out: seen.append(args[0].detach()))
    bn.running_mean.fill_(100.0)  # stale statistics
    task.on_validation_epoch_start()
    hook.remove()
    expected = torch.cat(seen).mean(dim=(0, 2, 3))  # the mean of its inputs over the batches
    torch.testing.assert_close(bn.running_mean, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_ema_run_saves_the_average_not_the_last_weights(fer_subset, tmp_path):
    trainer = "{epochs: 2, batch_size: 64, precision: 32-true, ema_decay: 0.9}"
    path = write_recipe(tmp_path / "r.yaml", fer_subset, "small_cnn", trainer=trainer)
    result = fit(load_recipe(path), tmp_path / "run", progress=False)
    best = torch.load(result.run_dir / "best.ckpt", weights_only=True)["state_dict"]
    saved = load_file(str(result.model_path))
    assert all(torch.equal(saved[k], best[f"ema.{k}"].float()) for k in saved)
    assert not all(torch.equal(saved[k], best[f"model.{k}"].float()) for k in saved)


def test_ema_decay_out_of_range_is_a_config_error(fer_subset, tmp_path):
    path = write_recipe(tmp_path / "r.yaml", fer_subset)
    with pytest.raises(ConfigError, match="ema_decay"):
        load_recipe(path, ["trainer.ema_decay=1.5"])


@pytest.mark.slow
def test_resumed_ema_run_keeps_its_average(fer_subset, tmp_path):
    """With a decay of nearly 1 the average barely moves after the resume: it must be the
    checkpoint's average, not a fresh copy of the weights."""
    path = write_recipe(tmp_path / "r.yaml", fer_subset, "small_cnn")
    run = tmp_path / "run"
    fit(load_recipe(path, ["trainer.epochs=1", "trainer.ema_decay=0.5"]), run, progress=False)
    before = torch.load(run / "last.ckpt", weights_only=True)["state_dict"]
    recipe = load_recipe(path, ["trainer.epochs=2", "trainer.ema_decay=0.999999"])
    fit(recipe, run, resume=True, progress=False)
    after = torch.load(run / "last.ckpt", weights_only=True)["state_dict"]
    key = next(k for k in before if k.startswith("ema.") and k.endswith("weight"))
    torch.testing.assert_close(after[key], before[key], atol=1e-4, rtol=0)
    assert not torch.allclose(before[key], before[key.replace("ema.", "model.", 1)], atol=1e-3)


def _training_batches(dm: FaceDataModule, tmp_path, epochs: int = 3) -> list[torch.Tensor]:
    """The input batches a probe model is given over ``epochs`` epochs of ``dm`` (one each)."""
    seen = []

    class Probe(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            seen.append(batch[0].clone())
            return (self.w - batch[0].mean()) ** 2

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)  # fmt: skip
    with quiet_lightning():
        trainer.fit(Probe(), datamodule=dm)
    return seen


@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader` but have no")  # no val here
def test_augmentation_weakens_epoch_by_epoch_to_its_final_scale(tmp_path):
    face = np.random.default_rng(0).integers(0, 256, (1, 48, 48), dtype=np.uint8)
    data = FaceDataset(np.repeat(face, 8, 0), np.zeros(8), CANONICAL[:7])
    augment = Augment(flip=0, shift=0.2, rotation=30.0, zoom=0, brightness=0, contrast=0,
                      erasing=0, final_scale=0.0)  # fmt: skip
    dm = FaceDataModule(data, None, Preprocess(), augment, batch_size=8, channels_last=False)
    seen = _training_batches(dm, tmp_path)
    clean = Preprocess()(torch.from_numpy(data.images))
    assert len(seen) == 3
    assert (seen[0] - clean).abs().mean() > 0.05  # full strength in the first epoch
    assert (seen[2] - clean).abs().mean() < (seen[0] - clean).abs().mean()
    assert torch.allclose(seen[2], clean, atol=1e-4)  # none left in the last


@pytest.mark.slow
def test_distill_packs_teacher_probabilities_that_a_student_trains_on(fer_subset, tmp_path):
    packed = tmp_path / "kd.safetensors"
    app = typer.Typer()
    app.command()(distill)
    args = [str(fer_subset), "--teacher", "default", "--out", str(packed), "--tta", "none"]
    result = CliRunner().invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    data = load_dataset(packed)
    assert data.soft_labels.shape == (len(data), 7)
    teacher = load_pretrained("default")
    expected = predict_proba(teacher.model, teacher.preprocess, data.images[:16], temperature=2.0)
    assert np.allclose(data.soft_labels[:16], expected, atol=1e-5)
    assert np.allclose(data.soft_labels.sum(1), 1.0, atol=1e-4)
    assert (data.soft_labels.argmax(1) == data.labels).mean() > 0.6  # the teacher knows faces

    recipe = load_recipe(write_recipe(tmp_path / "kd.yaml", packed), ["trainer.epochs=1",
                         "loss.soft_labels=0.5", "loss.label_smoothing=0"])  # fmt: skip
    task = make_task(recipe, BASIC7, None)
    dm = FaceDataModule(data.split("train"), None, Preprocess(), None, 8, soft_labels=True)
    _, y, soft = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    target = task._target(y, [soft])
    assert torch.allclose(target, 0.5 * torch.nn.functional.one_hot(y, 7) + 0.5 * soft)
    assert fit(recipe, tmp_path / "run", progress=False).test_report["samples"] == 140

    no_soft = load_recipe(write_recipe(tmp_path / "r.yaml", fer_subset), ["loss.soft_labels=0.5"])
    with pytest.raises(ConfigError, match="soft_labels needs soft labels"):
        fit(no_soft, tmp_path / "run2", progress=False)


def test_distill_dataset_refuses_bad_options_and_a_teacher_of_other_labels() -> None:
    faces = FaceDataset(np.zeros((2, 48, 48), np.uint8), [0, 7], CANONICAL, name="eight")
    with pytest.raises(ConfigError, match="need --temperature > 0"):
        distill_dataset(faces, "default", temperature=0)
    with pytest.raises(ConfigError, match="--tta none or flip"):
        distill_dataset(faces, "default", tta="tencrop")
    with pytest.raises(ConfigError, match=r"teacher default predicts angry, .+; eight has .+tempt"):
        distill_dataset(faces, "default")


def test_online_teacher_targets_the_batch_the_student_trains_on(fer_subset, tmp_path):
    """With ``loss.teacher`` the soft part of the target is the teacher's answer for the batch as
    the student gets it (after augmentation and mixup; a progressive size resized up to the
    teacher's), and the teacher's weights stay out of the task's state and its optimiser."""
    loss = "{teacher: default, soft_labels: 0.75, mixup: 0.4}"
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", fer_subset, "small_cnn", loss=loss))
    teacher = OnlineTeacher("default", BASIC7, recipe.preprocess, "faces")
    task = make_task(recipe, BASIC7, None, teacher)
    default = load_pretrained("default").model
    faces = load_dataset(fer_subset).split("val").images[:6]
    x, y = Preprocess()(torch.from_numpy(faces)), torch.arange(6)
    with torch.no_grad():
        expected = default(x).softmax(-1)
        small = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear")
        resized = default(torch.nn.functional.interpolate(small, size=(48, 48), mode="bilinear"))
    target = task._taught(x, y)
    assert torch.allclose(target, 0.25 * torch.nn.functional.one_hot(y, 7) + 0.75 * expected)
    assert torch.allclose(teacher(small), resized.softmax(-1), atol=1e-5)
    assert not any("teacher" in key for key in task.state_dict())
    student = make_task(load_recipe(write_recipe(tmp_path / "s.yaml", fer_subset, "small_cnn")),
                        BASIC7, None)  # fmt: skip
    assert sum(p.numel() for p in task.parameters()) == sum(p.numel() for p in student.parameters())
    result = fit(load_recipe(tmp_path / "r.yaml", ["trainer.epochs=1"]), tmp_path / "run",
                 progress=False)  # fmt: skip
    assert result.test_report["samples"] == 140


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # a step without a Trainer
def test_low_res_lowers_the_students_view_and_not_the_teachers(fer_subset, tmp_path):
    """``augment.low_res`` shows the student smaller faces upscaled; a teacher sees them whole."""
    still = "flip: 0, shift: 0, rotation: 0, zoom: 0, brightness: 0, contrast: 0, erasing: 0"
    path = write_recipe(tmp_path / "r.yaml", fer_subset, "small_cnn",
                        loss="{teacher: default, soft_labels: 0.5}",
                        augment=f"{{{still}, low_res: 1.0, low_res_side: 16}}")  # fmt: skip
    recipe = load_recipe(path)
    seen: dict[str, torch.Tensor] = {}

    class Spy:
        def __init__(self, teacher: OnlineTeacher) -> None:
            self.teacher = teacher

        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            seen["teacher"] = x.clone()
            return self.teacher(x)

    task = make_task(
        recipe, BASIC7, None, Spy(OnlineTeacher("default", BASIC7, recipe.preprocess, "faces"))
    )
    task.model.register_forward_pre_hook(lambda _, args: seen.update(student=args[0].clone()))
    faces = load_dataset(fer_subset).split("val").images[:8]
    x = Preprocess()(torch.from_numpy(faces))
    task.training_step((x, torch.arange(8) % 7), 0)
    assert torch.equal(seen["teacher"], x)
    assert seen["student"].shape == x.shape and not torch.allclose(seen["student"], x)
    detail = lambda t: (t[..., 1:] - t[..., :-1]).abs().mean()  # noqa: E731
    assert detail(seen["student"]) < 0.9 * detail(x)


def test_online_teacher_refuses_other_labels_other_inputs_and_no_share(fer_subset, tmp_path):
    with pytest.raises(ConfigError, match=r"teacher default predicts angry, .+; eight has .+tempt"):
        OnlineTeacher("default", CANONICAL, Preprocess(), "eight")
    with pytest.raises(ConfigError, match=r"takes 1-channel faces .+ gives 3-channel"):
        OnlineTeacher("default", BASIC7, Preprocess(channels=3, mean=0.5, std=0.5), "faces")
    path = write_recipe(tmp_path / "r.yaml", fer_subset, loss="{teacher: default}")
    with pytest.raises(ConfigError, match="a teacher needs soft_labels > 0"):
        load_recipe(path)
    with pytest.raises(ConfigError, match="teacher must be a model name or path, got 3"):
        load_recipe(path, ["loss.teacher=3", "loss.soft_labels=0.5"])


def test_task_loss_applies_class_weights_and_label_smoothing(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", tmp_path), ["loss.label_smoothing=0.1"])
    weights = torch.tensor([1.0, 9.0, 1.5, 0.5, 1.0, 1.2, 0.8])
    task = make_task(recipe, BASIC7, weights)
    logits, y = torch.randn(16, 7), torch.randint(0, 7, (16,))
    expected = torch.nn.functional.cross_entropy(logits, y, weight=weights, label_smoothing=0.1)
    assert torch.allclose(task.classification_loss(logits, y), expected)
    assert "classification_loss.weight" not in task.state_dict()  # from the data, not saved


@pytest.mark.slow
def test_last_checkpoint_is_written_every_epoch_even_when_val_does_not_improve(
    fer_subset, tmp_path
):
    recipe = write_recipe(
        tmp_path / "r.yaml", fer_subset, model="small_cnn",
        trainer="{epochs: 3, batch_size: 64, precision: 32-true}",
        optimizer="{name: sgd, lr: 0.0}",  # the weights never change: no epoch beats the first
    )  # fmt: skip
    fit(load_recipe(recipe), tmp_path / "run", progress=False)
    epoch = lambda name: torch.load(tmp_path / "run" / name, weights_only=True)["epoch"]  # noqa: E731
    assert epoch("best.ckpt") == 0
    assert epoch("last.ckpt") == 2  # what --resume continues from


def test_progressive_size_steps_from_start_to_full_in_equal_shares():
    sides = [progressive_size(e, 6, 32, 48) for e in range(6)]
    assert sides == [32, 32, 40, 40, 48, 48]
    assert progressive_size(0, 5, 48, 48) == 48
    assert progressive_size(4, 5, 44, 48) == 48  # a last step shorter than 8 px


@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader` but have no")  # no val here
def test_progressive_resizing_trains_small_first_and_at_full_size_last(tmp_path):
    face = np.random.default_rng(0).integers(0, 256, (1, 48, 48), dtype=np.uint8)
    data = FaceDataset(np.repeat(face, 8, 0), np.zeros(8), CANONICAL[:7])
    dm = FaceDataModule(data, None, Preprocess(), None, batch_size=8, channels_last=False,
                        start_size=32)  # fmt: skip
    assert [x.shape[-1] for x in _training_batches(dm, tmp_path)] == [32, 40, 48]


def test_every_optimizer_and_schedule_of_the_tables_builds_and_steps() -> None:
    model = torch.nn.Linear(2, 2)
    for opt_name, build_optimizer in OPTIMIZERS.items():
        optimizer = build_optimizer([{"params": list(model.parameters())}], OptimizerConfig(lr=0.1))
        assert optimizer.param_groups[0]["lr"] == 0.1, opt_name
    for name, build in SCHEDULES.items():
        optimizer = OPTIMIZERS["sgd"]([{"params": list(model.parameters())}], OptimizerConfig())
        settings = ScheduleConfig(name=name, warmup_epochs=1, step_size=1, patience=1)
        config = build(optimizer, settings, 10, 2)
        if name == "none":
            assert config is None
            continue
        scheduler = config["scheduler"]
        lrs = []
        for _ in range(6):
            optimizer.step()
            scheduler.step(0.5) if name == "plateau" else scheduler.step()
            lrs.append(optimizer.param_groups[0]["lr"])
        assert lrs[-1] < 0.1, name  # every schedule lowers the rate from its peak by step 6
    assert set(SPLITS) == {"official", "stratified", "subject", "jaffe_deep_emotion"}
