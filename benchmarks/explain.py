"""Occlusion saliency speed: seconds per 48 x 48 face, 8-pixel window, stride 2 (441 windows).

Times :func:`attnfer.explain.occlusion` on FER2013-sized faces for the shipped models, in fp32
and, where the CPU has bf16 instructions, under bf16 autocast (its default there), after one
warm-up call. The issue's target is "well under a second" per face on CPU. Usage:

    python benchmarks/explain.py [--models default fast] [--faces 1 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from attnfer.explain.occlusion import fill_value, occlusion
from attnfer.precision import bf16_is_fast
from attnfer.pretrained import load_pretrained


def seconds_per_face(model: torch.nn.Module, x: torch.Tensor, fill: float, bf16: bool) -> float:
    occlusion(model, x[:1], fill=fill, bf16=bf16)  # warm-up
    start = time.perf_counter()
    occlusion(model, x, fill=fill, bf16=bf16)
    return (time.perf_counter() - start) / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default", "fast"])
    parser.add_argument("--faces", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"occlusion, window 8, stride 2, {args.threads} threads")
    for name in args.models:
        pre = load_pretrained(name)
        model = pre.model.eval()
        size, channels = pre.preprocess.size, pre.preprocess.channels
        fill = fill_value(pre.preprocess)
        for faces in args.faces:
            x = torch.randn(faces, channels, size, size, generator=torch.Generator().manual_seed(0))
            for bf16 in (False, True) if bf16_is_fast(torch.device("cpu")) else (False,):
                seconds = seconds_per_face(model, x, fill, bf16)
                precision = "bf16" if bf16 else "fp32"
                print(
                    f"{name} ({pre.arch}), {faces} face(s) a call, {precision}: "
                    f"{seconds:.3f} s per face"
                )


if __name__ == "__main__":
    main()
