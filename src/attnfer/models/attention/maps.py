"""Collect the attention maps every attention module of a model applies in one forward pass."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from .base import AttentionModule


def attention_modules(model: nn.Module) -> list[tuple[str, AttentionModule]]:
    """The outermost :class:`AttentionModule` s of ``model`` with their names, in module order.

    A module inside another attention module (a CBAM's channel and spatial parts) is left out:
    its maps are reported under the outer module's name.
    """
    found: list[tuple[str, AttentionModule]] = []
    for name, module in model.named_modules():
        if isinstance(module, AttentionModule) and not any(
            name.startswith(outer + ".") for outer, _ in found
        ):
            found.append((name, module))
    return found


def map_key(module_name: str, map_name: str) -> str:
    """The key of a module's map in :func:`collect_attention_maps`: ``module_name[.map_name]``."""
    return ".".join(part for part in (module_name, map_name) if part)


def collect_attention_maps(model: nn.Module, *inputs: Any) -> dict[str, Tensor]:
    """Run ``model(*inputs)`` and return ``{module name[.map name]: map}`` for its attention.

    Every module of :func:`attention_modules` is asked for its maps on the input it received;
    the map names and shapes are the module's ``map_kinds`` (see :class:`AttentionModule`).
    """
    maps: dict[str, Tensor] = {}
    handles = []
    for name, module in attention_modules(model):

        def hook(mod: nn.Module, args: tuple[Tensor, ...], _out: Any, name: str = name) -> None:
            _, found = mod.forward(args[0], return_map=True)
            if not isinstance(found, dict):
                found = {"": found}
            for key, value in found.items():
                maps[map_key(name, key)] = value

        handles.append(module.register_forward_hook(hook))
    try:
        model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return maps
