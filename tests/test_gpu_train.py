"""tools/gpu_train.py, the one-call GPU trainer, end to end on the CPU with a few random faces."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from attnfer.data.dataset import FaceDataset
from attnfer.data.labels import BASIC7
from attnfer.pretrained import load_pretrained

TOOL = Path(__file__).resolve().parents[1] / "tools" / "gpu_train.py"
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "gpu" / "resnet18_cbam_fer2013.yaml"


def load_tool():
    spec = importlib.util.spec_from_file_location("gpu_train", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runs_parse_and_bad_specs_are_refused():
    tool = load_tool()
    runs = tool.parse_runs(["a=r.yaml", "b-2=r.yaml loss.soft_labels=0.5 trainer.seed=1"])
    assert runs == [
        ("a", "r.yaml", []),
        ("b-2", "r.yaml", ["loss.soft_labels=0.5", "trainer.seed=1"]),
    ]
    for bad in ("r.yaml", "a b=r.yaml", "=r.yaml"):
        with pytest.raises(SystemExit, match="expected 'NAME=RECIPE"):
            tool.parse_runs([bad])


def test_parts_join_back_into_the_file(tmp_path, monkeypatch):
    tool = load_tool()
    monkeypatch.setattr(tool, "PART_BYTES", 1000)
    src = tmp_path / "w.safetensors"
    src.write_bytes(np.random.default_rng(0).bytes(2500))
    parts = tool.split_into_parts(src, tmp_path)
    assert [p.name for p in parts] == [f"w.safetensors.part0{i}" for i in range(3)]
    assert b"".join(p.read_bytes() for p in sorted(parts)) == src.read_bytes()


@pytest.mark.slow
def test_trains_exports_and_packs_logs(tmp_path):
    """The recipe the GPU runs, shrunk (width 16, no compilation) on 96 random faces."""
    rng = np.random.default_rng(0)
    data = FaceDataset(
        images=rng.integers(0, 256, (128, 48, 48), dtype=np.uint8),
        labels=np.arange(128) % 7,
        label_names=BASIC7,
        splits={"train": np.arange(96), "val": np.arange(96, 128)},
        soft_labels=rng.dirichlet(np.ones(7), 128).astype(np.float32),
        name="random",
    )
    source = data.save(tmp_path / "faces.safetensors.xz")
    out = tmp_path / "out"
    sets = f"data.source={source} model.kwargs.width=16 trainer.compile=false trainer.epochs=3"
    cmd = [sys.executable, str(TOOL), "--out", str(out), "--work", str(tmp_path / "work")]
    cmd += ["--deadline", "600", "--warmup", "2", f"soft={RECIPE} {sets} loss.soft_labels=0.5"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "soft: 3 epochs" in result.stdout  # the recipe's epochs: time was left for more

    parts = sorted(out.glob("soft.safetensors.part*"))
    assert [p.name for p in parts] == ["soft.safetensors.part00"]
    joined = tmp_path / "soft.safetensors"
    joined.write_bytes(b"".join(p.read_bytes() for p in parts))
    model = load_pretrained(joined)
    assert model.label_names == BASIC7
    assert next(model.model.parameters()).shape[0] == 16  # the width asked for
    with tarfile.open(out / "logs.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"soft.log", "warmup_soft.log", "soft/logs/attempt_0/metrics.csv"} <= names
    log = (tmp_path / "work" / "soft.log").read_text()
    assert "epoch 3/3" in log and "it/s" not in log  # epoch lines kept, progress bars left out
    trainer = json.loads((tmp_path / "work" / "soft" / "recipe.json").read_text())["trainer"]
    assert 0 < trainer["max_minutes"] < 10  # stops by the deadline whatever its epochs cost


def test_a_bad_recipe_stops_the_tool_before_training(tmp_path):
    cmd = [sys.executable, str(TOOL), "--out", str(tmp_path / "o"), "--work", str(tmp_path / "w")]
    result = subprocess.run(
        [*cmd, f"a={RECIPE}", "x=missing.yaml"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "error: missing.yaml: cannot read recipe (No such file or directory)"
    )
    assert not (tmp_path / "w").exists()
