"""``attnfer models``: a table of the registered models."""

from __future__ import annotations

import torch
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from .registry import create_model, list_models, model_info


def model_cost(name: str) -> tuple[int, float]:
    """Parameters and forward MFLOPs of one sample at the default input size of model ``name``.

    Counted on the meta device (no memory, no compute) by ``FlopCounterMode``, which counts
    convolutions and matrix products, 2 FLOPs per multiply-add.
    """
    info = model_info(name)
    with torch.device("meta"):
        model = create_model(name).eval()
        x = torch.empty(1, *info.input_size)
    params = sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter:
        model(x)
    return params, counter.get_total_flops() / 1e6


def models_command() -> None:
    """List the models: parameters, forward MFLOPs at the default input size, input, paper."""
    table = Table(
        title="attnfer models",
        caption="MFLOPs: one forward pass of one sample at the default input size; "
        "FLOPs = 2 x the multiply-adds of convolutions and matrix products (FlopCounterMode)",
    )
    table.add_column("name", style="bold")
    table.add_column("parameters", justify="right")
    table.add_column("MFLOPs", justify="right")
    table.add_column("input", justify="right")
    table.add_column("paper")
    for name in list_models():
        info = model_info(name)
        params, mflops = model_cost(name)
        table.add_row(
            name,
            f"{params:,}",
            f"{mflops:,.1f}",
            "x".join(map(str, info.input_size)),
            info.paper,
        )
    Console().print(table)
