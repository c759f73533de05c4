"""CONTRIBUTING.md's five recipes of change, each followed once with toy parts defined here.

A toy model, attention module, data set reader, face detector and command are added the way the
recipes say (a factory registered with ``register_model``, an ``AttentionModule`` registered with
``register_attention`` and named to ``resnet18``, a reader in ``READERS``, a detector in
``DETECTORS``, a command in ``COMMANDS``) and then used through the functions users call. Every
registration goes into a copy of its table that the test's ``monkeypatch`` puts back, so no other
test sees the toys.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, ClassVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import typer
from PIL import Image
from torch import Tensor, nn
from typer.testing import CliRunner

import attnfer.cli as cli
import attnfer.data.readers as readers
import attnfer.faces.backends as backends
import attnfer.models.attention.create as attention_create
import attnfer.models.registry as registry
from attnfer.cli.options import console
from attnfer.data.dataset import FaceDataset
from attnfer.data.decode import BadSamples, Decoder
from attnfer.data.labels import BASIC7, CANONICAL, canonical_name
from attnfer.data.readers import load_dataset
from attnfer.data.readers._common import Sample, build, split_name
from attnfer.errors import AttnferError, ConfigError
from attnfer.explain.attention import attention_maps
from attnfer.faces import Detector, Face, align_face, create_detector, eye_angle
from attnfer.faces.framing import LEGACY_FRAMING, Framing, Placement, measure_framing
from attnfer.models import create_model, list_models, model_info, register_model
from attnfer.models.attention import CHANNEL, AttentionModule, register_attention
from attnfer.preprocess import Preprocess
from attnfer.pretrained import load_pretrained, save_pretrained
from attnfer.recognize import Recognizer
from attnfer.train.evaluate import evaluate_model

# --- a model: models/<name>.py (or beside its kin) with a registered factory -----------------


class TinyNet(nn.Module):
    """A 3x3 convolution, global average pooling and the ``classifier``: the model interface
    (``forward``, ``forward_features``, ``num_features``, ``classifier``) at its smallest."""

    def __init__(self, num_classes: int, in_chans: int, width: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.num_features = width
        self.classifier = nn.Linear(width, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x))


def register_tiny_net() -> None:
    @register_model(input_size=(1, 16, 16), paper="CONTRIBUTING.md: a toy model")
    def tiny_net(
        num_classes: int = 7,
        in_chans: int = 1,
        input_size: tuple[int, int] = (16, 16),
        width: int = 8,
    ) -> TinyNet:
        """A toy network for ``input_size`` images (any size: it pools globally)."""
        return TinyNet(num_classes, in_chans, width)


@pytest.fixture
def tiny_net(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``tiny_net`` registered for the test only."""
    with monkeypatch.context() as patch:
        patch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
        register_tiny_net()
        yield "tiny_net"
    assert "tiny_net" not in list_models()


def test_recipe_add_a_model(tiny_net: str, tmp_path: Path) -> None:
    """Registered, the factory is built by name, trains, evaluates and round-trips through a
    model file (``load_pretrained`` rebuilds it from its name and arguments)."""
    torch.manual_seed(0)
    assert tiny_net in list_models("tiny*")
    assert model_info(tiny_net).input_size == (1, 16, 16)
    model = create_model(tiny_net, width=4)
    assert model.classifier.in_features == model.num_features == 4

    images = torch.randint(0, 256, (14, 16, 16), dtype=torch.uint8)
    labels = torch.arange(14) % 7
    x = Preprocess(size=16, channels=1)(images)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = F.cross_entropy(model(x), labels)
    before.backward()
    optimizer.step()
    with torch.no_grad():
        assert F.cross_entropy(model(x), labels) < before

    path = save_pretrained(
        tmp_path / "tiny.safetensors",
        model,
        tiny_net,
        BASIC7,
        Preprocess(size=16, channels=1),
        model_kwargs={"width": 4},
    )
    pre = load_pretrained(path)
    assert (pre.arch, pre.model_kwargs, pre.label_names) == (tiny_net, {"width": 4}, BASIC7)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(pre.model(x), model(x))
        predicted = model(x).argmax(1)

    data = FaceDataset(images.numpy(), labels.numpy(), BASIC7, name="toy")
    report = evaluate_model(pre.model, pre.preprocess, pre.label_names, data)
    assert report["samples"] == 14
    assert report["accuracy"] == pytest.approx(float((predicted == labels).float().mean()))


# --- an attention module: models/attention/<name>.py, registered with register_attention --


class ChannelGate(AttentionModule):
    """``out = x * sigmoid(w * avgpool(x) + b)`` per channel.

    ``forward(x, return_map=True)`` returns ``(out, weights)`` with ``weights`` ``[B, C]``.
    """

    map_kinds: ClassVar[dict[str, str]] = {"": CHANNEL}

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, return_map: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        weights = torch.sigmoid(self.weight * x.mean(dim=(2, 3)) + self.bias)
        out = x * weights[:, :, None, None]
        return (out, weights) if return_map else out


def test_recipe_add_an_attention_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module follows its formula; once registered (``@register_attention("gate")`` on the
    class in its file) ``create_model("resnet18", attention="gate")`` puts it in every residual
    block, it receives gradients, and its maps reach ``attention_maps`` and explain as the
    channel weights its ``map_kinds`` declares."""
    torch.manual_seed(0)
    gate = ChannelGate(4)
    with torch.no_grad():
        gate.weight.copy_(torch.tensor([1.0, -1.0, 2.0, 0.0]))
    x = torch.randn(2, 4, 5, 5)
    out, weights = gate(x, return_map=True)
    torch.testing.assert_close(weights, torch.sigmoid(gate.weight * x.mean(dim=(2, 3))))
    torch.testing.assert_close(out, x * weights[:, :, None, None])
    torch.testing.assert_close(gate(x), out)

    monkeypatch.setattr(attention_create, "_ATTENTION", dict(attention_create._ATTENTION))
    register_attention("gate")(ChannelGate)
    model = create_model("resnet18", input_size=32, width=8, attention="gate")
    assert sum(isinstance(m, ChannelGate) for m in model.modules()) == 8
    faces = torch.randn(3, 1, 32, 32)
    F.cross_entropy(model(faces), torch.tensor([0, 1, 2])).backward()
    for layer in (model.layer1, model.layer4):
        assert layer[0].attention.weight.grad.abs().sum() > 0

    model.eval()
    maps = model.attention_maps(faces)
    assert {k: tuple(v.shape) for k, v in maps.items()} == {
        f"layer{stage}.{block}.attention": (3, 8 * 2 ** (stage - 1))
        for stage in (1, 2, 3, 4)
        for block in (0, 1)
    }
    explained = attention_maps(model, faces)
    assert explained.spatial == {} and set(explained.channel) == set(maps)


# --- a data set reader: data/readers/<name>.py and its entry in READERS ----------------------


def read_toy(
    root: str | os.PathLike,
    *,
    labels: str = "labels.txt",
    decoder: Decoder | None = None,
) -> FaceDataset:
    """Read ``<root>/<labels>``, one ``<image file> <label> <split>`` line per image
    (default colour: gray); a line whose label is unknown is skipped as bad."""
    decoder = decoder or Decoder()
    root = Path(root)
    samples = []
    for line in (root / labels).read_text(encoding="utf-8").splitlines():
        name, label, split = line.split()
        canonical = canonical_name(label)
        if canonical is None:
            decoder.bad.add(root / name, f"unknown label {label!r}")
            continue
        samples.append(Sample(root / name, CANONICAL.index(canonical), split_name(split)))
    return build(samples, decoder, root, decoder.color or "gray")


def test_recipe_add_a_data_set_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Listed in ``READERS``, the reader is reached through ``load_dataset(format=...)`` with
    its options checked against its signature, and gives a FaceDataset with splits."""
    root = tmp_path / "toy"
    root.mkdir()
    rows = [("a.png", "happy", "train"), ("b.png", "Anger", "training"), ("c.png", "sad", "test")]
    rows.append(("d.png", "bored", "train"))
    for value, (name, _, _) in enumerate(rows):
        Image.fromarray(np.full((12, 12), 40 * value, np.uint8)).save(root / name)
    (root / "faces.txt").write_text("".join(" ".join(r) + "\n" for r in rows), encoding="utf-8")

    monkeypatch.setitem(readers.READERS, "toy", read_toy)
    monkeypatch.setattr(readers, "FORMATS", ("packed", *readers.READERS))
    bad = BadSamples()
    data = load_dataset(root, format="toy", labels="faces.txt", size=8, bad=bad)
    assert [data.label_names[i] for i in data.labels] == ["happy", "angry", "sad"]
    assert {k: v.tolist() for k, v in data.splits.items()} == {"train": [0, 1], "test": [2]}
    assert data.images.shape == (3, 8, 8)
    assert data.images[:, 0, 0].tolist() == [0, 40, 80]
    assert bad.entries == [(str(root / "d.png"), "unknown label 'bored'")]
    with pytest.raises(ConfigError, match=r"takes no option frames \(its options: labels\)"):
        load_dataset(root, format="toy", frames=1)


# --- a face detector: a Detector in faces/backends.py, its entry in DETECTORS, a framing ---


class BrightSquareDetector(Detector):
    """Finds the one bright (> 128) square of an image; its box is the square's central half,
    as a detector whose box is tighter than the training crops."""

    name = "bright_square"
    default_score = 0.9

    def _detect(self, image: np.ndarray) -> list[Face]:
        bright = image.max(axis=2) > 128
        ys, xs = np.nonzero(bright)
        if not len(xs):
            return []
        x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        score = float(bright[y1:y2, x1:x2].mean())
        if score < self.min_score:
            return []
        qx, qy = (x2 - x1) / 4, (y2 - y1) / 4
        return [Face((x1 + qx, y1 + qy, x2 - qx, y2 - qy), score)]


def photo_with_face(x: int, y: int, side: int) -> tuple[np.ndarray, Placement]:
    """A dark 120 x 160 RGB photo holding a bright face square with a left-to-right ramp."""
    photo = np.full((120, 160, 3), 20, np.uint8)
    photo[y : y + side, x : x + side] = np.linspace(140, 250, side).astype(np.uint8)[None, :, None]
    return photo, Placement(x, y, side)


def test_recipe_add_a_face_detector(
    tiny_net: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listed in ``DETECTORS``, the detector is created by name; its framing is measured as
    ``attnfer framing`` does and stored in the model file, and a Recognizer given the detector
    frames its faces that way (a model file without it falls back to ``LEGACY_FRAMING``)."""
    monkeypatch.setitem(backends.DETECTORS, BrightSquareDetector.name, BrightSquareDetector)
    detector = create_detector("bright_square")
    assert isinstance(detector, BrightSquareDetector) and detector.min_score == 0.9
    photo, _ = photo_with_face(60, 30, 48)
    assert [f.box for f in detector.detect(photo)] == [(72.0, 42.0, 96.0, 66.0)]
    assert detector.detect(np.zeros((40, 40), np.uint8)) == []

    photos = [photo_with_face(x, y, side) for x, y, side in [(60, 30, 48), (10, 20, 64)]]
    measured = measure_framing(detector, photos, eye_angle)
    assert (measured["scale"], measured["dx"], measured["dy"]) == (2.0, 0.0, 0.0)
    assert (measured["faces"], measured["found"]) == (2, 2)

    model = create_model(tiny_net, width=4).eval()
    preprocess = Preprocess(size=16, channels=1)
    framed = {"bright_square": measured}
    path = save_pretrained(
        tmp_path / "framed.safetensors",
        model,
        tiny_net,
        BASIC7,
        preprocess,
        {"width": 4},
        framing=framed,
    )
    recognizer = Recognizer(path, detector=detector, backend="torch", faces="detect", bf16=False)
    assert recognizer.framing == Framing(2.0, 0.0, 0.0)
    ((face, crop),) = recognizer.locate(photo)
    assert np.array_equal(crop, align_face(photo, face, 16, 1, Framing(2.0, 0.0, 0.0)))
    assert crop.min() > 128  # the whole face square, no background
    (result,) = recognizer.predict(photo)
    assert result.detected and result.box == (72, 42, 96, 66) and result.score == 1.0
    assert result.label in BASIC7

    plain = save_pretrained(
        tmp_path / "plain.safetensors", model, tiny_net, BASIC7, preprocess, {"width": 4}
    )
    legacy = Recognizer(plain, detector=detector, backend="torch", faces="detect", bf16=False)
    assert legacy.framing == LEGACY_FRAMING
    ((_, legacy_crop),) = legacy.locate(photo)
    assert not np.array_equal(legacy_crop, crop)


# --- a command: a function in a module of src/attnfer/cli/ and its entry in COMMANDS ---------


def count_faces(
    data: Annotated[Path, typer.Argument(help="Data set: folder, CSV or packed file.")],
    split: Annotated[str, typer.Option(help="Split to count ('all' for every face).")] = "all",
) -> None:
    """Count the faces of a data set split.

    Parses, calls one library function (``load_dataset``) and prints.
    """
    dataset = load_dataset(data)
    part = dataset if split == "all" else dataset.split(split)
    console.print(f"{part.name}: {len(part)} faces", highlight=False)


def test_recipe_add_a_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Listed in ``COMMANDS``, the function is an ``attnfer`` command: loaded when it runs, its
    docstring its help, its parameters its options; a library error is an exit code 2."""
    monkeypatch.setitem(cli.COMMANDS, "count-faces", (__name__, "count_faces"))
    images = np.zeros((5, 8, 8), np.uint8)
    data = FaceDataset(images, np.arange(5) % 7, BASIC7, name="toy", splits={"test": [3, 4]})
    packed = data.save(tmp_path / "toy.safetensors")

    def attnfer(*args: str):
        return CliRunner().invoke(cli.app, list(args), prog_name="attnfer")

    assert attnfer("count-faces", str(packed)).stdout == "toy: 5 faces\n"
    assert attnfer("count-faces", str(packed), "--split", "test").stdout == "toy/test: 2 faces\n"
    usage = attnfer("count-faces", "--help").stdout
    assert "Count the faces of a data set split." in usage and "--split" in usage
    missing = attnfer("count-faces", str(tmp_path / "none"))
    assert isinstance(missing.exception, AttnferError)  # cli.run: one line, exit code 2
