"""What a model costs: its parameters and the FLOPs of one forward pass."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from .registry import create_model, model_info


def model_cost(
    name: str, input_size: tuple[int, ...] | None = None, **kwargs: Any
) -> tuple[int, float]:
    """Parameters and forward MFLOPs of one sample of model ``name`` built with ``kwargs``, at
    ``input_size`` (C, H, W; None: the model's default).

    Counted on the meta device (no memory, no compute) by ``FlopCounterMode``, which counts
    convolutions and matrix products, 2 FLOPs per multiply-add.
    """
    shape = input_size or model_info(name).input_size
    if input_size is not None:
        kwargs.update(in_chans=shape[0], input_size=tuple(shape[1:]))
    with torch.device("meta"):
        model = create_model(name, **kwargs).eval()
        x = torch.empty(1, *shape)
    params = sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter:
        model(x)
    return params, counter.get_total_flops() / 1e6
