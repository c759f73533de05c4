"""Export: ONNX parity with PyTorch for every model, dynamic batch, TorchScript tracing."""

from pathlib import Path

import numpy as np
import pytest
import torch

from attnfer.export import export_onnx, export_torchscript
from attnfer.models import create_model, list_models, model_info

ort = pytest.importorskip("onnxruntime")


def _small(name: str) -> tuple[tuple[int, int], tuple[int, ...]]:
    """A small input size the model allows, and one sample's shape at that size."""
    size = (48, 48) if name == "deep_emotion" else (32, 32)
    sample = (2, 1, *size) if model_info(name).clip else (1, *size)
    return size, sample


@pytest.mark.parametrize("name", list_models())
def test_onnx_matches_pytorch(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    size, sample = _small(name)
    model = create_model(name, in_chans=1, input_size=size)
    path = export_onnx(model, tmp_path / f"{name}.onnx", sample)
    assert model.training  # export leaves the mode as it found it
    model.eval()
    x = torch.randn(3, *sample)  # exported with batch 2: the batch axis is dynamic
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"input": x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    assert got.shape == (3, 7)
    scale = np.abs(expected).max()
    assert scale > 0
    assert np.abs(got - expected).max() < 1e-4 * min(1.0, scale)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name", ["resnet18_cbam", "deep_emotion", "fan_resnet18"])
def test_torchscript_trace_matches_pytorch(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    size, sample = _small(name)
    model = create_model(name, in_chans=1, input_size=size).eval()
    path = export_torchscript(model, tmp_path / f"{name}.pt", sample)
    loaded = torch.jit.load(str(path))
    x = torch.randn(3, *sample)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
