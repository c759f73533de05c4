import pytest
import torch
import torch.nn.functional as F

from attnfer.data.transforms import Augment
from attnfer.preprocess import Preprocess, tta_views


def test_preprocess_converts_layouts_and_channels():
    gray = torch.full((2, 48, 48), 255, dtype=torch.uint8)
    x = Preprocess(size=48, channels=1)(gray)
    assert x.shape == (2, 1, 48, 48)
    assert torch.allclose(x, torch.ones_like(x))  # (1 - 0.5) / 0.5
    rgb_hwc = torch.zeros((2, 30, 30, 3), dtype=torch.uint8)
    rgb_hwc[..., 0] = 255
    y = Preprocess(size=64, channels=1)(rgb_hwc)
    assert y.shape == (2, 1, 64, 64)
    assert torch.allclose(y, torch.full_like(y, (0.299 - 0.5) / 0.5), atol=1e-4)
    z = Preprocess(size=224, channels=3)(gray)
    assert z.shape == (2, 3, 224, 224)


def test_augment_is_seeded_and_changes_images():
    x = Preprocess()(torch.randint(0, 256, (16, 48, 48), dtype=torch.uint8))
    aug = Augment()
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    c = aug(x, torch.Generator().manual_seed(4))
    assert a.shape == x.shape
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.allclose(a, x)


def test_augment_without_randomness_is_identity():
    x = Preprocess()(torch.randint(0, 256, (4, 48, 48), dtype=torch.uint8))
    still = Augment(flip=0, shift=0, rotation=0, zoom=0, brightness=0, contrast=0, erasing=0)
    assert torch.allclose(still(x), x, atol=1e-4)


def test_augment_strength_anneals_to_its_final_scale():
    aug = Augment(shift=0.1, rotation=10.0, zoom=0.1, brightness=0.2, contrast=0.2, erasing=0.25,
                  final_scale=0.5)  # fmt: skip
    assert aug.at(0.0) == aug
    half = aug.at(1.0)
    assert (half.flip, half.shift, half.rotation, half.erasing) == (0.5, 0.05, 5.0, 0.125)
    assert aug.at(0.5).rotation == pytest.approx(7.5)
    assert Augment(final_scale=1.0).at(1.0) == Augment()
    gone = Augment(flip=0, final_scale=0.0).at(1.0)  # no augmentation left but the flip
    x = Preprocess()(torch.randint(0, 256, (4, 48, 48), dtype=torch.uint8))
    assert torch.allclose(gone(x), x, atol=1e-4)
    with pytest.raises(ValueError, match="final_scale"):
        Augment(final_scale=1.5)


def test_augment_flip_only_mirrors():
    x = Preprocess()(torch.randint(0, 256, (4, 48, 48), dtype=torch.uint8))
    flip = Augment(flip=1.0, shift=0, rotation=0, zoom=0, brightness=0, contrast=0, erasing=0)
    assert torch.allclose(flip(x), x.flip(-1), atol=1e-4)


def test_random_erasing_zeroes_a_rectangle():
    x = torch.ones(8, 1, 48, 48)
    erase = Augment(flip=0, shift=0, rotation=0, zoom=0, brightness=0, contrast=0, erasing=1.0)
    out = erase(x, torch.Generator().manual_seed(0))
    zeroed = (out == 0).float().mean(dim=(1, 2, 3))
    assert ((zeroed > 0.005) & (zeroed < 0.4)).all()


def test_low_res_shows_each_face_as_a_smaller_face_upscaled():
    """Each face chosen by ``low_res`` is the input area-downscaled to one side in
    [low_res_side, 48] and upscaled back bilinearly; sharp detail is lost, flat images stay."""
    x = torch.randn(32, 1, 48, 48)
    plain = {"flip": 0, "shift": 0, "rotation": 0, "zoom": 0, "brightness": 0, "contrast": 0,
             "erasing": 0}  # fmt: skip
    aug = Augment(**plain, low_res=1.0, low_res_side=16)
    assert torch.allclose(aug(x), x, atol=1e-4)  # a step of its own, after the rest
    out = aug.lower_resolution(x, torch.Generator().manual_seed(0))

    def seen_at(side: int) -> torch.Tensor:
        small = F.interpolate(x, size=(side, side), mode="area")
        return F.interpolate(small, size=(48, 48), mode="bilinear", align_corners=False)

    candidates = torch.stack([x] + [seen_at(side) for side in range(16, 48)])  # side 48: as is
    error = (candidates - out).abs().amax(dim=(2, 3, 4))  # (sides, faces)
    assert (error.amin(0) < 1e-4).all()  # every face is one of the resamplings
    assert len(set(error.argmin(0).tolist())) > 8  # at many sides
    assert out.std() < 0.8 * x.std()  # noise loses most of its detail
    flat = torch.full((4, 1, 48, 48), 0.3)
    assert torch.allclose(aug.lower_resolution(flat), flat)
    assert Augment(low_res=0.0).lower_resolution(x) is x
    with pytest.raises(ValueError, match="low_res is a probability"):
        Augment(low_res=1.5)
    with pytest.raises(ValueError, match="low_res_side"):
        Augment(low_res_side=1)


def test_tta_views():
    x = torch.randn(3, 1, 48, 48)
    assert len(tta_views(x, "none")) == 1
    flips = tta_views(x, "flip")
    assert torch.equal(flips[1], x.flip(-1))
    ten = tta_views(x, "tencrop")
    assert len(ten) == 10 and all(v.shape == x.shape for v in ten)
    centre = torch.nn.functional.interpolate(x[..., 1:47, 1:47], size=(48, 48), mode="bilinear")
    assert torch.allclose(ten[4], centre) and torch.allclose(ten[9], centre.flip(-1))
    corner = torch.nn.functional.interpolate(x[..., 2:, :46], size=(48, 48), mode="bilinear")
    assert torch.allclose(ten[2], corner)
