"""attnfer: facial expression recognition with attention."""

from typing import Any

__version__ = "0.1.0"
_LAZY = {"Recognizer": "recognize", "FaceResult": "recognize"}


def __getattr__(name: str) -> Any:
    """``attnfer.Recognizer`` and ``attnfer.FaceResult``, imported on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
