"""Reduced precision where the hardware runs it fast: bf16 on CPUs with AVX512-BF16 or AMX
instructions, and on GPUs that support it. On a CPU, a call of few images runs faster in fp32:
below :data:`BF16_MIN_BATCH` images the automatic choice keeps fp32."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

BF16_MIN_BATCH = 8
"""Fewest images a call for which automatic precision picks bf16 on a CPU. On 2 AMD EPYC cores
(``python benchmarks/recognize.py --batches 1,2,4,8,16,64,256``), crops/s fp32 / bf16: ``default``
85 / 45 at 1 crop, 146 / 142 at 4, 227 / 252 at 8, 262 / 625 at 64; ``fast`` 221 / 104 at 1,
669 / 477 at 8, 944 / 869 at 16, 1129 / 1884 at 64."""


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (Linux: read from /proc/cpuinfo; elsewhere none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return frozenset()
    return frozenset(
        flag for line in lines if line.startswith("flags") for flag in line.split(":", 1)[1].split()
    )


def cpu_has_bf16() -> bool:
    """True when this CPU has bf16 instructions."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 autocast pays on ``device``."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_bf16()


def autocast(
    device: torch.device, bf16: bool | None = None, batch: int | None = None
) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` if ``bf16``, else nothing. None: where :func:`bf16_is_fast`,
    and on a CPU only for calls of ``batch`` images from :data:`BF16_MIN_BATCH` up (if given)."""
    if bf16 is None:
        few = device.type == "cpu" and batch is not None and batch < BF16_MIN_BATCH
        bf16 = bf16_is_fast(device) and not few
    return torch.autocast(device.type, torch.bfloat16) if bf16 else contextlib.nullcontext()
