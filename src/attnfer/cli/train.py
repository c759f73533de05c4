"""``attnfer train | evaluate | calibrate | cv | compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..data.readers import load_dataset
from ..errors import ConfigError
from ..train.config import Recipe, load_recipe
from .options import detector_names, progress_bar

console = Console()

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="Recipe YAML file.")]
SetOpt = Annotated[
    list[str] | None, typer.Option("--set", help="Override a recipe key: trainer.epochs=5.")
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Run folder (default `runs/<name>`).")]


def _run_dir(recipe: Recipe, out: Path | None) -> Path:
    return out or Path("runs") / recipe.name


def train(
    config: ConfigOpt,
    overrides: SetOpt = None,
    out: OutOpt = None,
    resume: Annotated[bool, typer.Option(help="Continue from the run folder's last.ckpt.")] = False,
    force: Annotated[
        bool, typer.Option(help="Train a new run over the one in the run folder.")
    ] = False,
) -> None:
    """Train a recipe; writes checkpoints, model.safetensors, curves and the test report.

    A run folder that holds a run is refused unless --resume (continue it) or --force."""
    from ..train.run import fit

    recipe = load_recipe(config, overrides)
    result = fit(recipe, _run_dir(recipe, out), resume=resume, force=force)
    console.print(f"model: {result.model_path}  ({result.seconds / 60:.1f} min)")
    if result.best_val_acc is not None:
        console.print(f"best val accuracy: {100 * result.best_val_acc:.2f}%")
    if result.test_report:
        console.print(f"test accuracy: {100 * result.test_report['accuracy']:.2f}%")


def evaluate(
    checkpoint: Annotated[str, typer.Argument(help="model.safetensors, run folder or 'default'.")],
    data: Annotated[Path, typer.Option("--data", help="Data set: folder, CSV or packed file.")],
    split: Annotated[str, typer.Option(help="Split to evaluate ('all' for every row).")] = "test",
    tta: Annotated[str, typer.Option(help="Test-time augmentation: none, flip, tencrop.")] = "none",
    bf16: Annotated[
        bool, typer.Option("--bf16", help="bf16 autocast, channels-last: faster, near fp32.")
    ] = False,
    faces: Annotated[
        str,
        typer.Option(
            help="crop: each image is a face crop; detect: each image is a photo, run through "
            "detection and alignment (the largest face; no face found counts as wrong)."
        ),
    ] = "crop",
    detector: Annotated[
        str, typer.Option(help="With --faces detect: 'all' or comma-separated detector names.")
    ] = "default",
    balance: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="How far the training data's class frequencies are divided out of the "
            "probabilities: 0 the network as trained (as papers report), 1 every expression "
            "equally likely a priori; Recognizer, predict and serve balance by default.",
        ),
    ] = 0.0,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the JSON/Markdown/PNG report.")
    ] = None,
) -> None:
    """Accuracy, per-class P/R/F1, macro-F1 and confusion matrix of a model on a data split
    (of images, or of clips for a clip model such as fan_resnet18); with `--faces detect`, of
    the full photo path, per detector."""
    from ..pretrained import load_pretrained
    from ..train.evaluate import evaluate_model, write_report

    if faces not in ("crop", "detect"):
        raise ConfigError(f"--faces must be crop or detect, got {faces!r}")
    if faces == "detect":
        return _evaluate_photos(checkpoint, data, split, tta, bf16, detector, balance, out)
    pre = load_pretrained(checkpoint)
    if pre.clip or "clips" in pre.info:  # a clip model: clip-level evaluation
        from .video import evaluate_clips_command

        return evaluate_clips_command(checkpoint, data, split, None, out)
    dataset = load_dataset(data)
    part = dataset if split == "all" else dataset.split(split)
    report = evaluate_model(
        pre.model, pre.preprocess, pre.label_names, part, tta, bf16, pre.class_prior, balance
    )
    console.print(
        f"{part.name}: {report['samples']} faces, accuracy {100 * report['accuracy']:.2f}%, "
        f"macro-F1 {100 * report['macro_f1']:.2f}%, calibration error "
        f"{100 * report['calibration']['ece']:.2f}% (tta={tta}, {report['precision']}"
        f"{f', balance {balance:g}' if balance else ''})"
    )
    if out is not None:
        for path in write_report(report, out / f"eval_{split}_{tta}", part.images):
            console.print(f"wrote {path}")


def _evaluate_photos(
    checkpoint: str,
    data: Path,
    split: str,
    tta: str,
    bf16: bool,
    detector: str,
    balance: float,
    out: Path | None,
) -> None:
    """``evaluate --faces detect``: the photo path, one report per detector."""
    from ..faces.backends import DEFAULT_DETECTOR
    from ..photos import evaluate_photos, photo_samples
    from ..recognize import Recognizer

    photos = photo_samples(data, split)
    names = detector_names(DEFAULT_DETECTOR if detector == "default" else detector)
    for name in names:
        recognizer = Recognizer(
            checkpoint, name, faces="detect", tta=tta, bf16=bf16, balance=balance
        )
        with progress_bar() as bar:
            task = bar.add_task(f"{photos.name}: {name}", total=len(photos.labels))
            report = evaluate_photos(
                recognizer, photos, progress=lambda n, _, t=task: bar.update(t, completed=n)
            )
        missed = report["photos"] - report["found"]
        console.print(
            f"{photos.name}: {name}: {report['photos']} photos, accuracy "
            f"{100 * report['accuracy']:.2f}% (no face found in {missed}, counted wrong; "
            f"{100 * report['report']['accuracy']:.2f}% of the {report['found']} found; "
            f"several faces in {report['several']}; tta={tta}"
            f"{f', balance {recognizer.balance:g}' if recognizer.balance else ''})"
        )
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"eval_photos_{split}_{name}_{tta}.json"
            path.write_text(json.dumps(report, indent=2))
            console.print(f"wrote {path}")


def calibrate(
    checkpoint: Annotated[str, typer.Argument(help="model.safetensors, run folder or 'default'.")],
    data: Annotated[Path, typer.Option("--data", help="Data set: folder, CSV or packed file.")],
    out: Annotated[Path, typer.Option("--out", help="The calibrated model's .safetensors file.")],
    split: Annotated[str, typer.Option(help="Held-out split to fit on (not test).")] = "val",
    half: Annotated[bool, typer.Option("--half", help="Store the weights as fp16.")] = False,
) -> None:
    """Temperature scaling: fit one temperature on a held-out split so that the model's
    probabilities match how often it is right, and write the model with it folded into the
    classifier. Accuracy is unchanged; `attnfer evaluate` prints the calibration error."""
    from ..pretrained import load_pretrained
    from ..train.calibrate import calibrate as fit

    if split == "test":
        raise ConfigError("fit on a held-out split (val), not test: test scores the result")
    pre = load_pretrained(checkpoint)
    if pre.clip:
        raise ConfigError(f"{checkpoint}: calibrate takes image models, not clip models")
    dataset = load_dataset(data)
    part = dataset if split == "all" else dataset.split(split)
    result = fit(pre, part)
    console.print(
        f"{part.name}: temperature {result.temperature:.3f}; calibration error "
        f"{100 * result.before['ece']:.2f}% -> {100 * result.after['ece']:.2f}%, "
        f"NLL {result.before['nll']:.4f} -> {result.after['nll']:.4f}"
    )
    console.print(f"wrote {pre.save(out, half=half)}")


def cv(
    config: ConfigOpt,
    folds: Annotated[int, typer.Option(help="Number of subject-independent folds.")] = 10,
    inner_val: Annotated[
        bool, typer.Option(help="Keep the best epoch on the next fold (held out of training).")
    ] = False,
    keep_checkpoints: Annotated[
        bool, typer.Option(help="Keep each finished fold's best.ckpt and last.ckpt.")
    ] = False,
    overrides: SetOpt = None,
    out: OutOpt = None,
) -> None:
    """Subject-independent k-fold cross-validation (CK+, JAFFE): mean and std of accuracy.

    Each fold is the test set once; the model is the last epoch's, or with ``--inner-val`` the
    epoch best on the following fold, which then does not train. Writes cv.json, cv.png (per
    fold), cv_test.json/.md/.png (the confusion matrix over every fold's test faces) and
    cv_test_errors.png (the most confident mistakes among them). A finished fold keeps its
    model.safetensors and reports; its training checkpoints (only needed to resume it) are
    dropped unless ``--keep-checkpoints``."""
    from ..train.cv import cross_validate

    recipe = load_recipe(config, overrides)
    run_dir = _run_dir(recipe, out)

    def fold_done(k: int, accuracy: float, tta_accuracy: float | None) -> None:
        line = f"fold {k}/{folds}: {100 * accuracy:.2f}%"
        if tta_accuracy is not None:
            line += f" ({recipe.trainer.tta} TTA {100 * tta_accuracy:.2f}%)"
        console.print(line)

    result = cross_validate(recipe, folds, run_dir, inner_val, keep_checkpoints, fold_done)
    summary, errors = result.summary, result.pooled["errors"]
    groups = {(e["subject"], e["label"]) for e in errors}
    console.print(f"{len(errors)} wrong faces in {len(groups)} (subject, label) groups")
    line = f"{recipe.name}: {folds}-fold accuracy {_mean_std(summary['mean'], summary['std'])}"
    if "tta" in summary:
        line += f"; {summary['tta']} TTA {_mean_std(summary['tta_mean'], summary['tta_std'])}"
    console.print(line)
    names = ", ".join(path.name for path in result.written)
    console.print(f"wrote in {run_dir}: cv.png (per fold), {names} (all folds)")


def _mean_std(mean: float, std: float) -> str:
    return f"{100 * mean:.2f} ± {100 * std:.2f}%"


def compare(
    configs: Annotated[list[Path], typer.Argument(help="Recipe files to train and compare.")],
    overrides: SetOpt = None,
) -> None:
    """Train (or reuse finished runs of) several recipes; print ours beside the papers'."""
    from ..train.cv import finished_or_fit

    table = Table(title="ours vs paper (test accuracy, %)")
    for col in ("recipe", "paper", "paper's figure", "ours", "difference"):
        table.add_column(col)
    for config in configs:
        recipe = load_recipe(config, overrides)
        report = finished_or_fit(recipe, _run_dir(recipe, None))
        ours = 100 * report["accuracy"] if report else None
        theirs = recipe.paper.get("result")
        diff = f"{ours - theirs:+.2f}" if ours is not None and theirs is not None else "-"
        table.add_row(
            recipe.name,
            str(recipe.paper.get("id", "-")),
            "-" if theirs is None else f"{theirs:.2f}",
            "-" if ours is None else f"{ours:.2f}",
            diff,
        )
    console.print(table)
