"""Accuracy and speed of each backend of the shipped models: fp32 PyTorch, fp32 and int8 ONNX.

For ``default`` and ``fast`` and each backend (``Recognizer(backend=...)``), the accuracy on a
data set's splits as crops, without and with flip TTA, and the milliseconds a crop at batch 1
(one thread unless ``--threads``). This is how the int8 files were checked before they became the
CPU's default (``docs/model_card.md``): tune on val, report test once.

    python benchmarks/backends.py [--data ../shared/datasets/fer2013] [--splits val,test]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from attnfer.data.readers import load_dataset
from attnfer.recognize import Recognizer
from attnfer.train.evaluate import report_over_known_classes

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fer2013"
BACKENDS = ("torch", "onnx", "int8")


def accuracy(recognizer: Recognizer, images: np.ndarray, labels: np.ndarray, classes) -> float:
    known = np.flatnonzero(labels < len(recognizer.label_names))
    probs = recognizer.probabilities(images[known])
    names = recognizer.label_names
    return report_over_known_classes(probs, labels[known], classes, names, known)["accuracy"]


def ms_per_crop(recognizer: Recognizer, crop: np.ndarray, repeats: int = 200) -> float:
    for _ in range(20):
        recognizer.probabilities(crop)
    start = time.perf_counter()
    for _ in range(repeats):
        recognizer.probabilities(crop)
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--splits", default="val,test")
    parser.add_argument("--models", default="default,fast")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset(args.data)
    splits = args.splits.split(",")
    head = " | ".join(f"{s} | {s}, flip" for s in splits)
    print(f"| model | backend | {head} | ms a crop (batch 1) |")
    print("|---|---|" + "---|" * (2 * len(splits)) + "---|")
    for model in args.models.split(","):
        for backend in BACKENDS:
            cells = []
            for split in splits:
                part = data.split(split)
                for tta in ("none", "flip"):
                    r = Recognizer(model, backend=backend, tta=tta, bf16=False)
                    cells.append(f"{100 * accuracy(r, part.images, part.labels, part.classes):.2f}")
            plain = Recognizer(model, backend=backend, tta="none", bf16=False)
            ms = ms_per_crop(plain, data.images[:1])
            print(f"| {model} | {backend} | {' | '.join(cells)} | {ms:.2f} |", flush=True)


if __name__ == "__main__":
    main()
