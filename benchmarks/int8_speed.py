"""Int8 crops/s of untrained networks: what an architecture would cost before it is trained.

For each ``ARCH:KWARGS`` given (KWARGS as JSON, e.g. ``resnet10:'{"stem": "cifar_s2", "width":
32, "attention": "cbam", "attention_from": 3}'``) a network with fresh weights (seed 0) is
exported to ONNX, quantised to int8 as ``attnfer export --calibrate`` does (on 512 FER2013 train
faces from ``--data``) and run by a ``Recognizer`` (no TTA) on FER2013 crops: crops/s at batch 1
and 256, on one thread unless ``--threads``, with its parameters and MFLOPs a face. Int8 speed
does not depend on the weights' values, so it ranks architectures for the per-crop goal of issue
32 in minutes, where training one takes an hour. Compare within one run: the machine's day moves
the figures. Usage:

    python benchmarks/int8_speed.py [--data ../shared/datasets/fer2013] [--threads 1] ARCH:KWARGS...
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from photo import crops_per_second  # benchmarks/photo.py, beside this script

from attnfer.data.labels import BASIC7
from attnfer.export import calibration_faces, quantize_onnx, write_onnx
from attnfer.models import create_model
from attnfer.models.cost import model_cost
from attnfer.preprocess import Preprocess
from attnfer.pretrained import Pretrained
from attnfer.recognize import Recognizer

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fer2013"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("networks", nargs="+", help="ARCH:KWARGS (KWARGS as JSON)")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faces = calibration_faces(args.data)
    crops = np.resize(faces, (2048, *faces.shape[1:]))
    print("| network | parameters | MFLOPs a face | int8 crops/s, batch 1 | batch 256 |")
    print("|---|---|---|---|---|")
    for spec in args.networks:
        arch, _, text = spec.partition(":")
        kwargs = json.loads(text or "{}")
        torch.manual_seed(0)
        net = create_model(arch, **kwargs).eval()
        pre = Pretrained(net, arch, BASIC7, Preprocess(48, 1, 0.5, 0.5), kwargs)
        with tempfile.TemporaryDirectory() as folder:
            fp32 = write_onnx(pre, Path(folder, "fp32.onnx"))
            int8 = quantize_onnx(fp32, Path(folder, "int8.onnx"), faces)
            recognizer = Recognizer(int8, tta="none")
            one = crops_per_second(recognizer, crops, 1)
            many = crops_per_second(recognizer, crops, 256)
        params, mflops = model_cost(arch, (1, 48, 48), **kwargs)
        print(f"| `{spec}` | {params / 1e6:.2f} M | {mflops:.0f} | {one:.0f} | {many:.0f} |")


if __name__ == "__main__":
    main()
