"""Export models to ONNX (dynamic batch axis) and TorchScript."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

ONNX_OPSET = 20  # affine_grid (the spatial transformer) needs opset 20


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _example(model: nn.Module, input_size: tuple[int, ...]) -> torch.Tensor:
    param = next(model.parameters())
    return torch.randn(2, *input_size, device=param.device, dtype=param.dtype)


def export_onnx(
    model: nn.Module, path: str | Path, input_size: tuple[int, ...], opset: int = ONNX_OPSET
) -> Path:
    """Write ``model`` (in eval mode) as ONNX with input ``input`` and output ``logits``.

    ``input_size`` is one sample's shape, ``(C, H, W)`` or ``(K, C, H, W)`` for clip models; the
    batch axis is dynamic. Uses the TorchScript-based exporter, which needs only ``onnx``.
    """
    path = Path(path)
    with _eval_mode(model), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            model,
            (_example(model, input_size),),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    return path


def export_torchscript(model: nn.Module, path: str | Path, input_size: tuple[int, ...]) -> Path:
    """Trace ``model`` (in eval mode) on a random batch of ``input_size`` samples and save it.

    ``torch.jit`` is deprecated since PyTorch 2.9 but its files still run in LibTorch (C++)
    without Python; tracing works for every model here (none has data-dependent control flow).
    """
    path = Path(path)
    with _eval_mode(model), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, _example(model, input_size))
        traced.save(str(path))
    return path
