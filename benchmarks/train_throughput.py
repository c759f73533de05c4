"""Training throughput (images/s) per model, fp32 vs bf16 autocast, on this machine's CPU or GPU.

bf16 is left out on a CPU without bf16 instructions, which would emulate it (17x slower than
fp32 for ResNet18 + CBAM on 2 AMD EPYC Zen 3 cores).

One step = preprocessing + batched augmentation + forward + backward + SGD update, on random uint8
faces at the model's training size, channels_last. Usage:

    python benchmarks/train_throughput.py [--models resnet18_cbam,deep_emotion] [--batch 128]
        [--model-kwargs '{"width": 24}']
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
import torch.nn.functional as F

from attnfer.data.transforms import Augment
from attnfer.models import create_model, model_info
from attnfer.precision import bf16_is_fast
from attnfer.preprocess import Preprocess

DEFAULT = "small_cnn,deep_emotion,sepconv_se,resnet18,resnet18_se,resnet18_cbam,vgg16_cbam"


def throughput(
    name: str, kwargs: dict[str, Any], size: int, batch: int, bf16: bool, device: str, steps: int
) -> float:
    channels = model_info(name).in_chans
    model = create_model(name, in_chans=channels, input_size=(size, size), **kwargs).to(device)
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    pre, aug = Preprocess(size=size, channels=channels), Augment()
    images = torch.randint(0, 256, (batch, 48, 48), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 7, (batch,), device=device)

    def step() -> None:
        x = aug(pre(images)).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=48, help="input side for every model")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--model-kwargs", type=json.loads, default={}, help="JSON, every model")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device {device}, {torch.get_num_threads()} threads, batch {args.batch}, {args.size}px")
    with_bf16 = bf16_is_fast(torch.device(device))
    if not with_bf16:
        print("bf16: left out, this CPU has no bf16 instructions (emulated, it is ~17x slower)")
    print(f"{'model':<16}{'fp32 img/s':>12}{'bf16 img/s':>12}{'speed-up':>10}")
    for name in args.models.split(","):
        run = (name, args.model_kwargs, args.size, args.batch)
        fp32 = throughput(*run, False, device, args.steps)
        row = f"{name:<16}{fp32:>12.0f}"
        if with_bf16:
            bf16 = throughput(*run, True, device, args.steps)
            row += f"{bf16:>12.0f}{bf16 / fp32:>9.1f}x"
        print(row, flush=True)


if __name__ == "__main__":
    main()
