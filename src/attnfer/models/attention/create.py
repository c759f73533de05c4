"""Attention modules by name: ``create_attention("cbam", channels)`` and ``register_attention``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..registry import unknown_name
from .base import AttentionModule

AttentionFactory = Callable[..., AttentionModule]
F = TypeVar("F", bound=AttentionFactory)

_ATTENTION: dict[str, AttentionFactory] = {}


def register_attention(name: str) -> Callable[[F], F]:
    """Register an attention module class (or factory) under ``name``.

    It is called as ``factory(channels, **kwargs)`` and must keep its input's shape: the ResNet
    blocks put it on the residual branch before the sum.
    """

    def wrap(factory: F) -> F:
        if name in _ATTENTION:
            raise RuntimeError(f"attention {name!r} is registered twice")
        _ATTENTION[name] = factory
        return factory

    return wrap


def list_attention() -> list[str]:
    """Sorted names of the registered attention modules."""
    return sorted(_ATTENTION)


def create_attention(name: str, channels: int, **kwargs: Any) -> AttentionModule:
    """Build attention module ``name`` for ``channels`` channels with its keyword ``kwargs``.

    :class:`ModelError` naming close matches when ``name`` is unknown.
    """
    try:
        factory = _ATTENTION[name]
    except KeyError:
        raise unknown_name("attention", name, list_attention()) from None
    return factory(channels, **kwargs)
