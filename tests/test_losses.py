"""Losses checked against values worked out by hand."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnfer.train.losses import (
    CenterLoss,
    CrossEntropy,
    IslandLoss,
    WeightNormPenalty,
    class_weights,
)


def test_class_weights_fer2013_counts():
    # FER2013 train counts (angry..neutral); N = 28709, K = 7, disgust: 28709 / (7 * 436) = 9.4066.
    counts = [3995, 436, 4097, 7215, 4830, 3171, 4965]
    labels = torch.repeat_interleave(torch.arange(7), torch.tensor(counts))
    w = class_weights(labels, 7)
    assert w.dtype == torch.float32 and w.shape == (7,)
    assert w[1].item() == pytest.approx(28709 / (7 * 436))
    assert w[3].item() == pytest.approx(28709 / (7 * 7215))
    # Weighted counts are equal across classes: w_c * n_c = N / K.
    assert torch.allclose(
        w * torch.tensor(counts, dtype=torch.float32), torch.full((7,), 28709 / 7)
    )


def test_class_weights_absent_class_and_bad_labels():
    # labels [0, 0, 0, 1], K = 3: w0 = 4 / (3 * 3), w1 = 4 / (3 * 1), class 2 absent -> 0.
    w = class_weights([0, 0, 0, 1], 3)
    assert torch.allclose(w, torch.tensor([4 / 9, 4 / 3, 0.0]))
    with pytest.raises(ValueError):
        class_weights([0, 3], 3)
    with pytest.raises(ValueError):
        class_weights([], 3)


def test_cross_entropy_hard_soft_and_smoothing():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    y = torch.tensor([0, 1])
    logp = logits.log_softmax(1)
    assert CrossEntropy()(logits, y).item() == pytest.approx(-(logp[0, 0] + logp[1, 1]).item() / 2)
    # One-hot probabilities give the same loss as indices.
    assert CrossEntropy()(logits, F.one_hot(y, 3).float()).item() == pytest.approx(
        CrossEntropy()(logits, y).item()
    )
    # FER+ votes [0, 3, 1] are normalised to [0, 0.75, 0.25].
    votes = torch.tensor([[0.0, 3.0, 1.0], [10.0, 0.0, 0.0]])
    expected = -(0.75 * logp[0, 1] + 0.25 * logp[0, 2] + logp[1, 0]) / 2
    assert CrossEntropy()(logits, votes).item() == pytest.approx(expected.item(), rel=1e-6)
    # Label smoothing 0.3, K = 3: target 0.8 on the label, 0.1 elsewhere.
    smooth = -(0.8 * logp[0, 0] + 0.1 * (logp[0, 1] + logp[0, 2])) - (
        0.8 * logp[1, 1] + 0.1 * (logp[1, 0] + logp[1, 2])
    )
    loss = CrossEntropy(label_smoothing=0.3)(logits, y)
    assert loss.item() == pytest.approx(smooth.item() / 2, rel=1e-6)


def test_cross_entropy_class_weights_are_a_buffer():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    loss_fn = CrossEntropy(weight=torch.tensor([1.0, 3.0]))
    assert "weight" in dict(loss_fn.named_buffers())
    logp = logits.log_softmax(1)
    # Weighted mean over sum of weights: -(1 * logp00 + 3 * logp11) / (1 + 3).
    expected = -(logp[0, 0] + 3 * logp[1, 1]) / 4
    assert loss_fn(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)


def _linear(weight, bias):
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return layer


def test_weight_norm_penalty_value_and_gradient():
    # ||W1|| = ||[3, 4]|| = 5, ||W2|| = ||[1, 2, 2, 4]|| = 5: ||w|| = sqrt(25 + 25); biases ignored.
    fc1 = _linear([[3.0, 4.0]], [100.0])
    fc2 = _linear([[1.0, 2.0], [2.0, 4.0]], [-50.0, 7.0])
    penalty = WeightNormPenalty([fc1, fc2], lam=0.1)
    value = penalty()
    assert value.item() == pytest.approx(0.1 * math.sqrt(50))
    value.backward()
    # d(lam * ||w||)/dw = lam * w / ||w||.
    assert torch.allclose(fc1.weight.grad, 0.1 * fc1.weight.detach() / math.sqrt(50))
    assert fc1.bias.grad is None
    assert WeightNormPenalty([fc1, fc2], lam=0.1, squared=True)().item() == pytest.approx(5.0)
    # The layers are not registered as submodules of the penalty.
    assert list(penalty.parameters()) == [] and penalty.state_dict() == {}


def _center_case(cls=CenterLoss, **kwargs):
    loss = cls(3, 2, **kwargs)
    with torch.no_grad():
        loss.centers.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]))
    features = torch.tensor([[1.0, 1.0], [1.0, 2.0], [0.0, 0.0]], requires_grad=True)
    labels = torch.tensor([0, 1, 2])
    return loss, features, labels


def test_center_loss_hand_computed():
    # ||x - c_y||^2: (1,1)-(0,0) -> 2; (1,2)-(1,0) -> 4; (0,0)-(0,2) -> 4; sum 10.
    loss_fn, features, labels = _center_case()
    loss = loss_fn(features, labels)
    assert loss.item() == pytest.approx(0.5 * 10 / 3)  # mean over B = 3
    loss.backward()
    # dL/dc_y = -(x - c_y) / B; dL/dx = (x - c_y) / B.
    expected = -torch.tensor([[1.0, 1.0], [0.0, 2.0], [0.0, -2.0]]) / 3
    assert torch.allclose(loss_fn.centers.grad, expected)
    assert torch.allclose(features.grad, -expected)

    loss_fn, features, labels = _center_case(reduction="sum")
    assert loss_fn(features, labels).item() == pytest.approx(5.0)  # eq. 2 as written: 0.5 * 10


def test_center_loss_repeated_label_and_shape_checks():
    # Two samples of class 1: (1,2) and (3,0) vs c1 = (1,0): 4 + 4 -> 0.5 * 8 / 2 = 2.
    loss_fn, _, _ = _center_case()
    features = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    labels = torch.tensor([1, 1])
    assert loss_fn(features, labels).item() == pytest.approx(2.0)
    with pytest.raises(ValueError):
        loss_fn(torch.zeros(2, 3), labels)
    with pytest.raises(ValueError):
        loss_fn(features, torch.tensor([1]))
    with pytest.raises(ValueError):
        CenterLoss(3, 2, reduction="none")


def _island_case(scale=(1.0, 1.0, 1.0)):
    loss = IslandLoss(3, 2, lambda1=0.5)
    centers = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]) * torch.tensor(scale)[:, None]
    with torch.no_grad():
        loss.centers.copy_(centers)
    return loss, centers.clone()


def test_island_loss_pair_term_hand_computed():
    # Centres (1,0), (0,1), (-1,0): cos 01 = 0, cos 02 = -1, cos 12 = 0.
    # Unordered pairs: (0+1) + (-1+1) + (0+1) = 2; eq. 4 sums ordered pairs j != k: 2 * 2 = 4.
    loss_fn, centers = _island_case()
    assert loss_fn.pair_term().item() == pytest.approx(4.0)
    # Features on their centres: center term 0, total = lambda1 * 4 = 2.
    labels = torch.tensor([0, 1, 2])
    loss = loss_fn(centers, labels)
    assert loss.item() == pytest.approx(2.0)
    loss.backward()
    # d/dc_j of 2 * lambda1 * sum_k cos(c_j, c_k) = lambda1 * 2 * sum_k (u_k - cos_jk u_j) / |c_j|:
    # c0: (0,1) + ((-1,0) - (-1)(1,0)) = (0,1) -> (0,1); c1: (1,0) + (-1,0) -> 0; c2: -> (0,1).
    expected = torch.tensor([[0.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    assert torch.allclose(loss_fn.centers.grad, expected, atol=1e-6)


def test_island_loss_adds_center_term_and_is_scale_invariant_in_centres():
    # Scaled centres (2,0), (0,3), (-5,0): same cosines, pair term still 4.
    loss_fn, centers = _island_case(scale=(2.0, 3.0, 5.0))
    assert loss_fn.pair_term().item() == pytest.approx(4.0)
    # Features off by (1,0), (0,2), (0,0): center term 0.5 * (1 + 4 + 0) / 3 = 5/6, plus 0.5 * 4.
    features = centers + torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    loss = loss_fn(features, torch.tensor([0, 1, 2]))
    assert loss.item() == pytest.approx(5 / 6 + 2.0)


def test_island_loss_training_separates_centres():
    torch.manual_seed(0)
    loss_fn = IslandLoss(4, 3, lambda1=1.0)
    opt = torch.optim.SGD(loss_fn.parameters(), lr=0.1)
    features = torch.randn(16, 3)
    labels = torch.arange(16) % 4
    start = loss_fn.pair_term().item()
    for _ in range(50):
        opt.zero_grad()
        loss_fn(features, labels).backward()
        opt.step()
    assert loss_fn.pair_term().item() < start
