"""Collect the attention maps every attention module of a model applies in one forward pass."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from .cbam import CBAM
from .channel import ChannelAttention
from .frame import FrameAttention
from .se import SqueezeExcite
from .spatial import SpatialAttention
from .stn import SpatialTransformer

ATTENTION_MODULES = (
    CBAM,
    ChannelAttention,
    SpatialAttention,
    SqueezeExcite,
    SpatialTransformer,
    FrameAttention,
)


def collect_attention_maps(model: nn.Module, *inputs: Any) -> dict[str, Tensor]:
    """Run ``model(*inputs)`` and return ``{module name[.map name]: map}`` for its attention.

    Every outermost attention module (a CBAM's own channel and spatial parts are reported under
    the CBAM's name) is asked for its map on the input it received; see each module for shapes.
    """
    maps: dict[str, Tensor] = {}
    handles = []
    outer: list[str] = []
    for name, module in model.named_modules():
        if not isinstance(module, ATTENTION_MODULES) or any(
            name.startswith(prefix + ".") for prefix in outer
        ):
            continue
        outer.append(name)

        def hook(mod: nn.Module, args: tuple[Tensor, ...], _out: Any, name: str = name) -> None:
            _, found = mod.forward(args[0], return_map=True)
            if not isinstance(found, dict):
                found = {"": found}
            for key, value in found.items():
                maps[".".join(part for part in (name, key) if part)] = value

        handles.append(module.register_forward_hook(hook))
    try:
        model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return maps
