"""The base class every attention module derives from, and the kinds of maps it applies."""

from __future__ import annotations

from typing import ClassVar

from torch import nn

CHANNEL = "channel"
SPATIAL = "spatial"
FRAME = "frame"
TRANSFORM = "transform"


class AttentionModule(nn.Module):
    """An ``nn.Module`` whose ``forward(x, return_map=False)`` can also return the map it applied.

    ``forward(x)`` returns the output; ``forward(x, return_map=True)`` returns ``(out, maps)``,
    ``maps`` one tensor or a dict of named tensors. ``map_kinds`` names every map it may return
    and its kind: the key ``""`` for a single tensor, else the dict's keys; the kinds are
    :data:`CHANNEL` (``[B, C]`` channel weights), :data:`SPATIAL` (``[B, 1, h, w]`` on the
    feature map), :data:`FRAME` (``[B, K]`` per-frame values) and :data:`TRANSFORM`
    (``[B, 2, 3]`` affine).
    :func:`~attnfer.models.attention.collect_attention_maps` and explain find attention modules
    and read their maps through this class alone.
    """

    map_kinds: ClassVar[dict[str, str]]
