"""Whether a model may train channels-last on this machine.

oneDNN's AVX2 kernel for the weight gradient of a strided 1 x 1 convolution on channels-last
input with fewer than 8 input channels writes past its buffer (oneDNN issue 6035; torch 2.13.0):
wrong gradients, a hang or a crash, with no error. CPUs with AVX-512 take another kernel (not
checked for the bug; trusted). Such a convolution appears in a ResNet below width 8 (its first
strided shortcut); those train contiguous on a CPU without AVX-512.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..precision import cpu_flags

log = logging.getLogger("attnfer.train")

ONEDNN_SAFE_IN_CHANNELS = 8
"""Fewest input channels for which a strided 1 x 1 convolution trains correctly channels-last
under oneDNN's AVX2 kernels (checked against a float64 reference for 1 to 52)."""


def unsafe_convs(model: nn.Module) -> list[str]:
    """Names of the model's convolutions that oneDNN's AVX2 kernels mistrain channels-last."""
    return [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d)
        and m.kernel_size == (1, 1)
        and max(m.stride) > 1
        and m.in_channels < ONEDNN_SAFE_IN_CHANNELS
    ]


def channels_last_is_safe(model: nn.Module) -> bool:
    """False (with a warning) when ``model`` would train on this machine's CPU (no GPU), the CPU
    has no AVX-512 and the model has a convolution that would train wrong there channels-last."""
    if torch.cuda.is_available() or "avx512f" in cpu_flags():
        return True
    names = unsafe_convs(model)
    if names:
        log.warning(
            "training contiguous, not channels-last: on a CPU without AVX-512, oneDNN computes "
            "wrong gradients for strided 1x1 convolutions with < %d input channels (%s)",
            ONEDNN_SAFE_IN_CHANNELS, ", ".join(names[:3]),
        )  # fmt: skip
    return not names
