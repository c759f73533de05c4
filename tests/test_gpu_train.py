"""tools/gpu_train.py, the one-call GPU trainer: its parsing, its parts, its refusals."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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
