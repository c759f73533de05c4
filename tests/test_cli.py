"""The `attnfer` command line as a whole: help, flags, exit codes, completion, shipped models,
and predict's results file written as it goes, killed and resumed."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnfer.cli import COMMANDS, app, first_sentence, load_command, short_help

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut.jpg"
FER_TEST = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fer2013" / "test"
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def command_paths(command=None, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command and group under the app, the app itself first."""
    if command is None:
        yield ()
        for name in COMMANDS:
            yield from command_paths(load_command(name), (name,))
        return
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from command_paths(sub, (*path, name))


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner(env=env).invoke(app, list(args), prog_name="attnfer")


def help_text(*path: str) -> str:
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())  # the words, without the layout


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> list[Path]:
    """Ten FER2013 test crops (48 x 48: classified whole, no detector)."""
    if not FER_TEST.is_dir():
        pytest.skip(f"FER2013 test split not found at {FER_TEST}")
    folder = tmp_path_factory.mktemp("crops")
    files = [f for label in LABELS for f in sorted((FER_TEST / label).glob("*.jpg"))[:2]][:10]
    return [Path(shutil.copy(f, folder / f"{i:02d}_{f.name}")) for i, f in enumerate(files)]


def test_every_command_has_help_and_flags_take_no_value() -> None:
    paths = list(command_paths())
    assert {("predict",), ("train",), ("video", "run"), ("data", "pack")} <= set(paths)
    for path in paths:
        text = help_text(*path)
        assert "Usage: attnfer" in text, path
        assert "<bool>" not in text, path  # a flag is --json, not --json <bool>
    assert "--json Print JSON" in help_text("predict")


def test_the_listing_shows_each_commands_first_sentence() -> None:
    listing = help_text()
    for name in COMMANDS:
        sentence = first_sentence(load_command(name).help or "")
        assert sentence and short_help(name) == sentence, name
        assert f"{name} {sentence}".replace("`", "") in listing, name  # markdown rendered


def test_help_answers_without_importing_torch() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from attnfer.cli import app; "
        "r = CliRunner().invoke(app, ['--help'], prog_name='attnfer'); "
        "assert r.exit_code == 0 and 'predict' in r.output, r.output; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_paragraphs_are_reflowed() -> None:
    # predict's docstring breaks a line after "to a file as"; rendered, the words flow on, where
    # a kept line break would leave "they come" on a line of its own
    result = invoke("predict", "--help")
    assert any("to a file as they come" in line for line in result.output.splitlines())


def test_exit_codes_are_documented() -> None:
    for path in ((), ("predict",)):
        assert re.search(r"Exit codes: 0 .+; 1 some inputs failed.*; 2 a usage", help_text(*path))


@pytest.mark.parametrize(
    ("path", "words"),
    [
        (("train",), "Run folder (default runs/<name>)."),
        (("video", "evaluate-clips"), "Clip folder (<label>/*.mp4) or CK+ crops."),
    ],
)
def test_help_keeps_placeholders(path: tuple[str, ...], words: str) -> None:
    assert words in help_text(*path)  # not eaten as HTML tags nor shown with backticks


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("attnfer predict --detector ", {"default", "mtcnn", "yunet", "retinaface"}),
        ("attnfer predict x.jpg --model ", {"default", "fast"}),
        ("attnfer predict x.jpg --model f", {"fast"}),
        ("attnfer explain x.jpg --method ", {"occlusion", "cbam", "stn", "gradcam"}),
        ("attnfer explain x.jpg --method g", {"gradcam"}),
        ("attnfer predict x.jpg --tta ", {"none", "flip", "tencrop"}),
    ],
)
def test_tab_completion_offers_the_values(words: str, expected: set[str]) -> None:
    env = {
        "_ATTNFER_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    result = invoke(env=env)
    assert result.exit_code == 0, result.output
    assert expected <= set(result.output.split()), result.output


def test_explain_methods_match_the_library() -> None:
    from attnfer.cli.explain import METHODS as OFFERED
    from attnfer.explain.api import METHODS

    assert OFFERED == METHODS


def test_explain_stn_does_not_advise_an_unshipped_model() -> None:
    result = invoke("explain", str(EXAMPLE), "--method", "stn", "--model", "fast")
    assert result.exit_code != 0
    message = str(result.exception)
    assert "--method stn needs a model with a spatial transformer" in message
    assert "--model deep_emotion" not in message and "recipes/paper001/" in message


def test_models_lists_the_shipped_weights_beside_the_architectures() -> None:
    from safetensors import safe_open

    from attnfer.pretrained import load_pretrained, resolve

    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["models"], prog_name="attnfer")
    assert result.exit_code == 0, result.output
    shipped, architectures = result.output.split("architectures")
    for name in ("default", "fast"):
        path = resolve(name)
        with safe_open(str(path), framework="pt") as f:
            info, arch = json.loads(f.metadata()["info"]), f.metadata()["arch"]
        row = next(line for line in shipped.splitlines() if f" {name} " in line)
        assert f"{path.stat().st_size / 1e6:.1f} MB" in row
        assert f"{100 * info['best_val_acc']:.2f}%" in row
        assert "7 expressions" in row and arch in row
    fast = load_pretrained("fast").model
    millions = sum(p.numel() for p in fast.parameters()) / 1e6
    assert f"{millions:.2f} M parameters" in shipped  # fast, built at its own width
    assert "deep_emotion" in architectures and "deep_emotion" not in shipped


def test_predict_exits_1_when_some_inputs_failed(crops, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a picture")
    result = invoke("predict", str(crops[0]), str(broken), "--model", "fast", "--json")
    assert result.exit_code == 1, result.output
    assert [r["file"] for r in json.loads(result.stdout)] == [str(crops[0])]
    assert "broken.jpg: not an image" in result.stderr

    # --json is a flag: "true" is an input, missing, so the run did not do all it was given
    flag = invoke("predict", "--json", "true", str(crops[0]), "--model", "fast")
    assert flag.exit_code == 1 and "true: no such file or folder" in flag.stderr
    assert invoke("predict", str(crops[0]), "--model", "fast", "--csv").exit_code == 0
    assert invoke("predict", str(crops[0]), "--model", "no-such-model").exit_code != 0


def test_predict_table_folds_rather_than_drops_at_80_columns(crops) -> None:
    """In an 80-column terminal (and in a pipe) every cell is kept whole, folded over lines."""
    result = invoke("predict", str(crops[0]), "--model", "fast", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    body = [line.split("│")[1:-1] for line in result.stdout.splitlines() if line.startswith("│")]
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    file, face, box, detected = ("".join(row[i].strip() for row in body) for i in range(4))
    assert (file, face, box, detected) == (str(crops[0]), "1", "0,0,48,48", "no")


def test_out_refuses_to_overwrite_and_checks_its_suffix(crops, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    out.write_text('{"file": "a.jpg", "faces": []}\n')
    again = invoke("predict", str(crops[0]), "--model", "fast", "--out", str(out))
    assert again.exit_code != 0 and "exists; add --resume" in str(again.exception)
    wrong = invoke("predict", str(crops[0]), "--model", "fast", "--out", str(tmp_path / "r.txt"))
    assert wrong.exit_code != 0 and "must end in .jsonl or .csv" in str(wrong.exception)


def test_csv_out_resumes_after_a_cut_line(crops, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    first = invoke("predict", *map(str, crops[:4]), "--model", "fast", "--out", str(out))
    assert first.exit_code == 0, first.output
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:-1]) + lines[-1][:20])  # the last row cut short
    args = ["predict", str(crops[0].parent), "--model", "fast", "--out", str(out), "--resume"]
    second = invoke(*args)
    assert second.exit_code == 0, second.output
    # the cut row's file and the file before it (whose rows may be incomplete) are done again
    assert "2 files already in" in second.stderr
    rows = [line.split(",") for line in out.read_text().splitlines()]
    assert rows[0][:7] == ["file", "face", "x1", "y1", "x2", "y2", "detected"]
    assert sorted(r[0] for r in rows[1:]) == sorted(map(str, crops))  # each once, whole image
    assert all(len(r) == len(rows[0]) for r in rows)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_predict_killed_halfway_resumes_with_every_file_once(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(40):
        shutil.copy(EXAMPLE, photos / f"p{i:02d}.jpg")
    out = tmp_path / "results.jsonl"
    args = [sys.executable, "-m", "attnfer", "predict", str(photos), "--model", "fast"]
    args += ["--faces", "detect", "--out", str(out)]
    run = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _lines(out) < 8 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait()
    written = _lines(out)
    assert 8 <= written < 40, f"{written} lines when killed: the run was not stopped halfway"
    with out.open("a") as f:
        f.write('{"file": "' + str(photos / "p39.jpg"))  # a line cut short by the kill

    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{written} files already in" in resumed.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["file"] for r in records) == sorted(str(p) for p in photos.iterdir())
    assert all(len(r["faces"]) == 1 for r in records)
