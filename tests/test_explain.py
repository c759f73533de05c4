"""Explanations: occlusion, Grad-CAM, attention maps, region maps, rendering and the commands."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from PIL import Image
from torch import Tensor, nn
from typer.testing import CliRunner

from attnfer.cli.explain import explain, region_maps_command
from attnfer.data.dataset import FaceDataset
from attnfer.errors import ConfigError, ModelError
from attnfer.explain import (
    attention_maps,
    explain_crops,
    explain_faces,
    grad_cam,
    occlusion,
    region_maps,
    render_explanation,
    save_region_arrays,
    save_region_grid,
    stn_warp,
    window_masks,
)
from attnfer.explain.api import preprocess_crops
from attnfer.models import create_model
from attnfer.preprocess import Preprocess
from attnfer.pretrained import Pretrained, rebalance, save_pretrained
from attnfer.recognize import Recognizer

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
FER_HAPPY = DATASETS / "fer2013" / "test" / "happy"
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
PATCH = (slice(32, 40), slice(16, 32))  # rows, columns the hand-made model looks at
FOREHEAD = (slice(2, 12), slice(14, 34))  # of a 48 x 48 FER2013 face
MOUTH = (slice(34, 44), slice(14, 34))


class Gate(nn.Module):
    """Keeps the pixels of a fixed mask, zeroes the rest."""

    def __init__(self, mask: Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.mask


class PatchNet(nn.Module):
    """Two classes; class 0's logit grows with the brightness of PATCH and nothing else."""

    def __init__(self, size: int = 48) -> None:
        super().__init__()
        mask = torch.zeros(1, 1, size, size)
        mask[0, 0][PATCH] = 1
        conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        nn.init.constant_(conv.weight, 1 / 9)
        self.features = nn.Sequential(conv, nn.ReLU(), Gate(mask))
        self.area = float(mask.sum())
        self.classifier = nn.Linear(1, 2)
        with torch.no_grad():
            self.classifier.weight.copy_(torch.tensor([[10.0], [0.0]]))
            self.classifier.bias.copy_(torch.tensor([-3.0, 0.0]))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).sum((2, 3)) / self.area)


def _patch_pretrained() -> Pretrained:
    return Pretrained(PatchNet().eval(), "patchnet", LABELS[:2], Preprocess())


def _bright_faces(n: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(150, 250, (n, 48, 48), dtype=np.uint8)


def _standin(folder: Path, arch: str) -> Path:
    """An untrained ``arch`` saved like a trained model."""
    torch.manual_seed(0)
    return save_pretrained(
        folder / f"{arch}.safetensors", create_model(arch), arch, LABELS, Preprocess()
    )


@pytest.fixture(scope="module")
def resnet() -> Pretrained:
    """An untrained resnet18_cbam (calls share one input shape: warm-up is paid once)."""
    torch.manual_seed(0)
    return Pretrained(create_model("resnet18_cbam").eval(), "resnet18_cbam", LABELS, Preprocess())


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """A fast stand-in for the commands: Deep-Emotion (no CBAM)."""
    return _standin(tmp_path_factory.mktemp("model"), "deep_emotion")


def test_stn_warp_at_identity_returns_the_input() -> None:
    torch.manual_seed(0)
    model = create_model("deep_emotion").eval()
    x = torch.randn(3, 1, 48, 48)
    warp = stn_warp(model, x)
    assert torch.allclose(warp.original, x)
    assert torch.allclose(warp.warped, x, atol=1e-5)
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert torch.allclose(warp.theta, identity.expand(3, 2, 3))
    with pytest.raises(ModelError, match="no spatial transformer"):
        stn_warp(create_model("small_cnn").eval(), x)


def test_cbam_maps_have_the_feature_shape_and_lie_in_0_1(resnet: Pretrained) -> None:
    model = resnet.model
    x = resnet.preprocess(torch.from_numpy(_bright_faces()))
    shapes: dict[str, tuple[int, ...]] = {}
    modules = dict(model.named_modules())
    hooks = [
        modules[f"layer{i}.{j}.attention"].register_forward_hook(
            lambda _m, _a, out, name=f"layer{i}.{j}.attention": shapes.update({name: out.shape})
        )
        for i in range(1, 5)
        for j in range(2)
    ]
    raw = attention_maps(model, x, upsample=False)
    for hook in hooks:
        hook.remove()
    assert set(raw.spatial) == set(shapes) == set(raw.channel)
    for name, value in raw.spatial.items():
        b, c, h, w = shapes[name]
        assert value.shape == (b, h, w)
        assert raw.channel[name].shape == (b, c)
        assert value.min() > 0 and value.max() < 1
        assert raw.channel[name].min() > 0 and raw.channel[name].max() < 1
    on_face = attention_maps(model, x).spatial["layer4.1.attention"]
    assert on_face.shape == (2, 48, 48) and on_face.min() > 0 and on_face.max() < 1
    with pytest.raises(ModelError, match="no spatial or channel attention"):
        attention_maps(create_model("small_cnn").eval(), x)
    explained = explain_crops(resnet, _bright_faces(), "cbam")
    assert len(explained) == 2 and explained[1].maps["channel.layer4.1.attention"].shape == (512,)
    assert explained[0].maps["spatial.layer1.0.attention"].shape == (48, 48)


def test_window_masks_cover_every_pixel() -> None:
    masks = window_masks(48, 48, 8, 2)
    assert masks.shape == (21 * 21, 48, 48)
    assert (masks.flatten(1).sum(1) == 64).all()
    edge = window_masks(50, 50, 8, 4)  # 42 is no multiple of 4: a last window flush with 50
    assert edge.shape[0] == 12 * 12 and edge.any(0).all() and edge[-1, -1, -1]


def test_occlusion_peaks_on_the_region_the_model_uses() -> None:
    pre = _patch_pretrained()
    x = pre.preprocess(torch.from_numpy(_bright_faces()))
    found = occlusion(pre.model, x, fill=-1.0, window=8, stride=2, bf16=False)
    assert found.predicted.tolist() == [0, 0] and found.target.tolist() == [0, 0]
    assert found.drop.shape == found.flip.shape == (2, 48, 48)
    for drop, flip in zip(found.drop, found.flip, strict=True):
        peak = np.unravel_index(int(drop.argmax()), drop.shape)
        assert PATCH[0].start <= peak[0] < PATCH[0].stop
        assert PATCH[1].start <= peak[1] < PATCH[1].stop
        assert drop[PATCH].mean() > 0.2
        near = torch.zeros(48, 48, dtype=torch.bool)  # pixels a window touching the patch covers
        near[32 - 8 : 40 + 8, 16 - 8 : 32 + 8] = True
        assert drop[~near].abs().max() < 1e-6 and flip[~near].max() == 0
        assert flip[PATCH].min() > 0  # covering the patch flips the prediction to class 1
    mean_fill = occlusion(pre.model, x, 1, fill=0.0, window=8, stride=4)
    assert mean_fill.target.tolist() == [1, 1] and (mean_fill.drop[:, PATCH[0], PATCH[1]] < 0).all()
    bf16 = occlusion(pre.model, x, fill=-1.0, window=8, stride=2, bf16=True)
    assert (bf16.drop - found.drop).abs().max() < 0.05, "bf16 autocast keeps the maps"
    assert bf16.flip_mask[:, PATCH[0], PATCH[1]].all()


def test_grad_cam_is_non_negative_and_finds_the_region(resnet: Pretrained) -> None:
    pre = _patch_pretrained()
    x = pre.preprocess(torch.from_numpy(_bright_faces()))
    cam = grad_cam(pre.model, x)
    assert cam.layer == "features" and cam.target.tolist() == [0, 0]
    assert cam.maps.shape == (2, 48, 48) and cam.maps.min() >= 0
    assert torch.allclose(cam.maps.amax((1, 2)), torch.ones(2))
    outside = torch.ones(48, 48, dtype=torch.bool)
    outside[PATCH] = False
    assert cam.maps[:, outside].max() == 0 and cam.maps[:, PATCH[0], PATCH[1]].min() > 0.25
    with torch.inference_mode():  # works inside inference mode too
        deep = grad_cam(resnet.model, x, target=3)
    assert deep.layer == "layer4" and deep.maps.shape == (2, 48, 48) and deep.maps.min() >= 0


def test_explanations_render_readable_png_and_npy(tmp_path: Path) -> None:
    crops = _bright_faces(1)
    (occluded,) = explain_crops(_patch_pretrained(), crops, "occlusion", window=8, stride=4)
    assert occluded.label == occluded.target == "angry" and occluded.face.shape == (48, 48)
    written = render_explanation(occluded, tmp_path, "face")
    assert sorted(p.name for p in written) == [
        "face.occlusion.drop.npy",
        "face.occlusion.flip.npy",
        "face.occlusion.png",
    ]
    assert np.array_equal(np.load(tmp_path / "face.occlusion.drop.npy"), occluded.maps["drop"])
    with Image.open(tmp_path / "face.occlusion.png") as png:
        assert png.format == "PNG" and png.width > 300
    maps = {"spatial.b": np.full((48, 48), 0.5), "channel.b": np.linspace(0, 1, 64)}
    cbam = replace(occluded, method="cbam", maps=maps)
    names = {p.name for p in render_explanation(cbam, tmp_path, "c")}
    assert names == {
        "c.cbam.png",
        "c.cbam_channel.png",
        "c.cbam.spatial.b.npy",
        "c.cbam.channel.b.npy",
    }
    assert np.load(tmp_path / "c.cbam.channel.b.npy").shape == (64,)
    with pytest.raises(ConfigError, match="unknown class"):
        explain_crops(_patch_pretrained(), crops, "gradcam", target="happy")


def test_region_maps_average_per_emotion(tmp_path: Path) -> None:
    images = _bright_faces(6)
    data = FaceDataset(images, np.array([0, 0, 0, 0, 1, 1]), LABELS[:2], name="toy")
    maps = region_maps(_patch_pretrained(), data, per_class=3, window=8, stride=8)
    assert maps.label_names == ("angry", "disgust") and maps.counts == (3, 2)
    assert maps.drop.shape == maps.faces.shape == (2, 48, 48)
    assert maps.drop[0][PATCH].mean() > 0.3 and maps.drop[1][PATCH].mean() < 0  # true class
    assert np.allclose(maps.faces[1], images[4:].mean(0) / 255, atol=1e-5)
    with Image.open(save_region_grid(maps, tmp_path / "grid.png")) as png:
        assert png.format == "PNG"
    saved = np.load(save_region_arrays(maps, tmp_path / "grid.npz"))
    assert saved["label_names"].tolist() == ["angry", "disgust"]


def _happy_mouth_and_forehead(model: str, n: int = 120) -> tuple[float, float]:
    """Mean occlusion drop of P(happy) on the mouth and on the forehead of FER2013 test faces.

    16 x 16 windows, stride 16 (a 3 x 3 grid) keep it to ten model calls per face.
    """
    files = sorted(FER_HAPPY.glob("*.jpg"))[:n]
    images = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])
    data = FaceDataset(images, np.full(len(images), 3), LABELS, name="happy")
    maps = region_maps(model, data, window=16, stride=16)
    assert maps.label_names == ("happy",) and maps.counts == (len(files),)
    return float(maps.drop[0][MOUTH].mean()), float(maps.drop[0][FOREHEAD].mean())


@pytest.mark.slow
def test_happy_map_weighs_the_mouth_above_the_forehead() -> None:
    if not FER_HAPPY.is_dir():
        pytest.skip(f"FER2013 test split not found at {FER_HAPPY}")
    mouth, forehead = _happy_mouth_and_forehead("default")
    assert mouth > forehead + 0.02, f"mouth {mouth:.3f}, forehead {forehead:.3f}"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(explain)
    app.command("region-maps")(region_maps_command)
    return app


def test_explain_command_on_a_face_crop(tmp_path: Path, small: Path) -> None:
    crop = tmp_path / "smile.png"
    Image.fromarray(_bright_faces(1)[0]).save(crop)
    out = tmp_path / "out"
    args = ["explain", str(crop), "--model", str(small), "--out", str(out)]
    result = CliRunner().invoke(_app(), [*args, "--window", "16", "--stride", "16"])
    assert result.exit_code == 0, result.output
    (record,) = json.loads((out / "explain.json").read_text())
    assert record["box"] == [0, 0, 48, 48] and record["target"] == record["label"]
    assert set(record["files"]) == {"smile.occlusion.png", "smile.occlusion.drop.npy",
                                    "smile.occlusion.flip.npy"}  # fmt: skip
    assert np.load(out / "smile.occlusion.flip.npy").shape == (48, 48)
    bad = CliRunner().invoke(_app(), [*args, "--method", "cbam"])
    assert bad.exit_code != 0 and isinstance(bad.exception, ModelError)


def test_region_maps_command_on_a_folder(tmp_path: Path, small: Path) -> None:
    for label, faces in (("happy", _bright_faces(3)), ("sad", _bright_faces(2, seed=1))):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i, face in enumerate(faces):
            Image.fromarray(face).save(tmp_path / "data" / label / f"{i}.png")
    out = tmp_path / "grid.png"
    args = ["region-maps", str(tmp_path / "data"), "--model", str(small), "--out", str(out)]
    result = CliRunner().invoke(
        _app(), [*args, "--per-class", "2", "--window", "24", "--stride", "24"]
    )
    assert result.exit_code == 0, result.output
    assert np.load(out.with_suffix(".npz"))["counts"].tolist() == [2, 2]
    with Image.open(out) as png:
        assert png.format == "PNG"


def test_explain_faces_gives_maps_per_face(small: Path) -> None:
    recognizer = Recognizer(small, faces="crop")
    (found,) = explain_faces(recognizer, _bright_faces(1)[0], "stn", model=small)
    assert found.box == (0, 0, 48, 48) and found.maps["warped"].shape == (48, 48)
    other = Pretrained(create_model("small_cnn").eval(), "small_cnn", LABELS[:5], Preprocess())
    with pytest.raises(ConfigError, match="does not match"):
        explain_faces(recognizer, _bright_faces(1)[0], "stn", model=other)


def test_explanations_follow_the_recognizers_class_balance(tmp_path: Path) -> None:
    skewed = _patch_pretrained()
    skewed.info["class_prior"] = [0.99, 0.01]
    faces = _bright_faces(1)
    (trained,) = explain_crops(skewed, faces, "gradcam")
    (balanced,) = explain_crops(skewed, faces, "gradcam", balance=1.0)
    network = torch.softmax(skewed.model(preprocess_crops(skewed, faces)), 1).detach().numpy()
    expected = rebalance(network, skewed.info["class_prior"], 1.0)[0]
    assert trained.label == "angry" and trained.probability == pytest.approx(network[0, 0])
    assert balanced.label == "disgust" and balanced.probability == pytest.approx(expected[1])
    assert balanced.target == "disgust"  # the class explained is the balanced prediction
    torch.manual_seed(0)
    path = save_pretrained(
        tmp_path / "m.safetensors", create_model("deep_emotion"), "deep_emotion", LABELS,
        Preprocess(), info={"class_prior": [0.4, 0.01, 0.1, 0.3, 0.1, 0.05, 0.04]},
    )  # fmt: skip
    face = _bright_faces(1)[0]
    for balance in (0.0, 1.0):
        recognizer = Recognizer(path, faces="crop", tta="none", balance=balance)
        (explained,) = explain_faces(recognizer, face, "occlusion", model=path, stride=24)
        (result,) = recognizer.predict(face)
        assert explained.label == result.label
        assert explained.probability == pytest.approx(result.probabilities[result.label], abs=1e-3)
