"""``attnfer models``: the shipped models, then the registered architectures."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ..models import list_models, model_info
from ..models.cost import model_cost
from ..models.ensemble import ENSEMBLE_ARCH
from ..pretrained import SHIPPED, describe_model

COST_NOTE = (
    "MFLOPs: one forward pass of one sample at the model's input size; FLOPs = 2 x the "
    "multiply-adds of convolutions and matrix products (FlopCounterMode)"
)


def _val_accuracy(info: dict[str, Any]) -> str:
    acc = info.get("best_val_acc")
    return "" if acc is None else f"{100 * acc:.2f}%"


def _architecture(arch: str, kwargs: dict[str, Any]) -> str:
    """``resnet18_cbam stem=cifar_s2``; an ensemble lists its members' architectures."""
    if arch == ENSEMBLE_ARCH:
        return f"ensemble of {', '.join(m['arch'] for m in kwargs['members'])}"
    return " ".join([arch, *(f"{k}={v}" for k, v in kwargs.items())])


def shipped_table() -> Table:
    """One row per shipped model: task, architecture and cost, val accuracy, size on disk."""
    table = Table(
        title="shipped models (--model NAME)",
        caption="val accuracy: the best epoch's, as recorded in the model file; test accuracy, "
        "calibration, speed and recipes: docs/model_card.md",
    )
    table.add_column("name", style="bold")
    table.add_column("task")
    table.add_column("architecture")
    table.add_column("val accuracy", justify="right")
    table.add_column("size", justify="right")
    for name in SHIPPED:
        m = describe_model(name)
        c, h, w = m["input"]
        arch = _architecture(m["arch"], m["kwargs"])
        cost = f"{m['params'] / 1e6:.2f} M parameters, {m['mflops']:,.0f} MFLOPs"
        calibrated = "\ncalibrated" if "calibration" in m["info"] else ""
        table.add_row(
            name,
            f"{len(m['labels'])} expressions\n{h}x{w} {'gray' if c == 1 else 'RGB'} faces",
            f"{arch}\n{cost}",
            _val_accuracy(m["info"]) + calibrated,
            f"{m['megabytes']:.1f} MB",
        )
    return table


def architectures_table() -> Table:
    """One row per registered architecture: parameters, MFLOPs, input size, paper."""
    table = Table(title="architectures (attnfer train; not shipped as weights)", caption=COST_NOTE)
    table.add_column("name", style="bold")
    table.add_column("parameters", justify="right")
    table.add_column("MFLOPs", justify="right")
    table.add_column("input", justify="right")
    table.add_column("paper")
    for name in list_models():
        info = model_info(name)
        params, mflops = model_cost(name)
        size = "x".join(map(str, info.input_size))
        table.add_row(name, f"{params:,}", f"{mflops:,.1f}", size, info.paper)
    return table


def models_command() -> None:
    """The shipped models (task, accuracy, size) and the architectures to train.

    ``--model`` takes a shipped model's name, a run folder or a weights file.
    """
    console = Console()
    console.print(shipped_table())
    console.print(architectures_table())
