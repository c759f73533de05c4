"""Faces found and faces invented per detector score threshold, on a photo set with known faces.

Runs a detector at a very low threshold over a set written by ``attnfer data photos`` (whose
``photos.csv`` says where each face is), and counts per threshold the photos whose face is found
(a box centred in the placed square) and the boxes elsewhere (invented faces). This is how the
detectors' default thresholds were chosen (docs/model_card.md).

    python benchmarks/detector_threshold.py runs/photo_sets/fer2013_test [--detector retinaface]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from attnfer.faces import create_detector, load_image

THRESHOLDS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path, help="a folder written by attnfer data photos")
    parser.add_argument("--detector", default="retinaface")
    parser.add_argument("--limit", type=int, default=0, help="photos to use (0: all)")
    args = parser.parse_args()
    rows = list(csv.DictReader((args.photos / "photos.csv").open()))
    rows = rows[: args.limit] if args.limit else rows
    detector = create_detector(args.detector, min_score=min(THRESHOLDS))
    face_scores, other_scores = [], []
    for row in rows:
        x, y, side = (float(row[k]) for k in ("x", "y", "side"))
        best = 0.0
        for face in detector.detect(load_image(args.photos / row["file"])):
            cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
            if x <= cx <= x + side and y <= cy <= y + side:
                best = max(best, face.score or 0.0)
            else:
                other_scores.append(face.score or 0.0)
        face_scores.append(best)
    faces, others = np.asarray(face_scores), np.asarray(other_scores)
    print(f"{args.detector} on {len(rows)} photos of {args.photos}\n")
    print("| threshold | faces found | % | boxes elsewhere (invented) |")
    print("|---|---|---|---|")
    for t in THRESHOLDS:
        found = int((faces >= t).sum())
        print(f"| {t} | {found} | {100 * found / len(rows):.2f} | {int((others >= t).sum())} |")


if __name__ == "__main__":
    main()
