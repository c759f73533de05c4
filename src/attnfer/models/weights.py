"""Weight files: read and save safetensors or PyTorch files, key mapping, two load modes. The
model files of :mod:`attnfer.pretrained` are safetensors files written and read here.

Modes (paper 004's ``weights_init_type``):

- ``"transfer_learning"``: every tensor of the file whose (mapped) name and shape fit the model
  is loaded, except the ``classifier``; layers the file lacks keep their fresh weights, so the
  class count may differ. A first convolution stored for 3 input channels loads into a 1-channel
  model by summing over its input channels.
- ``"continue_training"``: the file must hold exactly the model's tensors, with the same class
  count, and, when both the file's metadata (``class_names``, or ``label_names`` in the files
  :func:`attnfer.pretrained.save_pretrained` writes) and ``class_names`` give them, the same
  class names in the same order.

Converting published formats with ``key_map`` (a dict of prefix renames, ``None`` drops the
keys, or a callable returning the new key or ``None``):

- torchvision ResNet18/34/50 ``state_dict`` (``fc.*`` head): :data:`TORCHVISION_RESNET`;
  its 7x7 ``conv1`` fits only ``stem="imagenet"``; for the 3x3 stems drop it too:
  ``{**TORCHVISION_RESNET, "conv1.": None}``.
- torchvision VGG16: no ``key_map`` (``features.*`` match, and ``transfer_learning`` ignores
  its ``classifier.*`` ImageNet head).
- VGGFace converted to PyTorch (``vgg_face_dag.pth``: ``conv1_1`` ... ``conv5_3``, ``fc6``-``fc8``):
  :data:`VGGFACE`, for ``vgg16``, ``vgg16_gap`` and ``vgg16_cbam``.
- A Lightning checkpoint (``state_dict`` with a ``model.`` prefix): ``{"model.": ""}``.
- A resnet18 file into ``fan_resnet18``'s frame embedding: ``{"": "backbone."}``.

Models train from scratch when no file is given; nothing here is needed for that.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import Tensor, nn

from ..errors import ConfigError, ModelError
from ..files import write_atomic

KeyMap = Mapping[str, str | None] | Callable[[str], str | None]
WEIGHT_MODES = ("transfer_learning", "continue_training")
CLASSIFIER_PREFIX = "classifier."

TORCHVISION_RESNET: dict[str, str | None] = {"fc.": CLASSIFIER_PREFIX}
VGGFACE: dict[str, str | None] = {
    "conv1_1.": "features.0.",
    "conv1_2.": "features.2.",
    "conv2_1.": "features.5.",
    "conv2_2.": "features.7.",
    "conv3_1.": "features.10.",
    "conv3_2.": "features.12.",
    "conv3_3.": "features.14.",
    "conv4_1.": "features.17.",
    "conv4_2.": "features.19.",
    "conv4_3.": "features.21.",
    "conv5_1.": "features.24.",
    "conv5_2.": "features.26.",
    "conv5_3.": "features.28.",
    "fc6.": None,
    "fc7.": None,
    "fc8.": None,
}


@dataclass(frozen=True)
class LoadedWeights:
    """What :func:`load_weights` did: model keys ``loaded`` from the file, model keys ``kept``
    at their fresh values, and file keys ``ignored`` (no such model key, or the classifier)."""

    loaded: list[str]
    kept: list[str]
    ignored: list[str]


def _looks_like_safetensors(path: Path) -> bool:
    """Safetensors files open with an 8-byte header length and then the JSON header's ``{``."""
    with path.open("rb") as f:
        return f.read(9)[8:9] == b"{"


def read_weights(path: str | Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors and string metadata of a safetensors file or a PyTorch file.

    PyTorch files are read with ``weights_only=True``; a plain ``state_dict`` or a dict holding
    one under ``state_dict``, ``model_state_dict`` or ``model`` (``class_names`` beside it
    becomes metadata) are accepted.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such weights file")
    if path.suffix == ".safetensors" or _looks_like_safetensors(path):
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not iterable)
                return tensors, dict(f.metadata() or {})
        except (SafetensorError, OSError, ValueError) as e:
            raise ModelError(f"{path}: not a readable safetensors file ({e})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types for a corrupt or foreign file
        raise ModelError(f"{path}: not a readable PyTorch weights file ({e})") from None
    metadata: dict[str, str] = {}
    if isinstance(obj, dict):
        if isinstance(obj.get("class_names"), list | tuple):
            metadata["class_names"] = json.dumps(list(obj["class_names"]))
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ModelError(f"{path}: holds no state_dict (a mapping of names to tensors)")
    return dict(obj), metadata


def save_weights(
    model: nn.Module,
    path: str | Path,
    class_names: Sequence[str] | None = None,
    metadata: Mapping[str, str] | None = None,
    half: bool = False,
) -> Path:
    """Save ``model``'s ``state_dict`` as safetensors, atomically, with string ``metadata`` and
    ``class_names`` (when given) in its header; ``half`` stores floating-point tensors as fp16."""
    state = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        state[key] = value.half() if half and value.is_floating_point() else value
    header = dict(metadata or {})
    if class_names:
        header["class_names"] = json.dumps(list(class_names))
    blob = save(state, metadata=header or None)
    return write_atomic(path, lambda fh: fh.write(blob))


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a safetensors file, read without its tensors."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(f"{path}: not a readable safetensors file ({e})") from None


def _rename(key: str, key_map: KeyMap | None) -> str | None:
    if key_map is None:
        return key
    if callable(key_map):
        return key_map(key)
    prefixes = [p for p in key_map if key.startswith(p)]
    if not prefixes:
        return key
    prefix = max(prefixes, key=len)
    new = key_map[prefix]
    return None if new is None else new + key[len(prefix) :]


def _fit_input_channels(value: Tensor, target: Tensor) -> Tensor | None:
    """A conv weight stored for 3 input channels, summed for a 1-channel model; else ``None``."""
    if (
        value.ndim == target.ndim == 4
        and (value.shape[1], target.shape[1]) == (3, 1)
        and value.shape[::2] == target.shape[::2]
        and value.shape[3] == target.shape[3]
    ):
        return value.sum(dim=1, keepdim=True)
    return None


def _shapes(items: list[tuple[str, Tensor, Tensor]]) -> str:
    shown = ", ".join(f"{k} {tuple(a.shape)} vs model {tuple(b.shape)}" for k, a, b in items[:5])
    return shown + (f" and {len(items) - 5} more" if len(items) > 5 else "")


def _listed(keys: Sequence[str]) -> str:
    return ", ".join(list(keys)[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def load_weights(
    model: nn.Module,
    path: str | Path,
    mode: str = "transfer_learning",
    key_map: KeyMap | None = None,
    class_names: Sequence[str] | None = None,
) -> LoadedWeights:
    """Load the weights in ``path`` into ``model`` (see the module docstring for the modes).

    Raises :class:`ModelError` naming the file and the offending keys when the file is missing,
    unreadable or does not fit.
    """
    if mode not in WEIGHT_MODES:
        raise ConfigError(f"weights mode must be one of {', '.join(WEIGHT_MODES)}, got {mode!r}")
    path = Path(path)
    raw, metadata = read_weights(path)
    own = model.state_dict()
    state: dict[str, Tensor] = {}
    ignored: list[str] = []
    for key, value in raw.items():
        new = _rename(key, key_map)
        if new is None:
            ignored.append(key)
        else:
            state[new] = value

    if mode == "continue_training":
        _check_classes(path, state, own, metadata, class_names)
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ModelError(
                f"{path}: does not fit the model"
                + (f"; missing {_listed(missing)}" if missing else "")
                + (f"; unexpected {_listed(unexpected)}" if unexpected else "")
            )
        to_load = state
        mismatched = [(k, v, own[k]) for k, v in state.items() if v.shape != own[k].shape]
    else:
        to_load, mismatched = {}, []
        for key, value in state.items():
            if key.startswith(CLASSIFIER_PREFIX) or key not in own:
                ignored.append(key)
            elif value.shape == own[key].shape:
                to_load[key] = value
            elif (fitted := _fit_input_channels(value, own[key])) is not None:
                to_load[key] = fitted
            else:
                mismatched.append((key, value, own[key]))
        if not to_load and not mismatched:
            raise ModelError(
                f"{path}: no tensor matches the model (file keys like {_listed(sorted(raw)[:3])}; "
                f"model keys like {_listed(sorted(own)[:3])}); pass a key_map"
            )
    if mismatched:
        raise ModelError(f"{path}: shapes do not fit: {_shapes(mismatched)}")
    merged = dict(own)
    merged.update({k: v.to(own[k].dtype) for k, v in to_load.items()})
    model.load_state_dict(merged)
    return LoadedWeights(
        loaded=sorted(to_load), kept=sorted(set(own) - set(to_load)), ignored=sorted(ignored)
    )


def _file_class_names(path: Path, metadata: Mapping[str, str]) -> list[str] | None:
    """The class names a weights file's metadata gives, or None."""
    text = metadata.get("class_names") or metadata.get("label_names")
    if not text:
        return None
    try:
        names = json.loads(text)
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ModelError(f"{path}: the class names in its metadata are not a JSON list of names")
    return names


def _check_classes(
    path: Path,
    state: Mapping[str, Tensor],
    own: Mapping[str, Tensor],
    metadata: Mapping[str, str],
    class_names: Sequence[str] | None,
) -> None:
    weight = CLASSIFIER_PREFIX + "weight"
    if weight not in own:
        return
    if weight not in state:
        raise ModelError(f"{path}: has no {weight}; use mode='transfer_learning'")
    n_file, n_model = state[weight].shape[0], own[weight].shape[0]
    if n_file != n_model:
        raise ModelError(f"{path}: trained for {n_file} classes, the model has {n_model}")
    stored = _file_class_names(path, metadata)
    if stored is not None and class_names is not None and stored != list(class_names):
        raise ModelError(
            f"{path}: class names {stored} differ from the expected {list(class_names)}"
        )
