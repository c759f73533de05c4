"""Models written for other runtimes: ONNX (fp32 or int8), TorchScript, attnfer safetensors.

- :func:`export_onnx` and :func:`export_torchscript` write a bare ``nn.Module``;
  :func:`write_onnx` writes a :class:`~attnfer.pretrained.Pretrained` with its label names,
  preprocessing and framing as ONNX metadata, which :class:`~attnfer.recognize.Recognizer` reads.
- :func:`quantize_onnx` turns such a file into int8 (static, per-channel weights, activations
  calibrated on faces of a data set), keeping the metadata. The shipped models come with their
  int8 files (:data:`attnfer.pretrained.SHIPPED_INT8`), made by ``attnfer export --int8``.
- :func:`export_model` is ``attnfer export``; :func:`cached_onnx` is the fp32 export of any weights
  file, written once to :func:`cache_dir` (``$ATTNFER_CACHE``, else ``$XDG_CACHE_HOME/attnfer`` or
  ``~/.cache/attnfer``, in ``onnx/<weights hash>-opset<N>-v<CACHE_FORMAT>.onnx``) or, where that
  is not writable, to a new private temporary folder; nothing is ever written inside the installed
  package.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import ConfigError, DataError
from .files import sha256
from .pretrained import Pretrained, load_pretrained, resolve

ONNX_OPSET = 20  # affine_grid (the spatial transformer) needs opset 20
# part of a cached export's name: raised when an export of the same weights file changes
# (2: the shipped models' class prior, which exports of their files by path lacked)
CACHE_FORMAT = 2
EXPORT_FORMATS = ("onnx", "torchscript", "safetensors")
CALIBRATION_FACES = 512


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


def _set_metadata(path: Path, meta: dict[str, str]) -> None:
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of an ONNX file (``attnfer_*`` keys for files written here)."""
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def write_onnx(pre: Pretrained, path: str | os.PathLike) -> Path:
    """Export ``pre``'s model to ONNX with its label names, preprocessing and framing."""
    p = pre.preprocess
    path = export_onnx(pre.model, path, (p.channels, p.size, p.size))
    _set_metadata(path, {
        "attnfer_arch": pre.arch,
        "attnfer_labels": json.dumps(list(pre.label_names)),
        "attnfer_preprocess": json.dumps(p.to_dict()),
        "attnfer_framing": json.dumps(pre.framing),
        **({} if pre.class_prior is None else {"attnfer_class_prior": json.dumps(pre.class_prior)}),
    })  # fmt: skip
    return path


def calibration_faces(source: str | os.PathLike, count: int = CALIBRATION_FACES) -> np.ndarray:
    """``count`` faces drawn (seed 0) from the train split of data set ``source``, or from all
    of it where it has no train split."""
    from .data.readers import load_dataset

    data = load_dataset(source)
    if "train" in data.splits:
        data = data.split("train")
    if len(data) == 0:
        raise DataError(f"{source}: no faces to calibrate on")
    rows = np.random.default_rng(0).choice(len(data), min(count, len(data)), replace=False)
    return data.images[np.sort(rows)]


def quantize_onnx(source: Path, out: Path, faces: np.ndarray) -> Path:
    """Write the int8 version of the attnfer ONNX file ``source`` to ``out``: per-channel int8
    weights, uint8 activations whose ranges come from running uint8 ``faces`` through it. The
    metadata is kept, with ``attnfer_quantized`` added."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    from .preprocess import Preprocess

    meta = onnx_metadata(source)
    preprocess = Preprocess(**json.loads(meta["attnfer_preprocess"]))
    batches = [
        preprocess(torch.from_numpy(faces[i : i + 32])).numpy() for i in range(0, len(faces), 32)
    ]

    class Faces(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {"input": batch}

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(out), Faces(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        )  # fmt: skip
    _set_metadata(out, {**meta, "attnfer_quantized": f"int8, calibrated on {len(faces)} faces"})
    return out


def export_model(
    model: str | os.PathLike = "default",
    out: str | os.PathLike = "model.onnx",
    fmt: str = "onnx",
    half: bool = False,
    calibrate: str | os.PathLike | None = None,
) -> Path:
    """Write ``model`` (shipped name, run folder or weights file) as ONNX, TorchScript or an
    attnfer safetensors file (``half``: weights stored as fp16, loaded back as fp32).
    ``calibrate``: a data set whose faces calibrate an int8 ONNX file (ONNX only)."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"format must be one of {', '.join(EXPORT_FORMATS)}; got {fmt!r}")
    if calibrate is not None and fmt != "onnx":
        raise ConfigError(f"int8 calibration is for ONNX files, not {fmt}")
    pre = load_pretrained(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        return pre.save(out, half=half)
    if fmt == "torchscript":
        p = pre.preprocess
        return export_torchscript(pre.model, out, (p.channels, p.size, p.size))
    if calibrate is None:
        return write_onnx(pre, out)
    faces = calibration_faces(calibrate)
    with tempfile.TemporaryDirectory() as tmp:
        return quantize_onnx(write_onnx(pre, Path(tmp) / "fp32.onnx"), out, faces)


def cache_dir() -> Path:
    """Where exported ONNX models are cached (see the module notes)."""
    if os.environ.get("ATTNFER_CACHE"):
        return Path(os.environ["ATTNFER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "attnfer"


def _write_atomic(weights: Path, path: Path) -> Path:
    """Export ``weights`` to ``path`` through a temporary file beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(handle)
    try:
        write_onnx(load_pretrained(weights), tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def cached_onnx(model: str | os.PathLike) -> Path:
    """The fp32 ONNX export of weights ``model``, written to the cache on first use."""
    weights = resolve(model)
    path = cache_dir() / "onnx" / f"{sha256(weights)[:16]}-opset{ONNX_OPSET}-v{CACHE_FORMAT}.onnx"
    if path.is_file():
        return path
    try:
        return _write_atomic(weights, path)
    except OSError:
        private = Path(tempfile.mkdtemp(prefix="attnfer-onnx-"))
        return write_onnx(load_pretrained(weights), private / path.name)
