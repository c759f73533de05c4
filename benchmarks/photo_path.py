"""The photo path against crops: the same faces classified as crops and found in photos.

Each face of FER2013's test split and of CK+48 is placed into a photo-like image (``attnfer data
photos``: random size, position, background and colour; made once under ``--sets``, kept), then
classified twice by the same classifier (backend, test-time augmentation and class balance as a
user's ``Recognizer`` has them, unless ``--backend``, ``--tta`` and ``--balance`` say otherwise):
as its crop, and through the full pipeline of each detector (``attnfer evaluate --faces
detect``: decode, detect, align with the model's framing, classify; no face found counts as
wrong). ``--face-px N`` places every face at N x N pixels instead (small faces: a group photo,
a video frame), its crop shown at that resolution too (downscaled and upscaled back, as the
pipeline does), so that the gap is what detection and alignment cost. The gap splits in two:
faces the detector missed, and what detection and alignment cost on the faces found (their
accuracy as crops against through the pipeline). ``--legacy`` adds the pipeline with the framing
every model had before framings were measured (the box enlarged by 25 %). With
``--fer-python`` (the python of a venv holding fer 25.10.3: ``../shared/tools/fervenv.sh`` builds
one) fer classifies the same photos through its own pipeline (its Haar cascade, the largest face of
each photo, its choice among the classes the data set has, scored as attnfer is). Prints Markdown
tables.

    python benchmarks/photo_path.py [--model default] [--detectors all] [--legacy]
        [--backend auto] [--tta flip] [--balance 0.75] [--fer-python /tmp/fervenv/bin/python]
        [--face-px 24] [--split val]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from attnfer.data.readers import load_dataset
from attnfer.faces import list_detectors
from attnfer.faces.align import fit_to_input
from attnfer.faces.compose import PhotoStyle
from attnfer.photos import PhotoSamples, evaluate_photos, photo_samples, write_photo_set
from attnfer.recognize import BALANCE, Recognizer
from attnfer.train.evaluate import report_over_known_classes

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SOURCES = {"FER2013": (DATASETS / "fer2013", "test"), "CK+48": (DATASETS / "ckplus48", "all")}
# fer on photo files (paths on stdin, one a line): its largest face's emotion scores, or null
FER_SCRIPT = """
import json, sys, cv2
from fer.fer import FER
fer, out = FER(), []
for path in sys.stdin.read().splitlines():
    faces = fer.detect_emotions(cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB))
    largest = max(faces, key=lambda f: f["box"][2] * f["box"][3], default=None)
    out.append(largest and largest["emotions"])
print(json.dumps(out))
"""


def fer_photo_path(python: str, photos: PhotoSamples, label_names: tuple[str, ...]) -> dict:
    """fer's accuracy over the photos whose label ``label_names`` holds (no face: wrong), and the
    photos where its detector found none."""
    known = np.flatnonzero(photos.labels < len(label_names))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    paths = "\n".join(str(photos.sources[i]) for i in known)
    done = subprocess.run(
        [python, "-c", FER_SCRIPT], input=paths, capture_output=True, text=True, env=env,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"fer failed:\n{done.stderr[-2000:]}")
    scores = json.loads(done.stdout.strip().splitlines()[-1])
    rows = np.asarray([i for i, s in zip(known, scores, strict=True) if s], dtype=np.int64)
    probs = np.asarray([[s.get(n, 0.0) for n in label_names] for s in scores if s], np.float32)
    report = report_over_known_classes(
        probs, photos.labels[rows], photos.classes, label_names, rows
    )
    count, correct = len(known), report["accuracy"] * len(rows)
    return {"accuracy": correct / count, "missed": count - len(rows), "photos": count}


def seen_at(images: np.ndarray, side: int | None) -> np.ndarray:
    """Face crops (N x H x W gray, or N x H x W x 3) as a face of ``side`` pixels reaches the
    model: resized to ``side`` and back as the pipeline resizes a crop (``fit_to_input``: area
    averaging down, bilinear up); unchanged without ``side``."""
    if side is None or side >= images.shape[1]:
        return images
    size, channels = images.shape[1], 1 if images.ndim == 3 else 3
    return np.stack(
        [fit_to_input(fit_to_input(im, side, channels), size, channels) for im in images]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--detectors", default="all", help="'all' or comma-separated names")
    parser.add_argument("--sets", type=Path, default=Path("runs/photo_sets"))
    parser.add_argument("--legacy", action="store_true", help="also the legacy framing")
    parser.add_argument("--backend", default="auto", help="the Recognizer's backend")
    parser.add_argument("--tta", default="flip", help="the Recognizer's test-time augmentation")
    parser.add_argument("--balance", type=float, default=BALANCE, help="the Recognizer's balance")
    parser.add_argument("--fer-python", help="python of a venv with fer 25.10.3")
    parser.add_argument("--face-px", type=int, help="place every face at this side in pixels")
    parser.add_argument("--split", default="test", help="FER2013's split: test, or val to tune")
    args = parser.parse_args()
    style = PhotoStyle(face_px=args.face_px)
    SOURCES["FER2013"] = (SOURCES["FER2013"][0], args.split)
    names = list_detectors() if args.detectors == "all" else args.detectors.split(",")
    rows, fer_rows = [], []
    for source, (src, split) in SOURCES.items():
        title = source if split == "all" else f"{source} {split}"
        data = load_dataset(src)
        part = data if split == "all" else data.split(split)
        as_crops = Recognizer(
            args.model, backend=args.backend, tta=args.tta, bf16=False, balance=args.balance
        )
        known = np.flatnonzero(part.labels < len(as_crops.label_names))
        probs = as_crops.probabilities(seen_at(part.images[known], args.face_px))
        report = report_over_known_classes(
            probs, part.labels[known], part.classes, as_crops.label_names, known
        )
        crops = report["accuracy"]
        wrong = {e["row"] for e in report["errors"]}  # rows of part
        px = "" if args.face_px is None else f"_px{args.face_px}"
        folder = args.sets / f"{data.name}_{split}{px}"
        manifest = write_photo_set(part, folder, style=style)
        source_row = {
            str(folder / r["file"]): int(r["row"]) for r in csv.DictReader(manifest.open())
        }
        photos = photo_samples(folder)
        if args.fer_python:
            fer = fer_photo_path(args.fer_python, photos, as_crops.label_names)
            fer_rows.append((title, fer))
            print(f"{title}, fer: {100 * fer['accuracy']:.2f}%", flush=True)
        for name in names:
            recognizer = Recognizer(
                args.model, name, args.backend, "detect", args.tta, bf16=False,
                balance=args.balance,
            )  # fmt: skip
            framings = [("model's", recognizer.classifier)]
            if args.legacy:
                framings.append(("legacy", dataclasses.replace(recognizer.classifier, framings={})))
            for kind, classifier in framings:
                recognizer.classifier = classifier
                start = time.perf_counter()
                report = evaluate_photos(recognizer, photos)
                seconds = time.perf_counter() - start
                found = [source_row[str(photos.sources[i])] for i in report["found_rows"]]
                crops_found = 1 - len(wrong.intersection(found)) / max(1, len(found))
                rows.append((title, crops, crops_found, name, kind, report, seconds))
                print(
                    f"{title}, {name}, {kind} framing: {100 * report['accuracy']:.2f}%", flush=True
                )
    setup = f"model {args.model}, backend {as_crops.backend}, TTA {args.tta}"
    setup += f", balance {as_crops.balance}"
    if args.face_px:
        setup += f"; every face {args.face_px} x {args.face_px} px, as crops and in photos"
    print(f"\n{setup}; accuracy in %; no face found counts as wrong\n")
    print(
        "| faces | detector | framing | as crops | photo path | gap | missed | found: as crops "
        "| found: photo path | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for title, crops, crops_found, name, kind, report, seconds in rows:
        acc, acc_found = report["accuracy"], report["report"]["accuracy"]
        missed = f"{report['photos'] - report['found']} of {report['photos']}"
        print(
            f"| {title} | {name} | {kind} | {100 * crops:.2f} | {100 * acc:.2f} | "
            f"{100 * (acc - crops):+.2f} | {missed} | {100 * crops_found:.2f} | "
            f"{100 * acc_found:.2f} | {seconds:.0f} |"
        )
    if fer_rows:
        print("\nfer 25.10.3 on the same photos (its Haar cascade and mini-Xception)\n")
        print("| faces | fer: photo path | missed |")
        print("|---|---|---|")
        for title, fer in fer_rows:
            missed = f"{fer['missed']} of {fer['photos']}"
            print(f"| {title} | {100 * fer['accuracy']:.2f} | {missed} |")


if __name__ == "__main__":
    main()
