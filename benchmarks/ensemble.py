"""Members and their averaged probabilities on a split: does an ensemble beat its best member?

Every model (shipped name, run folder or weights file) classifies the split's faces (fp32
onnxruntime, flip TTA unless ``--tta``, the networks as trained: no class balance); then every
combination of two or more averages its members' probabilities at equal weights, and
``--weights`` (one per model) adds that weighting.
Choose members and weights on val only (docs/results.md, "Accuracy per CPU-hour").

    python benchmarks/ensemble.py default runs/fast70_resnet18_cbam_w48_fer2013 \
        --data ../shared/datasets/fer2013 --split val
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from attnfer.data.readers import load_dataset
from attnfer.recognize import Recognizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--tta", default="flip")
    parser.add_argument("--weights", type=lambda s: [float(w) for w in s.split(",")])
    args = parser.parse_args()
    faces = load_dataset(args.data).split(args.split)
    probs = {
        m: Recognizer(m, backend="onnx", tta=args.tta, balance=0).probabilities(faces.images)
        for m in args.models
    }

    def accuracy(p: np.ndarray) -> str:
        return f"{100 * np.mean(p.argmax(1) == faces.labels):.2f}"

    print(f"| members ({args.split}, TTA {args.tta}) | accuracy |")
    print("|---|---|")
    for r in range(1, len(args.models) + 1):
        for combo in itertools.combinations(args.models, r):
            print(f"| {' + '.join(combo)} | {accuracy(sum(probs[m] for m in combo))} |")
    if args.weights:
        weighted = sum(w * probs[m] for w, m in zip(args.weights, args.models, strict=True))
        print(f"| weights {args.weights} | {accuracy(weighted)} |")


if __name__ == "__main__":
    main()
