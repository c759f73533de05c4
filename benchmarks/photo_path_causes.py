"""Where the photo path's cost on the faces found comes from: the table of docs/model_card.md.

On a set written by ``attnfer data photos`` (``photos.csv`` says where each face was placed),
RetinaFace finds the faces once; then the same found faces are classified as their crops, as the
square they were placed in (cut from the photo: what making the photos costs), and through the
detector's box aligned three ways (eyes levelled, never turned, a lean up to ``KEPT_TILT`` kept;
the faces' lean is printed),
each by fp32 and int8 onnxruntime, without and with flip TTA, the network as trained (no class
balance). Tune on val, not test:

    attnfer data photos ../shared/datasets/fer2013 --split val --out runs/photo_sets/fer2013_val
    python benchmarks/photo_path_causes.py runs/photo_sets/fer2013_val \
        --data ../shared/datasets/fer2013 --split val
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from attnfer.data.readers import load_dataset
from attnfer.faces import align_face, create_detector, eye_angle, fit_to_input, load_image
from attnfer.faces.align import KEPT_TILT
from attnfer.faces.framing import Placement, best_match
from attnfer.recognize import Recognizer

ALIGNMENTS = {"eyes levelled": 0.0, "never turned": 180.0, f"lean kept to {KEPT_TILT:g}": KEPT_TILT}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path, help="a folder written by attnfer data photos")
    parser.add_argument("--data", required=True, help="the data set the photos were made from")
    parser.add_argument("--split", default="val")
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    faces = load_dataset(args.data).split(args.split)
    rows = list(csv.DictReader((args.photos / "photos.csv").open()))
    detector = create_detector("retinaface")
    found = []  # (photo, detected face, placement, row of faces)
    for n, row in enumerate(rows):
        photo = load_image(args.photos / row["file"])
        placed = Placement(int(row["x"]), int(row["y"]), int(row["side"]))
        face = best_match(detector.detect(photo), placed)
        if face is not None:
            found.append((photo, face, placed, int(row["row"])))
        if n % 500 == 0:
            print(f"detected {n} of {len(rows)}", flush=True)
    labels = faces.labels[[r for *_, r in found]]
    size = faces.images.shape[1]
    crops = {
        "as crops": faces.images[[r for *_, r in found]],
        "the placed square": np.stack([
            fit_to_input(photo[p.y : p.y + p.side, p.x : p.x + p.side], size, 1)
            for photo, _, p, _ in found
        ]),
    }  # fmt: skip
    lean = np.abs([eye_angle(face) for _, face, _, _ in found])
    median, tenth, hundredth = np.percentile(lean, [50, 90, 99])
    print(
        f"\n{len(found)} of {len(rows)} faces found; their lean (eye line, degrees): median "
        f"{median:.1f}, a tenth beyond {tenth:.1f}, a hundredth beyond {hundredth:.1f}"
    )
    print("accuracy on them in %\n")
    print("| crops | fp32 | fp32, flip | int8 | int8, flip |")
    print("|---|---|---|---|---|")
    recognizers = [
        Recognizer(args.model, "retinaface", backend, tta=tta, balance=0)
        for backend in ("onnx", "int8")
        for tta in ("none", "flip")
    ]
    framing = recognizers[0].framing
    for name, kept in ALIGNMENTS.items():
        crops[f"detector's box, {name}"] = np.stack([
            align_face(photo, face, size, 1, framing, kept) for photo, face, _, _ in found
        ])  # fmt: skip
    for name, images in crops.items():
        right = [r.probabilities(images).argmax(1) == labels for r in recognizers]
        cells = [f"{100 * np.mean(hits):.2f}" for hits in right]
        print(f"| {name} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
