"""Attention modules: formulas against hand computations, maps, gradients, STN identity."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnfer.errors import ConfigError, ModelError
from attnfer.models import (
    CBAM,
    AttentionModule,
    ChannelAttention,
    FrameAttention,
    SpatialAttention,
    SpatialTransformer,
    SqueezeExcite,
    collect_attention_maps,
    create_attention,
    list_attention,
)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _mlp(seq: nn.Sequential, v: torch.Tensor) -> torch.Tensor:
    return seq[2](torch.relu(seq[0](v)))


def test_channel_attention_follows_formula() -> None:
    m = ChannelAttention(16, reduction=4)
    x = torch.randn(2, 16, 5, 6)
    out, weights = m(x, return_map=True)
    expected = torch.sigmoid(_mlp(m.mlp, x.mean(dim=(2, 3))) + _mlp(m.mlp, x.amax(dim=(2, 3))))
    assert m.mlp[0].out_features == 4
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(out, x * expected[:, :, None, None])
    torch.testing.assert_close(m(x), out)


def test_spatial_attention_follows_formula() -> None:
    m = SpatialAttention(kernel_size=3)
    x = torch.randn(2, 8, 5, 7)
    out, attn = m(x, return_map=True)
    pooled = torch.stack([x.mean(dim=1), x.amax(dim=1)], dim=1)
    expected = torch.sigmoid(F.conv2d(pooled, m.conv.weight, padding=1))
    assert attn.shape == (2, 1, 5, 7)
    torch.testing.assert_close(attn, expected)
    torch.testing.assert_close(out, x * expected)


def test_spatial_attention_rejects_even_kernel() -> None:
    with pytest.raises(ConfigError, match="odd"):
        SpatialAttention(kernel_size=4)


def test_cbam_applies_channel_then_spatial_and_returns_maps_in_0_1() -> None:
    m = CBAM(32, reduction=8, spatial_kernel=3)
    x = torch.randn(2, 32, 7, 5)
    out, maps = m(x, return_map=True)
    assert maps["channel"].shape == (2, 32)
    assert maps["spatial"].shape == (2, 1, 7, 5)
    for value in maps.values():
        assert bool(((value > 0) & (value < 1)).all())
    refined = x * maps["channel"][:, :, None, None]
    _, spatial = m.spatial(refined, return_map=True)
    torch.testing.assert_close(maps["spatial"], spatial)
    torch.testing.assert_close(out, refined * spatial)
    torch.testing.assert_close(m(x), out)


def test_cbam_parameters_on_512_channels_match_paper_000() -> None:
    n = sum(p.numel() for p in CBAM(512, reduction=8, spatial_kernel=3).parameters())
    assert n == 2 * 512 * 64 + 64 + 512 + 2 * 3 * 3  # shared MLP with biases + bias-free 3x3 conv
    assert abs(n - 66_000) / 66_000 < 0.01


def test_squeeze_excite_follows_formula() -> None:
    m = SqueezeExcite(16, reduction=4)
    x = torch.randn(2, 16, 4, 4)
    out, weights = m(x, return_map=True)
    expected = torch.sigmoid(_mlp(m.fc, x.mean(dim=(2, 3))))
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(out, x * expected[:, :, None, None])


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: ChannelAttention(8, reduction=2), (8, 8, 5, 5)),
        (lambda: SpatialAttention(7), (8, 8, 5, 5)),
        (lambda: CBAM(8, reduction=2, spatial_kernel=3), (8, 8, 5, 5)),
        (lambda: SqueezeExcite(8, reduction=2), (8, 8, 5, 5)),
        (lambda: FrameAttention(6, mode="self"), (8, 4, 6)),
        (lambda: FrameAttention(6, mode="relation"), (8, 4, 6)),
    ],
    ids=["channel", "spatial", "cbam", "se", "frame_self", "frame_relation"],
)
def test_gradients_reach_every_attention_parameter(make, shape) -> None:
    m = make()
    offsets = torch.randn(*shape[:2], *[1] * (len(shape) - 2))  # varied pooled statistics
    x = torch.randn(*shape) + offsets
    out = m(x)
    (out * torch.randn_like(out)).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_spatial_transformer_reproduces_its_input_at_init() -> None:
    for chans, size in [(1, (48, 48)), (3, (40, 56))]:
        stn = SpatialTransformer(chans, size)
        x = torch.rand(2, chans, *size)
        out, theta = stn(x, return_map=True)
        identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).expand(2, 2, 3)
        torch.testing.assert_close(theta, identity)
        torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_spatial_transformer_gradients_reach_the_localisation_net() -> None:
    stn = SpatialTransformer(1, (32, 32))
    x = torch.rand(4, 1, 32, 32)
    target = torch.rand(4, 1, 32, 32)
    opt = torch.optim.SGD(stn.parameters(), lr=0.5)

    F.mse_loss(stn(x), target).backward()
    last = stn.regressor[-1]
    assert last.weight.grad.abs().sum() > 0 and last.bias.grad.abs().sum() > 0
    # The zero-initialised regressor blocks the gradient to the layers before it, for one step.
    assert all(p.grad.abs().sum() == 0 for p in stn.localization.parameters())
    opt.step()
    opt.zero_grad()

    out = stn(x)
    assert not torch.allclose(out, x, atol=1e-4)
    F.mse_loss(out, target).backward()
    for name, p in stn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


@pytest.mark.parametrize("mode", ["self", "relation"])
def test_frame_attention_follows_paper_004_formulas(mode: str) -> None:
    m = FrameAttention(5, mode=mode).double()
    f = torch.randn(2, 4, 5, dtype=torch.float64)
    clip, maps = m(f, return_map=True)
    q0 = m.q0.weight[0].tolist()
    for b in range(2):
        frames = f[b].tolist()
        alpha = [_sigmoid(sum(fi * qi for fi, qi in zip(fr, q0, strict=True))) for fr in frames]
        fv = [
            sum(a * fr[d] for a, fr in zip(alpha, frames, strict=True)) / sum(alpha)
            for d in range(5)
        ]
        assert maps["alpha"][b].tolist() == pytest.approx(alpha)
        if mode == "self":
            expected, weights = fv, [a / sum(alpha) for a in alpha]
        else:
            q1 = m.q1.weight[0].tolist()
            pairs = [fr + fv for fr in frames]
            beta = [_sigmoid(sum(pi * qi for pi, qi in zip(p, q1, strict=True))) for p in pairs]
            ab = [a * bt for a, bt in zip(alpha, beta, strict=True)]
            expected = [
                sum(w * p[d] for w, p in zip(ab, pairs, strict=True)) / sum(ab) for d in range(10)
            ]
            weights = [w / sum(ab) for w in ab]
            assert maps["beta"][b].tolist() == pytest.approx(beta)
        assert clip[b].tolist() == pytest.approx(expected)
        assert maps["weights"][b].tolist() == pytest.approx(weights)
        assert sum(maps["weights"][b].tolist()) == pytest.approx(1.0)
    assert clip.shape == (2, m.out_features)
    assert m.out_features == (5 if mode == "self" else 10)


def test_frame_attention_rejects_unknown_mode() -> None:
    with pytest.raises(ConfigError, match="relation"):
        FrameAttention(8, mode="cross")


def test_collect_attention_maps_names_outermost_modules_and_removes_hooks() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), CBAM(8, reduction=2), nn.Conv2d(8, 8, 1), SqueezeExcite(8, 2)
    )
    x = torch.randn(2, 3, 9, 9)
    maps = collect_attention_maps(model, x)
    assert set(maps) == {"1.channel", "1.spatial", "3"}
    assert maps["1.spatial"].shape == (2, 1, 7, 7)
    assert maps["3"].shape == (2, 8)
    assert all(not m._forward_hooks for m in model.modules())


def test_create_attention_builds_every_registered_block_module() -> None:
    assert list_attention() == ["cbam", "channel", "se"]
    x = torch.randn(2, 16, 5, 5)
    for name in list_attention():
        module = create_attention(name, 16, reduction=4)
        assert isinstance(module, AttentionModule)
        out, found = module(x, return_map=True)
        assert out.shape == x.shape
        assert set(found if isinstance(found, dict) else {"": found}) == set(module.map_kinds)
    cbam = create_attention("cbam", 16, reduction=4, spatial_kernel=3)
    assert isinstance(cbam, CBAM) and cbam.spatial.conv.kernel_size == (3, 3)
    assert isinstance(create_attention("se", 16), SqueezeExcite)


def test_create_attention_names_close_matches_for_an_unknown_name() -> None:
    with pytest.raises(ModelError, match=r"unknown attention 'cbma' \(did you mean cbam\?\)"):
        create_attention("cbma", 16)


def test_every_attention_module_declares_its_maps() -> None:
    modules = [
        (ChannelAttention(8, 2), (2, 8, 5, 5)),
        (SpatialAttention(3), (2, 8, 5, 5)),
        (CBAM(8, 2), (2, 8, 5, 5)),
        (SqueezeExcite(8, 2), (2, 8, 5, 5)),
        (SpatialTransformer(1, (32, 32)), (2, 1, 32, 32)),
        (FrameAttention(6, "relation"), (2, 3, 6)),
    ]
    for module, shape in modules:
        _, found = module(torch.randn(shape), return_map=True)
        assert set(found if isinstance(found, dict) else {"": found}) == set(module.map_kinds)
