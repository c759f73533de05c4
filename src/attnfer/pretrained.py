"""Trained models as files: weights in safetensors, with everything needed to use them.

The metadata records the architecture and its arguments, the label names, the preprocessing and
the framing (where the model's input square lies relative to each face detector's box; see
:mod:`attnfer.faces.framing`), so ``load_pretrained(path)`` rebuilds a ready model with no pickle
involved. A file is checked as it loads: sizes in range, arguments the architecture takes, finite
weights; anything else is a one-line ModelError naming the file. An ensemble of such models is one
such file too (:func:`save_ensemble`, :mod:`attnfer.models.ensemble`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError, ModelError
from .faces.framing import LEGACY_FRAMING, Framing, framings_from_info
from .files import sha256
from .models import create_model, list_models, model_info
from .models.cost import model_cost
from .models.ensemble import (
    ENSEMBLE_ARCH,
    MAX_MEMBERS,
    Ensemble,
    build_ensemble,
    check_spec,
    ensemble_cost,
)
from .models.weights import read_metadata, read_weights, save_weights
from .preprocess import Preprocess

# Shipped models by name (docs/model_card.md): "default" (ResNet18 + CBAM, recipes/default/), "fast"
# a ResNet10 with CBAM in stages 3-4 (recipes/fast/) for crops in bulk and real-time video,
# "ensemble" the most accurate (default and two one-hour networks of recipes/fast70/, averaged;
# twice default's compute). The ensemble's file names its members' files beside it (default's
# among them): none is stored twice.
SHIPPED = {
    "default": "default.safetensors",
    "fast": "fast.safetensors",
    "ensemble": "ensemble.safetensors",
}
# The int8 ONNX files (attnfer.export.quantize_onnx) run by default on the CPU.
SHIPPED_INT8 = {
    "default": "default.int8.onnx",
    "fast": "fast.int8.onnx",
    "ensemble": "ensemble.int8.onnx",
}
MAX_INPUT_SIZE = 1024  # the largest input side a model file may ask for
# How often each class occurs in FER2013's train split (28,709 faces), the training data of every
# shipped model: their files predate the record that training now writes (info["class_prior"]).
FER2013_TRAIN_COUNTS = (3995, 436, 4097, 7215, 4830, 3171, 4965)


def check_prior(values: Any, classes: int, where: str) -> tuple[float, ...]:
    """``values`` (one number > 0 a class, ``classes`` of them) scaled to sum to 1; ModelError
    naming ``where`` otherwise."""
    numbers = values if isinstance(values, list | tuple) else []
    valid = all(isinstance(v, int | float) and 0 < v < math.inf for v in numbers)
    if len(numbers) != classes or not valid:
        raise ModelError(f"{where}: class_prior must be {classes} numbers > 0, got {values!r}")
    total = float(sum(numbers))
    return tuple(float(v) / total for v in numbers)


def rebalance(probs: np.ndarray, prior: Sequence[float] | None, balance: float) -> np.ndarray:
    """``probs`` (N x classes) times ``prior ** -balance``, renormalised: the class frequencies
    the model was trained with divided out (0: as trained; 1: every class equally likely a
    priori). Unchanged without a prior."""
    if prior is None or balance == 0:
        return probs
    weighted = probs * np.asarray(prior, dtype=probs.dtype) ** -balance
    return weighted / weighted.sum(1, keepdims=True)


@dataclass
class Pretrained:
    """A model with its label names, preprocessing and provenance."""

    model: torch.nn.Module
    arch: str
    label_names: tuple[str, ...]
    preprocess: Preprocess
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    framing: dict[str, Any] = field(default_factory=dict)

    @property
    def clip(self) -> bool:
        """Whether the model classifies clips (``B x K x C x H x W``) rather than images."""
        return self.arch != ENSEMBLE_ARCH and model_info(self.arch).clip

    @property
    def class_prior(self) -> tuple[float, ...] | None:
        """How often each class occurred in training (``info["class_prior"]``), or None where
        the file does not record it."""
        values = self.info.get("class_prior")
        return None if values is None else check_prior(values, len(self.label_names), self.arch)

    def framing_for(self, detector: str) -> Framing:
        """How ``detector``'s boxes map to this model's input; :data:`LEGACY_FRAMING` for a
        detector the file does not name."""
        return framings_from_info(self.framing, self.arch).get(detector, LEGACY_FRAMING)

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
            self.framing,
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
    framing: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write weights and metadata atomically; ``half`` stores floats as fp16. ``framing``: per
    detector name, ``{scale, dx, dy, ...}`` (:func:`attnfer.faces.framing.measure_framing`)."""
    meta = {
        "format": "attnfer",
        "arch": arch,
        "model_kwargs": json.dumps(model_kwargs or {}),
        "label_names": json.dumps(list(label_names)),
        "preprocess": json.dumps(preprocess.to_dict()),
        "info": json.dumps(info or {}),
    }
    if framing:
        meta["framing"] = json.dumps(framing)
    return save_weights(model, path, metadata=meta, half=half)


def _asset(name: str) -> Path:
    return Path(str(resources.files("attnfer") / "assets" / name))


def shipped_int8(name: str | os.PathLike) -> Path | None:
    """The int8 ONNX file of a shipped model name, or None (not a shipped name, or not shipped
    with one in this install)."""
    file = SHIPPED_INT8.get(str(name))
    path = _asset(file) if file else None
    return path if path is not None and path.is_file() else None


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A shipped model name (``default``, ``fast``), a run folder or a file -> the weights file."""
    text = str(name_or_path)
    if text in SHIPPED:
        path = _asset(SHIPPED[text])
        if not path.is_file():
            raise ModelError(f"the shipped model {text!r} is missing from this install ({path})")
        return path
    path = Path(text)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise ModelError(f"{text}: no such model file, run folder or shipped model name")
    return path


def _parse_metadata(meta: dict[str, str], path: Path) -> tuple:
    """arch, kwargs, label names, preprocessing, info and framing from a file's metadata."""
    if meta.get("format") != "attnfer":
        raise ModelError(f"{path}: has no attnfer metadata (arch, labels, preprocessing)")
    try:
        arch = meta["arch"]
        kwargs = json.loads(meta["model_kwargs"])
        label_names = tuple(json.loads(meta["label_names"]))
        preprocess = Preprocess(**json.loads(meta["preprocess"]))
        info = json.loads(meta.get("info", "{}"))
        framing = json.loads(meta.get("framing", "{}"))
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelError(f"{path}: malformed metadata ({exc})") from None
    if arch not in list_models() and arch != ENSEMBLE_ARCH:
        raise ModelError(f"{path}: unknown architecture {arch!r}")
    if not isinstance(kwargs, dict) or not isinstance(info, dict):
        raise ModelError(f"{path}: malformed metadata (model_kwargs and info must be mappings)")
    if arch == ENSEMBLE_ARCH:
        check_spec(kwargs, str(path))
    if not 1 <= len(label_names) <= 64 or not all(isinstance(n, str) for n in label_names):
        raise ModelError(f"{path}: malformed metadata (label_names: 1 to 64 names)")
    size, channels = preprocess.size, preprocess.channels
    if not isinstance(size, int) or not 8 <= size <= MAX_INPUT_SIZE or channels not in (1, 3):
        raise ModelError(
            f"{path}: preprocessing asks for {size!r} px x {channels!r} channels "
            f"(8 to {MAX_INPUT_SIZE} px, 1 or 3 channels)"
        )
    framings_from_info(framing, str(path))
    if "class_prior" in info:
        check_prior(info["class_prior"], len(label_names), str(path))
    return arch, kwargs, label_names, preprocess, info, framing


def describe_model(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """What a model file records, read without loading its weights: ``name``, ``arch``,
    ``kwargs``, ``labels``, ``input`` (channels, height, width), ``info``, ``megabytes`` on disk
    (an ensemble's with the member files it names),
    ``params`` and ``mflops`` (:func:`attnfer.models.cost.model_cost`). ModelError as
    :func:`load_pretrained`."""
    path = resolve(name_or_path)
    arch, kwargs, labels, preprocess, info, _ = _parse_metadata(read_metadata(path), path)
    shape = (preprocess.channels, preprocess.size, preprocess.size)
    files = [path]
    if arch == ENSEMBLE_ARCH:
        params, mflops = ensemble_cost(kwargs, shape, len(labels))
        files += [path.parent / m["file"] for m in kwargs["members"] if "file" in m]
    else:
        params, mflops = model_cost(arch, shape, num_classes=len(labels), **kwargs)
    return {
        "name": str(name_or_path),
        "arch": arch,
        "kwargs": kwargs,
        "labels": list(labels),
        "input": shape,
        "info": info,
        "megabytes": sum(f.stat().st_size for f in files) / 1e6,
        "params": params,
        "mflops": mflops,
    }


def load_pretrained(name_or_path: str | os.PathLike, device: str = "cpu") -> Pretrained:
    """Load a file written by :func:`save_pretrained` or :func:`save_ensemble` (or a shipped model
    by name). An ensemble that names its member files loads them from its folder; loaded, it
    records its members' architectures only, so saving it again stores their tensors in it."""
    path = resolve(name_or_path)
    state, meta = read_weights(path)
    arch, kwargs, label_names, preprocess, info, framing = _parse_metadata(meta, path)
    shipped = any(path.resolve() == _asset(file).resolve() for file in SHIPPED.values())
    if shipped and "class_prior" not in info:  # files older than the record, by name or path
        info["class_prior"] = list(FER2013_TRAIN_COUNTS)  # their exports carry it, int8 too
    if arch == ENSEMBLE_ARCH and "file" in kwargs["members"][0]:
        if state:
            raise ModelError(f"{path}: an ensemble that names its member files holds no tensors")
        members = _member_files(kwargs, label_names, preprocess, path)
        model = Ensemble([m.model for m in members], kwargs["weights"]).eval().to(device)
        spec = {"members": [{"arch": m.arch, "kwargs": m.model_kwargs} for m in members]}
        return Pretrained(model, arch, label_names, preprocess, {**kwargs, **spec}, info, framing)
    size = (preprocess.size, preprocess.size)
    try:
        if arch == ENSEMBLE_ARCH:
            model = build_ensemble(kwargs, len(label_names), preprocess.channels, size)
        else:
            model = create_model(
                arch, len(label_names), in_chans=preprocess.channels, input_size=size, **kwargs
            )
    except (TypeError, ValueError, ConfigError) as exc:
        raise ModelError(f"{path}: model_kwargs do not fit {arch} ({exc})") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    broken = [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]
    if broken:
        raise ModelError(f"{path}: weights hold NaN or infinite values ({', '.join(broken[:3])})")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit {arch}: {exc}") from None
    model.eval().to(device)
    return Pretrained(model, arch, label_names, preprocess, kwargs, info, framing)


def _member_files(
    kwargs: dict[str, Any], label_names: tuple[str, ...], preprocess: Preprocess, path: Path
) -> list[Pretrained]:
    """The member files an ensemble at ``path`` names, each checked against the bytes it was
    written with and the architecture, labels and preprocessing it records."""
    loaded = []
    for member in kwargs["members"]:
        file = path.parent / member["file"]
        if not file.is_file():
            raise ModelError(f"{path}: its member file {member['file']} is not beside it")
        if sha256(file) != member["sha256"]:
            raise ModelError(f"{path}: its member file {file} changed since it was written")
        pre = load_pretrained(file)
        recorded = (member["arch"], member["kwargs"], label_names, preprocess)
        if (pre.arch, pre.model_kwargs, pre.label_names, pre.preprocess) != recorded:
            raise ModelError(f"{path}: its member file {file} is not the model it records")
        loaded.append(pre)
    return loaded


def save_ensemble(
    models: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    weights: Sequence[float] | None = None,
    half: bool = False,
    by_reference: bool = False,
) -> Path:
    """Write the ensemble of ``models`` (shipped names, run folders or model files; weights equal
    unless given) to ``out``. It takes the label names, preprocessing and framing of the first
    model: list first the one whose framing was measured. ``by_reference``: store each member's
    file name and sha256 instead of its tensors (the members must be files in ``out``'s folder,
    and stay there unchanged); ``half`` then does not apply.

    Raises ConfigError for fewer than two models, a weight count that differs, members that are
    ensembles themselves, members that disagree on label names or preprocessing, or (by
    reference) members outside ``out``'s folder.
    """
    weights = [1.0] * len(models) if weights is None else list(weights)
    if not 2 <= len(models) <= MAX_MEMBERS or len(weights) != len(models):
        raise ConfigError(
            f"an ensemble needs 2 to {MAX_MEMBERS} models and one weight each "
            f"({len(models)} models, {len(weights)} weights)"
        )
    if not all(0 <= w < math.inf for w in weights) or sum(weights) <= 0:
        raise ConfigError(f"ensemble weights must be finite, >= 0, not all 0: {weights}")
    loaded = [load_pretrained(m) for m in models]
    first = loaded[0]
    for name, pre in zip(models, loaded, strict=True):
        if pre.arch == ENSEMBLE_ARCH:
            raise ConfigError(f"{name} is an ensemble already: list its members instead")
        if (pre.label_names, pre.preprocess) != (first.label_names, first.preprocess):
            raise ConfigError(
                f"{name} takes {pre.preprocess} and predicts {', '.join(pre.label_names)}; "
                f"{models[0]} takes {first.preprocess} and predicts {', '.join(first.label_names)}"
            )
    spec = {
        "members": [{"arch": p.arch, "kwargs": p.model_kwargs} for p in loaded],
        "weights": weights,
    }
    info = {
        "members": [Path(m).name for m in models],  # names, not paths (served models show info)
        "member_val_acc": [p.info.get("best_val_acc") for p in loaded],
    }
    if first.class_prior is not None:
        info["class_prior"] = list(first.class_prior)
    model: torch.nn.Module = Ensemble([p.model for p in loaded], weights)
    if by_reference:
        folder = Path(out).resolve().parent
        for member, name in zip(spec["members"], models, strict=True):
            file = resolve(name).resolve()
            if file.parent != folder:
                raise ConfigError(f"{name}: a member by reference must be a file in {folder}")
            member.update(file=file.name, sha256=sha256(file))
        model = torch.nn.Module()  # no tensors: load_pretrained reads the members' files
    ensemble = Pretrained(
        model, ENSEMBLE_ARCH, first.label_names, first.preprocess, spec, info, first.framing
    )
    return ensemble.save(out, half=half)
