"""Small faces: accuracy per face side, for faces that reach the model from fewer pixels.

In group photos, video frames and webcams across a room faces are often 20-40 px; the pipeline
upscales such a crop to the model's input. Each face of a FER2013 split is shown as a face of
SIDE pixels would be (downscaled with area averaging and upscaled back bilinearly, as
``align_face`` does) and classified by each model (backend and test-time augmentation as a
user's ``Recognizer`` has them, the networks as trained: no class balance unless ``--balance``).
Side 48 is the crop itself. Prints a Markdown table of accuracy in % per model and side.

    python benchmarks/small_faces.py [--models default,fast] [--split test]
        [--sides 48,36,28,24,20,16] [--backend auto] [--tta flip] [--balance 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from photo_path import seen_at

from attnfer.data.readers import load_dataset
from attnfer.recognize import Recognizer

FER2013 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fer2013"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default,fast", help="comma-separated models")
    parser.add_argument("--data", type=Path, default=FER2013)
    parser.add_argument("--split", default="test", help="test, or val to tune")
    parser.add_argument("--sides", default="48,36,28,24,20,16", help="face sides in pixels")
    parser.add_argument("--backend", default="auto", help="the Recognizer's backend")
    parser.add_argument("--tta", default="flip", help="the Recognizer's test-time augmentation")
    parser.add_argument("--balance", type=float, default=0.0, help="the Recognizer's balance")
    args = parser.parse_args()
    faces = load_dataset(args.data).split(args.split)
    sides = [int(s) for s in args.sides.split(",")]
    print(f"FER2013 {args.split}, {len(faces)} faces; accuracy in % per face side (px)\n")
    print("| model | " + " | ".join(str(s) for s in sides) + " |")
    print("|---|" + "---|" * len(sides))
    for model in args.models.split(","):
        recognizer = Recognizer(
            model, backend=args.backend, tta=args.tta, bf16=False, balance=args.balance
        )
        cells = []
        for side in sides:
            probs = recognizer.probabilities(seen_at(faces.images, side))
            cells.append(f"{100 * np.mean(probs.argmax(1) == faces.labels):.2f}")
        print(f"| {model} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
