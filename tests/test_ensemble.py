"""Ensembles as model files: averaged probabilities, the file's checks, `attnfer ensemble`, and
the commands that take any model taking it too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from attnfer.cli import app
from attnfer.errors import ConfigError, ModelError
from attnfer.explain import explain_crops
from attnfer.export import export_model
from attnfer.models import create_model
from attnfer.models.ensemble import ENSEMBLE_ARCH, Ensemble
from attnfer.models.weights import read_metadata
from attnfer.preprocess import Preprocess
from attnfer.pretrained import (
    describe_model,
    load_pretrained,
    resolve,
    save_ensemble,
    save_pretrained,
)
from attnfer.recognize import Recognizer

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
GRAY48 = Preprocess(size=48, channels=1, mean=0.5, std=0.5)


def _member(path: Path, arch: str, seed: int, preprocess: Preprocess = GRAY48, **kwargs) -> Path:
    torch.manual_seed(seed)
    model = create_model(arch, 7, in_chans=preprocess.channels, **kwargs).eval()
    with torch.no_grad():  # spread the logits so that the members disagree visibly
        model.classifier.weight.mul_(3.0)
    framing = {"retinaface": {"scale": 1.1, "dx": 0.0, "dy": 0.05}} if seed == 0 else None
    return save_pretrained(path, model, arch, LABELS, preprocess, kwargs, {}, framing)


@pytest.fixture
def members(tmp_path: Path) -> list[Path]:
    return [
        _member(tmp_path / "a.safetensors", "resnet10", 0, width=8),
        _member(tmp_path / "b.safetensors", "resnet18_cbam", 1, width=8, stem="cifar_s2"),
    ]


def _faces(n: int = 6) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def test_ensemble_averages_its_members_probabilities_with_their_weights(tmp_path, members):
    path = save_ensemble(members, tmp_path / "e.safetensors", weights=[3, 1])
    ens = load_pretrained(path)
    assert ens.arch == ENSEMBLE_ARCH and isinstance(ens.model, Ensemble)
    x = torch.randn(5, 1, 48, 48)
    with torch.no_grad():
        a, b = (load_pretrained(m).model(x).softmax(1) for m in members)
        assert not torch.allclose(a, b, atol=1e-2)
        assert torch.allclose(ens.model(x).softmax(1), 0.75 * a + 0.25 * b, atol=1e-5)
    # The file keeps each member's tensors under members.<i>. and says what each member is.
    keys = load_file(path).keys()
    assert {k.split(".")[1] for k in keys} == {"0", "1"}
    spec = json.loads(read_metadata(path)["model_kwargs"])
    assert [m["arch"] for m in spec["members"]] == ["resnet10", "resnet18_cbam"]
    assert spec["weights"] == [3, 1]
    # It carries the first member's framing, labels and preprocessing.
    assert ens.framing == load_pretrained(members[0]).framing and ens.framing
    assert ens.label_names == LABELS and ens.preprocess == GRAY48
    assert ens.info["members"] == ["a.safetensors", "b.safetensors"]  # names, not paths


def test_ensemble_cost_is_its_members_summed(tmp_path, members):
    path = save_ensemble(members, tmp_path / "e.safetensors")
    parts = [describe_model(m) for m in members]
    whole = describe_model(path)
    assert whole["params"] == sum(p["params"] for p in parts)
    assert whole["mflops"] == pytest.approx(sum(p["mflops"] for p in parts))


def test_ensemble_refuses_what_cannot_be_averaged(tmp_path, members):
    with pytest.raises(ConfigError, match="2 to 16 models"):
        save_ensemble(members[:1], tmp_path / "e.safetensors")
    with pytest.raises(ConfigError, match="one weight each"):
        save_ensemble(members, tmp_path / "e.safetensors", weights=[1, 1, 1])
    for weights in ([0, 0], [1, float("inf")], [1, float("nan")]):
        with pytest.raises(ConfigError, match="finite, >= 0, not all 0"):
            save_ensemble(members, tmp_path / "e.safetensors", weights=weights)
    rgb = _member(tmp_path / "rgb.safetensors", "resnet10", 2, Preprocess(48, 3), width=8)
    with pytest.raises(ConfigError, match=r"rgb\.safetensors takes"):
        save_ensemble([members[0], rgb], tmp_path / "e.safetensors")
    nested = save_ensemble(members, tmp_path / "e.safetensors")
    with pytest.raises(ConfigError, match="an ensemble already"):
        save_ensemble([nested, members[0]], tmp_path / "f.safetensors")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"members": [{"arch": "resnet10", "kwargs": {"width": 8}}], "weights": [1]}, "2 to 16"),
        ({"members": "resnet10", "weights": [1]}, "members and weights lists"),
        ({"members": [{"arch": "nonet", "kwargs": {}}] * 2, "weights": [1, 1]}, "no image model"),
        ({"members": [{"arch": "fan_resnet18", "kwargs": {}}] * 2, "weights": [1, 1]}, "no image"),
        ({"members": [{"arch": "resnet10", "kwargs": {}}] * 2, "weights": [1, -1]}, "weights"),
        ({"members": [{"arch": "resnet10", "kwargs": {}}] * 2, "weights": [1, 1e999]}, "finite"),
    ],
)
def test_a_malformed_ensemble_file_is_a_model_error_naming_it(tmp_path, members, spec, problem):
    path = save_ensemble(members, tmp_path / "e.safetensors")
    meta = read_metadata(path)
    bad = tmp_path / "bad.safetensors"
    save_file(load_file(path), bad, {**meta, "model_kwargs": json.dumps(spec)})
    with pytest.raises(ModelError, match=f"bad.safetensors.*{problem}"):
        load_pretrained(tmp_path / "bad.safetensors")


def test_ensemble_command_writes_a_file_every_command_takes(tmp_path, members):
    out = tmp_path / "e.safetensors"
    args = ["ensemble", *map(str, members), "--weights", "1,2", "--out", str(out), "--half"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 members" in result.output and out.is_file()
    args[args.index("1,2")] = "1,x"
    bad = CliRunner().invoke(app, args)
    assert isinstance(bad.exception, ConfigError) and "--weights takes numbers" in str(
        bad.exception
    )
    # A Recognizer classifies with it, in PyTorch and through ONNX alike.
    faces = _faces()
    torch_probs = Recognizer(out, backend="torch", bf16=False).probabilities(faces)
    onnx_probs = Recognizer(out, backend="onnx").probabilities(faces)
    assert np.allclose(torch_probs, onnx_probs, atol=1e-4)
    onnx = export_model(out, tmp_path / "e.onnx", "onnx", False, None)
    assert np.allclose(Recognizer(onnx).probabilities(faces), torch_probs, atol=1e-4)


def test_explain_takes_an_ensemble_by_occlusion_and_refuses_a_look_inside(tmp_path, members):
    path = save_ensemble(members, tmp_path / "e.safetensors")
    found = explain_crops(path, _faces(2), "occlusion", window=16, stride=16)
    assert len(found) == 2 and found[0].maps["drop"].shape == (48, 48)
    for method in ("gradcam", "cbam"):
        with pytest.raises(ConfigError, match="averages 2: explain it with occlusion"):
            explain_crops(path, _faces(2), method)


def test_an_ensemble_by_reference_stores_its_members_once(tmp_path, members):
    whole = load_pretrained(save_ensemble(members, tmp_path / "whole.safetensors", [1, 2]))
    out = save_ensemble(members, tmp_path / "e.safetensors", [1, 2], by_reference=True)
    assert load_file(out) == {}  # no tensors: the members' files hold them
    meta = json.loads(read_metadata(out)["model_kwargs"])
    assert [m["file"] for m in meta["members"]] == ["a.safetensors", "b.safetensors"]
    linked = load_pretrained(out)
    faces = torch.from_numpy(_faces()).float().div(255).sub(0.5).div(0.5)[:, None]
    with torch.no_grad():
        assert torch.allclose(linked.model(faces), whole.model(faces), atol=1e-6)
    sizes = sum(p.stat().st_size for p in (out, *members)) / 1e6
    assert describe_model(out)["megabytes"] == pytest.approx(sizes)
    # Saved again, a loaded ensemble carries its members' tensors and names no files.
    again = load_pretrained(linked.save(tmp_path / "again.safetensors"))
    assert "file" not in json.dumps(again.model_kwargs)
    with torch.no_grad():
        assert torch.allclose(again.model(faces), whole.model(faces), atol=1e-6)


def test_an_ensemble_by_reference_refuses_members_it_cannot_find_or_trust(tmp_path, members):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(ConfigError, match="must be a file in"):
        save_ensemble(members, elsewhere / "e.safetensors", by_reference=True)
    out = save_ensemble(members, tmp_path / "e.safetensors", by_reference=True)
    meta = read_metadata(out)
    spec = json.loads(meta["model_kwargs"])

    def rewritten(change) -> Path:
        bad = json.loads(json.dumps(spec))
        change(bad["members"])
        save_file({}, tmp_path / "bad.safetensors", {**meta, "model_kwargs": json.dumps(bad)})
        return tmp_path / "bad.safetensors"

    for change, problem in [
        (lambda m: m[0].update(file="../a.safetensors"), "not a .safetensors name in its folder"),
        (lambda m: m[0].update(sha256="0" * 63), "no sha256 of 64 hex digits"),
        (lambda m: m[1].pop("file"), "every ensemble member names its file or none"),
        (lambda m: m[0].update(file="gone.safetensors"), "gone.safetensors is not beside it"),
        (lambda m: m[0].update(kwargs={"width": 16}), "is not the model it records"),
    ]:
        with pytest.raises(ModelError, match=f"bad.safetensors.*{problem}"):
            load_pretrained(rewritten(change))
    save_file({"x": torch.zeros(1)}, tmp_path / "bad.safetensors", meta)
    with pytest.raises(ModelError, match="names its member files holds no tensors"):
        load_pretrained(tmp_path / "bad.safetensors")
    _member(members[1], "resnet18_cbam", 5, width=8, stem="cifar_s2")  # retrained in place
    with pytest.raises(ModelError, match=r"b\.safetensors changed since it was written"):
        load_pretrained(out)


def test_the_shipped_ensemble_names_its_members_in_the_package():
    """`ensemble` stores no tensor twice: its file names `default`'s and two more beside it, and
    the package's weights stay under 100 MB."""
    file = resolve("ensemble")
    assert load_file(file) == {}
    members = [m["file"] for m in describe_model("ensemble")["kwargs"]["members"]]
    assert members[0] == resolve("default").name and len(set(members)) == 3
    assert all((file.parent / m).is_file() for m in members)
    weights = [p for p in file.parent.iterdir() if p.suffix in (".safetensors", ".onnx")]
    assert sum(p.stat().st_size for p in weights) < 100e6
