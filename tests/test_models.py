"""Model zoo: registry, shapes, the shared interface, attention maps, training, weight loading."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from attnfer.errors import ConfigError, ModelError
from attnfer.models import (
    create_model,
    list_models,
    load_weights,
    model_info,
    read_weights,
    save_weights,
)
from attnfer.models.attention import AttentionModule
from attnfer.models.weights import TORCHVISION_RESNET, VGGFACE
from attnfer.preprocess import Preprocess
from attnfer.pretrained import save_pretrained
from attnfer.train.memory_format import unsafe_convs

FER_TRAIN = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "fer2013" / "train"
REQUIRED = {
    "small_cnn",
    "vgg16",
    "vgg16_gap",
    "vgg16_cbam",
    "resnet10",
    "resnet18",
    "resnet18_se",
    "resnet18_cbam",
    "resnet34",
    "resnet50",
    "deep_emotion",
    "sepconv_se",
    "fan_resnet18",
}
IMAGE_MODELS = [n for n in list_models() if not model_info(n).clip]
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _attention_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    return {
        f"{name}.{pname}": p
        for name, module in model.named_modules()
        if isinstance(module, AttentionModule)
        for pname, p in module.named_parameters()
    }


def test_registry_lists_every_model_of_the_papers() -> None:
    assert set(list_models()) >= REQUIRED
    assert list_models("resnet18*") == ["resnet18", "resnet18_cbam", "resnet18_se"]
    assert model_info("vgg16_cbam").input_size == (3, 224, 224)
    assert model_info("resnet18_cbam").input_size == (1, 48, 48)
    assert model_info("fan_resnet18").clip
    assert all(model_info(n).paper for n in list_models())


def test_unknown_model_name_is_a_model_error_with_suggestions() -> None:
    with pytest.raises(ModelError, match="did you mean resnet18_cbam"):
        create_model("resnet18_cbma")


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_default_input_size_and_interface(name: str) -> None:
    """Every model at its registered default size (224x224 RGB for VGG, ResNet50 and FAN), on
    the meta device: shapes only, no compute."""
    info = model_info(name)
    with torch.device("meta"):
        model = create_model(name, num_classes=5).eval()
        x = torch.empty(2, *info.input_size)
    assert isinstance(model.classifier, nn.Linear)
    assert model.classifier.in_features == model.num_features
    assert model(x).shape == (2, 5)
    assert model.forward_features(x).shape == (2, model.num_features)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_gray_48x48_forward_and_features(name: str) -> None:
    model = create_model(name, in_chans=1, input_size=(48, 48))
    x = torch.randn(2, 1, 48, 48)
    torch.manual_seed(1)
    logits = model(x)  # train mode: dropout active
    torch.manual_seed(1)
    torch.testing.assert_close(model.classifier(model.forward_features(x)), logits)
    model.eval()
    logits = model(x)
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(model.classifier(model.forward_features(x)), logits)


@pytest.mark.parametrize("name", list_models())
def test_every_model_trains_channels_last_even_without_avx512(name: str) -> None:
    # No strided 1x1 conv with < 8 input channels (oneDNN issue 6035), gray or RGB input.
    for in_chans in (1, 3):
        assert unsafe_convs(create_model(name, in_chans=in_chans)) == []


@pytest.mark.parametrize("name", ["resnet18_cbam", "vgg16_cbam", "deep_emotion"])
def test_rgb_224x224_forward(name: str) -> None:
    model = create_model(name, in_chans=3, input_size=(224, 224)).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 224, 224))
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ["resnet18_cbam", "vgg16_cbam", "deep_emotion", "sepconv_se"])
def test_channels_last_and_bf16_autocast(name: str) -> None:
    model = create_model(name, in_chans=1, input_size=(48, 48)).eval()
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        reference = model(x)
    model = model.to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x.contiguous(memory_format=torch.channels_last))
    assert logits.dtype == torch.bfloat16
    error = (logits.float() - reference).abs().max() / reference.abs().max()
    assert error < 0.15
    logits.float().sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_vgg16_cbam_adds_paper_000_parameter_count() -> None:
    with torch.device("meta"):
        counts = {n: sum(p.numel() for p in create_model(n).parameters()) for n in REQUIRED}
    overhead = counts["vgg16_cbam"] - counts["vgg16_gap"]
    assert abs(overhead - 66_000) / 66_000 < 0.01
    assert counts["vgg16"] - counts["vgg16_gap"] == 512 * 7 * 7 * 512 - 512 * 512


def test_vgg_conv_base_allows_staged_unfreezing() -> None:
    model = create_model("vgg16_cbam", in_chans=1, input_size=(32, 32))
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert isinstance(model.features, nn.Sequential) and len(convs) == 13
    assert model.features[28] is convs[-1]  # torchvision's layout
    model.features.requires_grad_(False)
    for conv in convs[-3:]:
        conv.requires_grad_(True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {n for n in trainable if n.startswith("features.")} == {
        f"features.{i}.{w}" for i in (24, 26, 28) for w in ("weight", "bias")
    }


def test_resnet_stems() -> None:
    small = create_model("resnet18")
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (2, 2)
    assert isinstance(small.maxpool, nn.Identity)
    big = create_model("resnet18", in_chans=3, input_size=(224, 224))
    assert big.conv1.kernel_size == (7, 7) and isinstance(big.maxpool, nn.MaxPool2d)
    full = create_model("resnet18_cbam", stem="cifar")
    assert full.conv1.stride == (1, 1)
    assert full.forward_features(torch.randn(2, 1, 16, 16)).shape == (2, 512)
    with pytest.raises(ConfigError, match="stem"):
        create_model("resnet18", stem="tiny")


def test_resnet10_has_one_block_a_stage_and_takes_attention() -> None:
    """ResNet10: one basic block in each of the four stages, CBAM only from ``attention_from``."""
    net = create_model("resnet10", stem="cifar_s2", width=48, attention="cbam", attention_from=3)
    assert [len(getattr(net, f"layer{i}")) for i in (1, 2, 3, 4)] == [1, 1, 1, 1]
    assert isinstance(net.layer1[0].attention, nn.Identity)
    assert not isinstance(net.layer3[0].attention, nn.Identity)
    deep = create_model("resnet18", stem="cifar_s2", width=48)
    params = [sum(p.numel() for p in m.parameters()) for m in (net, deep)]
    assert params[0] < 0.5 * params[1]
    assert net(torch.randn(2, 1, 48, 48)).shape == (2, 7)


def test_resnet_width_scales_every_stage() -> None:
    """``width=26``: channels 26-52-104-208 (the shipped fast model), under 2 M parameters."""
    slim = create_model("resnet18_cbam", width=26)
    assert slim.conv1.out_channels == 26 and slim.layer1[0].conv2.out_channels == 26
    assert slim.layer4[1].conv2.out_channels == 208 and slim.num_features == 208
    assert slim.classifier.in_features == 208
    assert 1.8e6 < sum(p.numel() for p in slim.parameters()) < 2e6
    assert slim(torch.randn(2, 1, 48, 48)).shape == (2, 7)
    assert create_model("resnet50", width=16, input_size=64).num_features == 16 * 8 * 4
    for bad in (0, -8, 2.5, True):
        with pytest.raises(ConfigError, match="width"):
            create_model("resnet18", width=bad)


def test_resnet18_uses_torchvision_names_for_the_imagenet_stem() -> None:
    with torch.device("meta"):
        state = create_model("resnet18", in_chans=3, stem="imagenet").state_dict()
    assert state["conv1.weight"].shape == (64, 3, 7, 7)
    assert state["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert state["layer4.1.bn2.running_var"].shape == (512,)
    assert state["classifier.weight"].shape == (7, 512)
    assert len([k for k in state if not k.startswith("classifier.")]) == 120


def test_resnet18_cbam_attention_maps() -> None:
    model = create_model("resnet18_cbam").eval()
    maps = model.attention_maps(torch.randn(2, 1, 48, 48))
    assert len(maps) == 16  # channel and spatial maps of 8 residual blocks
    assert maps["layer1.0.attention.spatial"].shape == (2, 1, 24, 24)
    assert maps["layer4.1.attention.spatial"].shape == (2, 1, 3, 3)
    assert maps["layer4.1.attention.channel"].shape == (2, 512)
    assert all(bool(((m > 0) & (m < 1)).all()) for m in maps.values())


@pytest.mark.parametrize(
    ("name", "attention", "attention_kwargs"),
    [
        ("resnet18_cbam", "cbam", {"reduction": 4, "spatial_kernel": 3}),
        ("resnet18_se", "se", {"reduction": 4}),
    ],
)
def test_resnet18_takes_attention_by_name(
    name: str, attention: str, attention_kwargs: dict[str, int]
) -> None:
    torch.manual_seed(0)
    named = create_model(name, width=8, attention_from=2, **attention_kwargs).eval()
    torch.manual_seed(0)
    built = create_model(
        "resnet18",
        width=8,
        attention=attention,
        attention_kwargs=attention_kwargs,
        attention_from=2,
    ).eval()
    assert named.state_dict().keys() == built.state_dict().keys()
    x = torch.randn(2, 1, 48, 48)
    torch.testing.assert_close(named(x), built(x))
    with pytest.raises(ModelError, match="did you mean cbam"):
        create_model("resnet18", attention="cbma")
    with pytest.raises(ConfigError, match="without attention"):
        create_model("resnet18", attention_kwargs=attention_kwargs)


@pytest.mark.parametrize("name", ["resnet18_cbam", "resnet18_se"])
def test_attention_from_puts_attention_in_the_later_stages_only(name: str) -> None:
    every = create_model(name, width=16)
    late = create_model(name, width=16, attention_from=3)
    stages = {n.split(".")[0] for n, m in late.named_modules() if n.endswith(".attention")
              and not isinstance(m, torch.nn.Identity)}  # fmt: skip
    assert stages == {"layer3", "layer4"}
    assert sum(p.numel() for p in late.parameters()) < sum(p.numel() for p in every.parameters())
    assert late(torch.randn(2, 1, 48, 48)).shape == (2, 7)
    with pytest.raises(ConfigError, match="attention_from must be 1 to 4"):
        create_model(name, attention_from=0)


def test_other_attention_maps() -> None:
    x = torch.randn(2, 1, 64, 64)
    vgg = create_model("vgg16_cbam", in_chans=1, input_size=(64, 64)).eval()
    maps = vgg.attention_maps(x)
    assert maps["attention.spatial"].shape == (2, 1, 2, 2)
    assert maps["attention.channel"].shape == (2, 512)
    se = create_model("resnet18_se").eval().attention_maps(x)
    assert len(se) == 8 and se["layer3.1.attention"].shape == (2, 256)
    sep = create_model("sepconv_se").eval().attention_maps(x)
    assert [m.shape[1] for m in sep.values()] == [64, 128, 256, 512]
    de = create_model("deep_emotion", input_size=(64, 64)).eval().attention_maps(x)
    assert de["stn.theta"].shape == (2, 2, 3)
    torch.testing.assert_close(de["stn.warped"], x, atol=1e-4, rtol=0)


@pytest.mark.parametrize("mode", ["self", "relation"])
def test_fan_takes_clips_and_weights_frames(mode: str) -> None:
    model = create_model("fan_resnet18", in_chans=1, input_size=(32, 32), attention=mode).eval()
    x = torch.randn(2, 3, 1, 32, 32)
    assert model(x).shape == (2, 7)
    assert model.num_features == (512 if mode == "self" else 1024)
    frames = model.frame_features(x)
    torch.testing.assert_close(frames[:, 1], model.backbone.forward_features(x[:, 1]))
    maps = model.attention_maps(x)
    assert maps["frame_attention.weights"].shape == (2, 3)
    torch.testing.assert_close(maps["frame_attention.weights"].sum(1), torch.ones(2))
    assert ("frame_attention.beta" in maps) == (mode == "relation")
    assert model(torch.randn(1, 5, 1, 32, 32)).shape == (1, 7)  # any clip length


@pytest.mark.parametrize(
    ("name", "size", "clip"),
    [
        ("resnet18_cbam", (32, 32), 0),
        ("vgg16_cbam", (32, 32), 0),
        ("sepconv_se", (32, 32), 0),
        ("deep_emotion", (48, 48), 0),
        ("fan_resnet18", (32, 32), 2),
    ],
)
def test_gradients_reach_every_attention_parameter_in_models(name, size, clip) -> None:
    model = create_model(name, in_chans=1, input_size=size)
    x = torch.randn(4, *((clip,) if clip else ()), 1, *size)
    F.cross_entropy(model(x), torch.arange(4)).backward()
    params = _attention_parameters(model)
    assert params
    if name == "deep_emotion":  # the identity-initialised regressor blocks the rest for a step
        params = {k: v for k, v in params.items() if ".regressor.2." in k}
    for key, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, key


def _fer_batch(per_class: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    if not FER_TRAIN.is_dir():
        pytest.skip(f"{FER_TRAIN} is absent")
    images, labels = [], []
    for label, name in enumerate(CLASSES):
        for path in sorted((FER_TRAIN / name).glob("*.jpg"))[:per_class]:
            images.append(np.asarray(Image.open(path).convert("L"), dtype=np.float32))
            labels.append(label)
    x = (torch.from_numpy(np.stack(images)).unsqueeze(1) / 255.0 - 0.5) / 0.5
    return x, torch.tensor(labels)


@pytest.mark.parametrize(
    ("name", "lr", "steps"), [("resnet18_cbam", 1e-3, 4), ("deep_emotion", 5e-3, 20)]
)
@pytest.mark.slow
def test_a_few_training_steps_lower_the_loss_on_real_faces(
    name: str, lr: float, steps: int
) -> None:
    x, y = _fer_batch()
    assert x.shape == (28, 1, 48, 48)
    model = create_model(name)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


# --- weights ---------------------------------------------------------------------------------


@pytest.fixture
def trained(tmp_path: Path) -> tuple[nn.Module, Path]:
    model = create_model("resnet18_cbam", input_size=(32, 32)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))  # differ from any fresh model
    return model, save_weights(model, tmp_path / "fer.safetensors", class_names=CLASSES)


def test_continue_training_restores_every_tensor(trained) -> None:
    model, path = trained
    fresh = create_model("resnet18_cbam").eval()
    result = load_weights(fresh, path, mode="continue_training", class_names=CLASSES)
    assert result.kept == [] and result.ignored == []
    assert set(result.loaded) == set(model.state_dict())
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(fresh(x), model(x))
    renamed = path.rename(path.with_suffix(".bin"))  # recognised by content, not by name
    load_weights(create_model("resnet18_cbam"), renamed, mode="continue_training")


def test_transfer_learning_loads_all_but_the_classifier(trained) -> None:
    model, path = trained
    fresh = create_model("resnet18_cbam", num_classes=5)
    result = load_weights(fresh, path)
    assert result.kept == ["classifier.bias", "classifier.weight"]
    assert result.ignored == ["classifier.bias", "classifier.weight"]
    torch.testing.assert_close(fresh.layer3[1].attention.spatial.conv.weight,
                               model.layer3[1].attention.spatial.conv.weight)  # fmt: skip
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(fresh.eval().forward_features(x), model.forward_features(x))


def test_continue_training_checks_class_count_and_names(trained) -> None:
    _, path = trained
    with pytest.raises(ModelError, match=r"fer\.safetensors: trained for 7 classes.* has 5"):
        load_weights(create_model("resnet18_cbam", num_classes=5), path, "continue_training")
    swapped = ("happy", *CLASSES[1:3], "angry", *CLASSES[4:])
    with pytest.raises(ModelError, match="class names"):
        load_weights(create_model("resnet18_cbam"), path, "continue_training", class_names=swapped)
    with pytest.raises(ModelError, match=r"missing layer1\.0\.attention"):
        load_weights(create_model("resnet18_se"), path, "continue_training")
    model = create_model("resnet18_cbam")  # attnfer files name their classes as label_names
    shipped = save_pretrained(path.with_name("run.safetensors"), model, "resnet18_cbam", CLASSES,
                              Preprocess(size=48))  # fmt: skip
    with pytest.raises(ModelError, match=r"run\.safetensors: class names"):
        load_weights(
            create_model("resnet18_cbam"), shipped, "continue_training", class_names=swapped
        )
    broken = path.with_name("broken.safetensors")
    save_file(model.state_dict(), str(broken), metadata={"label_names": "[angry"})
    with pytest.raises(ModelError, match=r"broken\.safetensors: the class names .* not a JSON"):
        load_weights(
            create_model("resnet18_cbam"), broken, "continue_training", class_names=CLASSES
        )


def test_weight_file_errors_name_the_file(tmp_path: Path) -> None:
    model = create_model("small_cnn")
    with pytest.raises(ModelError, match=r"nope\.safetensors: no such weights file"):
        load_weights(model, tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelError, match=r"bad\.safetensors: not a readable safetensors file"):
        load_weights(model, bad)
    bad_pt = tmp_path / "bad.pt"
    bad_pt.write_bytes(b"not a pickle")
    with pytest.raises(ModelError, match=r"bad\.pt: not a readable PyTorch weights file"):
        load_weights(model, bad_pt)
    other = save_weights(create_model("sepconv_se"), tmp_path / "other.safetensors")
    with pytest.raises(ModelError, match="no tensor matches the model"):
        load_weights(model, other)
    cifar = save_weights(create_model("resnet18"), tmp_path / "cifar.safetensors")
    with pytest.raises(ModelError, match=r"cifar\.safetensors: shapes do not fit: conv1\.weight"):
        load_weights(create_model("resnet18", stem="imagenet"), cifar)
    with pytest.raises(ConfigError, match="continue_training"):
        load_weights(model, other, mode="finetune")


def test_torchvision_layout_file_with_key_map(tmp_path: Path) -> None:
    source = create_model("resnet18", in_chans=3, stem="imagenet").eval()
    state = {k.replace("classifier.", "fc."): v for k, v in source.state_dict().items()}
    path = tmp_path / "resnet18-torchvision.pth"
    torch.save(state, path)
    target = create_model("resnet18", in_chans=3, stem="imagenet").eval()
    with pytest.raises(ModelError, match=r"has no classifier\.weight"):
        load_weights(target, path, "continue_training")
    load_weights(target, path, "continue_training", key_map=TORCHVISION_RESNET)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(target(x), source(x))

    gray = create_model("resnet18", in_chans=1, stem="imagenet")
    result = load_weights(gray, path, key_map=TORCHVISION_RESNET)
    assert "conv1.weight" in result.loaded
    torch.testing.assert_close(gray.conv1.weight, source.conv1.weight.sum(1, keepdim=True))

    cifar = create_model("resnet18")
    result = load_weights(cifar, path, key_map=lambda k: None if k.startswith("conv1.") else k)
    assert "conv1.weight" in result.kept and "layer4.1.conv2.weight" in result.loaded


def test_lightning_checkpoint_and_vggface_key_maps(tmp_path: Path) -> None:
    source = create_model("vgg16_gap", in_chans=1, input_size=(32, 32))
    path = tmp_path / "last.ckpt"
    inner = {f"model.{k}": v for k, v in source.state_dict().items()}
    torch.save({"state_dict": inner, "class_names": list(CLASSES), "epoch": 3}, path)
    _, metadata = read_weights(path)
    assert "angry" in metadata["class_names"]
    target = create_model("vgg16_gap", in_chans=1, input_size=(32, 32))
    load_weights(target, path, "continue_training", {"model.": ""}, class_names=CLASSES)
    torch.testing.assert_close(target.head[1].weight, source.head[1].weight)

    names = [k.removesuffix(".") for k in VGGFACE if k.startswith("conv")]
    convs = [m for m in source.features if isinstance(m, nn.Conv2d)]
    vggface = {
        f"{n}.{w}": getattr(c, w)
        for n, c in zip(names, convs, strict=True)
        for w in ("weight", "bias")
    }
    vggface["fc8.weight"] = torch.zeros(2622, 4096)
    torch.save(vggface, tmp_path / "vgg_face_dag.pth")
    cbam = create_model("vgg16_cbam", in_chans=1, input_size=(32, 32))
    result = load_weights(cbam, tmp_path / "vgg_face_dag.pth", key_map=VGGFACE)
    assert len(result.loaded) == 26 and result.ignored == ["fc8.weight"]
    torch.testing.assert_close(cbam.features[28].weight, source.features[28].weight)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_saved_weights_honour_the_umask(tmp_path, umask):
    """Models are written for sharing: readable as the umask allows (safetensors' own writer
    makes every file private, 0600)."""
    model = create_model("deep_emotion")
    previous = os.umask(umask)
    try:
        weights = save_weights(model, tmp_path / "weights.safetensors")
        pretrained = save_pretrained(
            tmp_path / "model.safetensors", model, "deep_emotion", CLASSES, Preprocess()
        )
    finally:
        os.umask(previous)
    for path in (weights, pretrained):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == [pretrained.name, weights.name]


def test_describe_model_reads_a_model_file_without_its_weights(tmp_path: Path) -> None:
    """``describe_model`` (behind ``attnfer models``) reports what the file records; a file with
    broken metadata is a ModelError naming it, as for loading."""
    from attnfer.pretrained import describe_model, load_pretrained

    card = describe_model("fast")
    pre = load_pretrained("fast")
    assert card["arch"] == pre.arch and card["labels"] == list(pre.label_names)
    assert card["input"] == (pre.preprocess.channels, pre.preprocess.size, pre.preprocess.size)
    assert card["params"] == sum(p.numel() for p in pre.model.parameters())
    assert card["mflops"] > 0 and card["megabytes"] > 0.5
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelError, match=r"bad\.safetensors: not a readable safetensors file"):
        describe_model(bad)
