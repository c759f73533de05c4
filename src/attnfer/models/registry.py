"""Model registry: ``create_model(name)``, ``list_models()`` and per-model metadata."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..errors import ModelError

ModelFactory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows of a model.

    ``input_size`` is the shape of one sample at the model's default size: ``(C, H, W)``, or
    ``(K, C, H, W)`` for clip models (``clip=True``) that take ``B x K x C x H x W``.
    """

    name: str
    factory: ModelFactory
    input_size: tuple[int, ...]
    paper: str

    @property
    def clip(self) -> bool:
        return len(self.input_size) == 4

    @property
    def in_chans(self) -> int:
        return self.input_size[-3]


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    *, input_size: tuple[int, ...], paper: str
) -> Callable[[ModelFactory], ModelFactory]:
    """Register a factory under its function name, with its default input size and paper."""

    def wrap(factory: ModelFactory) -> ModelFactory:
        name = factory.__name__
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelInfo(name, factory, tuple(input_size), paper)
        return factory

    return wrap


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered models, optionally filtered by a glob ``pattern``."""
    names = sorted(_REGISTRY)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def unknown_name(kind: str, name: str, names: list[str]) -> ModelError:
    """The error for an unknown ``kind`` name: close matches first, then every name."""
    close = difflib.get_close_matches(name, names, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return ModelError(f"unknown {kind} {name!r}{hint}; available: {', '.join(names)}")


def model_info(name: str) -> ModelInfo:
    """Metadata of model ``name``; :class:`ModelError` naming close matches when unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise unknown_name("model", name, list_models()) from None


def create_model(
    name: str, num_classes: int = 7, in_chans: int | None = None, **kwargs: object
) -> nn.Module:
    """Build model ``name`` with fresh weights.

    ``in_chans`` defaults to the model's own default (``model_info(name).in_chans``: 1 for the
    48x48 gray models, 3 for the 224x224 ones); other keyword arguments go to the model's
    factory. Every factory takes ``input_size=(H, W)`` (an int means square), which sizes the
    flattened layers, the STN and the ResNet stem: pass the size of the images you will feed.
    """
    info = model_info(name)
    if isinstance(kwargs.get("input_size"), int):
        kwargs["input_size"] = (kwargs["input_size"], kwargs["input_size"])
    return info.factory(
        num_classes=num_classes,
        in_chans=info.in_chans if in_chans is None else in_chans,
        **kwargs,
    )
