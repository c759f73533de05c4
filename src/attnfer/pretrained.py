"""Trained models as files: weights in safetensors, with everything needed to use them.

The metadata records the architecture and its arguments, the label names and the preprocessing,
so ``load_pretrained(path)`` rebuilds a ready model with no pickle involved.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save

from .data.transforms import Preprocess
from .errors import ModelError
from .files import write_atomic
from .models import create_model

# Shipped models by name (docs/model_card.md): "default" is the most accurate (ResNet18 + CBAM,
# recipes/default/), "fast" a ResNet18 + CBAM at 13/32 width (recipes/fast/) for real-time video.
SHIPPED = {"default": "default.safetensors", "fast": "fast.safetensors"}


@dataclass
class Pretrained:
    """A model with its label names, preprocessing and provenance."""

    model: torch.nn.Module
    arch: str
    label_names: tuple[str, ...]
    preprocess: Preprocess
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike, half: bool = False) -> Path:
        """Write it with :func:`save_pretrained` (``half``: fp16 weights)."""
        return save_pretrained(
            path,
            self.model,
            self.arch,
            self.label_names,
            self.preprocess,
            self.model_kwargs,
            self.info,
            half=half,
        )


def save_pretrained(
    path: str | os.PathLike,
    model: torch.nn.Module,
    arch: str,
    label_names: tuple[str, ...],
    preprocess: Preprocess,
    model_kwargs: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write weights and metadata atomically; ``half`` stores floats as fp16."""
    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        state[key] = value.half() if half and value.is_floating_point() else value
    meta = {
        "format": "attnfer",
        "arch": arch,
        "model_kwargs": json.dumps(model_kwargs or {}),
        "label_names": json.dumps(list(label_names)),
        "preprocess": json.dumps(preprocess.to_dict()),
        "info": json.dumps(info or {}),
    }
    blob = save(state, metadata=meta)
    return write_atomic(path, lambda fh: fh.write(blob))


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A shipped model name (``default``, ``fast``), a run folder or a file -> the weights file."""
    text = str(name_or_path)
    if text in SHIPPED:
        path = Path(str(resources.files("attnfer") / "assets" / SHIPPED[text]))
        if not path.is_file():
            raise ModelError(f"the shipped model {text!r} is missing from this install ({path})")
        return path
    path = Path(text)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise ModelError(f"{text}: no such model file, run folder or shipped model name")
    return path


def load_pretrained(name_or_path: str | os.PathLike, device: str = "cpu") -> Pretrained:
    """Load a file written by :func:`save_pretrained` (or a shipped model by name)."""
    path = resolve(name_or_path)
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iter)
    except Exception as exc:  # safetensors raises its own error types
        raise ModelError(f"{path}: not a safetensors weights file ({exc})") from None
    if meta.get("format") != "attnfer":
        raise ModelError(f"{path}: has no attnfer metadata (arch, labels, preprocessing)")
    try:
        arch = meta["arch"]
        kwargs = json.loads(meta["model_kwargs"])
        label_names = tuple(json.loads(meta["label_names"]))
        preprocess = Preprocess(**json.loads(meta["preprocess"]))
        info = json.loads(meta.get("info", "{}"))
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelError(f"{path}: malformed metadata ({exc})") from None
    size = (preprocess.size, preprocess.size)
    model = create_model(
        arch, len(label_names), in_chans=preprocess.channels, input_size=size, **kwargs
    )
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit {arch}: {exc}") from None
    model.eval().to(device)
    return Pretrained(model, arch, label_names, preprocess, kwargs, info)
