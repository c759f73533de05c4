"""Reduced precision where the hardware runs it fast: bf16 on CPUs with AVX512-BF16 or AMX
instructions, and on GPUs that support it."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch


@functools.cache
def cpu_has_bf16() -> bool:
    """True when this CPU has bf16 instructions (Linux: read from /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 autocast pays on ``device``."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_bf16()


def autocast(device: torch.device, bf16: bool | None = None) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` if ``bf16`` (None: where :func:`bf16_is_fast`), else nothing."""
    if bf16 is None:
        bf16 = bf16_is_fast(device)
    return torch.autocast(device.type, torch.bfloat16) if bf16 else contextlib.nullcontext()
