"""Attention modules; each returns the map it applied when called with ``return_map=True``."""

from .cbam import CBAM
from .channel import ChannelAttention
from .frame import FrameAttention
from .maps import ATTENTION_MODULES, collect_attention_maps
from .se import SqueezeExcite
from .spatial import SpatialAttention
from .stn import SpatialTransformer

__all__ = [
    "ATTENTION_MODULES",
    "CBAM",
    "ChannelAttention",
    "FrameAttention",
    "SpatialAttention",
    "SpatialTransformer",
    "SqueezeExcite",
    "collect_attention_maps",
]
