"""Attention modules: each is an :class:`AttentionModule` that returns the map it applied when
called with ``return_map=True``; the block attention modules are built by name with
:func:`create_attention` (``"se"``, ``"cbam"``, ``"channel"``)."""

from .base import CHANNEL, FRAME, SPATIAL, TRANSFORM, AttentionModule
from .cbam import CBAM
from .channel import ChannelAttention
from .create import create_attention, list_attention, register_attention
from .frame import FrameAttention
from .maps import attention_modules, collect_attention_maps, map_key
from .se import SqueezeExcite
from .spatial import SpatialAttention
from .stn import SpatialTransformer

__all__ = [
    "CBAM",
    "CHANNEL",
    "FRAME",
    "SPATIAL",
    "TRANSFORM",
    "AttentionModule",
    "ChannelAttention",
    "FrameAttention",
    "SpatialAttention",
    "SpatialTransformer",
    "SqueezeExcite",
    "attention_modules",
    "collect_attention_maps",
    "create_attention",
    "list_attention",
    "map_key",
    "register_attention",
]
