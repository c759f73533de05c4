"""Clip-level predictions from frames: decision-level and feature-level aggregation (paper 004).

- ``decision``: the class probabilities of ~10 frame groups are averaged. A frame-wise model
  (``deep_emotion``, ``resnet18`` ...) averages its per-frame probabilities within each group of
  consecutive frames, then over the groups (:func:`decision_level`); in a clip shorter than
  the number of groups, frames are repeated evenly so that each group still holds one. A clip
  model (FAN) classifies ``groups`` clips of ``k`` frames, one per segment at a different
  offset in each (:func:`group_clips`), and averages their probabilities.
- ``mean``: feature-level mean pooling: the frame embeddings are averaged (FAN: uniform frame
  weights in place of its attention) and classified once.
- ``attention``: FAN's own self / relation attention over the frames (FAN only).

The feature-level methods use at most ``max_frames`` evenly spaced frames of a clip.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ..data.clips import segment_indices
from ..errors import ConfigError

AGGREGATIONS = ("decision", "mean", "attention")
GROUPS = 10
MAX_FRAMES = 16


def frame_groups(n: int, groups: int = GROUPS) -> list[np.ndarray]:
    """Frame indices of ``groups`` groups of consecutive frames; a clip of fewer frames gives
    one frame per group, repeated evenly (frame ``floor(g * n / groups)``)."""
    if n < 1 or groups < 1:
        raise ConfigError(f"cannot group {n} frames into {groups} groups")
    if n >= groups:
        return np.array_split(np.arange(n), groups)
    return [np.array([g * n // groups]) for g in range(groups)]


def decision_level(probs: np.ndarray | Tensor, groups: int = GROUPS) -> np.ndarray:
    """A clip's class probabilities from per-frame ones (n x classes): the mean of the frame
    groups' mean probabilities."""
    p = np.asarray(probs, dtype=np.float64)
    return np.mean([p[idx].mean(0) for idx in frame_groups(len(p), groups)], axis=0)


def group_clips(n: int, k: int = 3, groups: int = GROUPS) -> np.ndarray:
    """``groups`` x ``k`` frame indices: group ``g`` takes, in each of ``k`` equal segments,
    the frame at relative offset ``(g + 0.5) / groups`` (frames repeat in short clips)."""
    if n < 1 or k < 1 or groups < 1:
        raise ConfigError(f"cannot make {groups} groups of {k} frames from {n}")
    seg = n / k
    offsets = (np.arange(groups)[:, None] + 0.5) / groups
    starts = np.arange(k)[None, :] * seg
    return np.minimum(np.floor(starts + offsets * seg), n - 1).astype(np.int64)


def is_clip_model(model: nn.Module) -> bool:
    """True for models that take clips (B x K x C x H x W): FAN."""
    return hasattr(model, "frame_attention")


def default_aggregation(model: nn.Module) -> str:
    """``attention`` for FAN, ``decision`` for frame-wise models."""
    return "attention" if is_clip_model(model) else "decision"


def _even(x: Tensor, max_frames: int) -> Tensor:
    if len(x) <= max_frames:
        return x
    return x[torch.from_numpy(segment_indices(len(x), max_frames))]


def _uniform_fan_feature(model: nn.Module, features: Tensor) -> Tensor:
    """FAN's clip feature with equal frame weights (``features``: B x K x D)."""
    mean = features.mean(1)
    if model.frame_attention.mode == "relation":
        return torch.cat([mean, mean], dim=-1)
    return mean


@torch.inference_mode()
def clip_probabilities(
    model: nn.Module,
    frames: Tensor,
    method: str | None = None,
    groups: int = GROUPS,
    k: int = 3,
    max_frames: int = MAX_FRAMES,
) -> np.ndarray:
    """Class probabilities of one clip of normalised frames (n x C x H x W) by ``method``
    (None: :func:`default_aggregation`; see the module notes)."""
    method = method or default_aggregation(model)
    if method not in AGGREGATIONS:
        raise ConfigError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {method!r}")
    clip_model = is_clip_model(model)
    if method == "attention" and not clip_model:
        raise ConfigError("attention aggregation needs a frame attention model (fan_resnet18)")
    if method == "decision":
        if clip_model:
            batch = frames[torch.from_numpy(group_clips(len(frames), k, groups))]
            return model(batch).float().softmax(1).mean(0).numpy()
        return decision_level(model(frames).float().softmax(1).numpy(), groups)
    x = _even(frames, max_frames)
    if method == "attention":
        return model(x[None]).float().softmax(1)[0].numpy()
    if clip_model:
        feature = _uniform_fan_feature(model, model.frame_features(x[None]))
    else:
        feature = model.forward_features(x).mean(0, keepdim=True)
    return model.classifier(feature).float().softmax(1)[0].numpy()
