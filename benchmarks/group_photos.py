"""Group photos: how many of their faces each system finds and reads right, and how fast.

Each photo holds ``--faces`` faces of mixed sizes (``--min-px`` to ``--max-px``, log-uniform: as
many small faces as large ones), from FER2013 test and then from CK+48, none overlapping, on a
photo of 1280 to 4032 px (4:3, as phones take them; :func:`attnfer.faces.compose.compose_group`),
saved as a JPEG. A system's time is ``Recognizer.predict(jpeg bytes)`` (decode, detect, align,
classify every face), one photo at a time with ``--threads`` threads. A face counts as found when
a result's box centre lies in its square (each result counts once); a face missed counts as wrong;
results that match no face are "extra"; a face's label is the system's likeliest among the set's
classes (CK+48's contempt faces are left out: no model here knows it). Figures are also given per
face size. With ``--fer-python`` (the python of a venv holding fer 25.10.3:
``../shared/tools/fervenv.sh`` builds one) fer runs on the same photos, with the same threads,
through its own pipeline (its Haar cascade and every face it finds). ``--split val`` uses
FER2013's validation faces alone, to tune on (CK+48 has no validation split).

    python benchmarks/group_photos.py [--photos 20] [--faces 16] [--models default]
        [--detectors retinaface] [--threads 1] [--fer-python /tmp/fervenv/bin/python]
        [--split val]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from attnfer.data.dataset import FaceDataset
from attnfer.data.readers import load_dataset
from attnfer.faces import Face
from attnfer.faces.compose import GroupStyle, compose_group
from attnfer.faces.framing import Placement, best_match
from attnfer.recognize import Recognizer

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SOURCES = {"FER2013 test": (DATASETS / "fer2013", "test"), "CK+48": (DATASETS / "ckplus48", "all")}
NUM_KNOWN = 7  # the classes the shipped models know (FER2013's); CK+'s contempt is left out
SIZES = ((24, 48), (48, 96), (96, 100_000))  # spans of face sides in px, low to high (excluded)

# fer on photo files (paths on stdin, one a line): [ms, [[x1, y1, x2, y2, scores], ...]] each
FER_SCRIPT = """
import json, sys, time, cv2
from fer.fer import FER
fer, out = FER(), []
for path in sys.stdin.read().splitlines():
    data = open(path, "rb").read()
    start = time.perf_counter()
    bgr = cv2.imdecode(__import__("numpy").frombuffer(data, "uint8"), cv2.IMREAD_COLOR)
    faces = fer.detect_emotions(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    ms = 1000 * (time.perf_counter() - start)
    found = []
    for f in faces:
        x, y, w, h = (float(v) for v in f["box"])
        found.append([x, y, x + w, y + h, f["emotions"]])
    out.append([ms, found])
print(json.dumps(out))
"""


def make_groups(
    data: FaceDataset, count: int, faces: int, style: GroupStyle
) -> tuple[list[bytes], list[list[tuple[Placement, str]]]]:
    """``count`` group JPEGs of ``faces`` faces of ``data`` each (taken in turn), and each face's
    placement and label (faces that found no room are left out)."""
    photos, truths = [], []
    for k in range(count):
        rows = [(k * faces + i) % len(data) for i in range(faces)]
        photo, placed = compose_group(data.images[rows], np.random.default_rng([11, k]), style)
        ok, jpeg = cv2.imencode(".jpg", photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        assert ok
        photos.append(jpeg.tobytes())
        names = [data.label_names[data.labels[r]] for r in rows]
        truths.append([(p, n) for p, n in zip(placed, names, strict=True) if p is not None])
    return photos, truths


def likeliest(scores: dict[str, float], names: tuple[str, ...]) -> str:
    """The class of ``names`` that ``scores`` (class name: probability) rates highest."""
    return max(names, key=lambda n: scores.get(n, 0.0))


def match(truth: list[tuple[Placement, str]], found: list[tuple[Face, str]]) -> list[str | None]:
    """For each placed face, the label of the result matched to it (``best_match``: the largest
    result whose box centre lies in its square; each result used once), or None."""
    free = list(found)
    labels: list[str | None] = []
    for placed, _ in truth:
        face = best_match([f for f, _ in free], placed)
        if face is None:
            labels.append(None)
            continue
        labels.append(free.pop(next(i for i, (f, _) in enumerate(free) if f is face))[1])
    return labels


def score(
    truths: list[list[tuple[Placement, str]]], results: list[list[tuple[Face, str]]]
) -> dict[str, float | list[str]]:
    """Found and accuracy over all faces and per size bin, extra results."""
    sides, right, hit, extra = [], [], [], 0
    for truth, found in zip(truths, results, strict=True):
        labels = match(truth, found)
        extra += len(found) - sum(lab is not None for lab in labels)
        for (placed, name), label in zip(truth, labels, strict=True):
            sides.append(placed.side)
            hit.append(label is not None)
            right.append(label == name)
    side, found_, correct = np.asarray(sides), np.asarray(hit), np.asarray(right)
    bins = []
    for low, high in SIZES:
        inside = (side >= low) & (side < high)
        bins.append(f"{100 * found_[inside].mean():.0f} / {100 * correct[inside].mean():.0f}")
    return {
        "faces": len(side),
        "found": 100 * found_.mean(),
        "accuracy": 100 * correct.mean(),
        "on_found": 100 * correct[found_].mean() if found_.any() else 0.0,
        "extra": extra,
        "bins": bins,
    }


def run_attnfer(
    recognizer: Recognizer, photos: list[bytes], names: tuple[str, ...]
) -> tuple[list, list[float]]:
    recognizer.predict(photos[0])  # warm up
    results, times = [], []
    for data in photos:
        start = time.perf_counter()
        faces = recognizer.predict(data)
        times.append(1000 * (time.perf_counter() - start))
        results.append([(Face(f.box), likeliest(f.probabilities, names)) for f in faces])
    return results, times


def run_fer(python: str, photos: list[bytes], names: tuple[str, ...]) -> tuple[list, list[float]]:
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, data in enumerate(photos):
            paths.append(Path(folder, f"{i:04d}.jpg"))
            paths[-1].write_bytes(data)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
        done = subprocess.run(
            [python, "-c", FER_SCRIPT], input="\n".join(map(str, paths)), capture_output=True,
            text=True, env=env, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"fer failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    results = [
        [(Face((x1, y1, x2, y2)), likeliest(scores, names)) for x1, y1, x2, y2, scores in found]
        for _, found in out
    ]
    return results, [ms for ms, _ in out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=20, help="group photos a set")
    parser.add_argument("--faces", type=int, default=16, help="faces placed in each photo")
    parser.add_argument("--min-px", type=int, default=24)
    parser.add_argument("--max-px", type=int, default=256)
    parser.add_argument("--models", default="default")
    parser.add_argument("--detectors", default="retinaface")
    parser.add_argument("--threads", type=int, default=1, help="threads for every system")
    parser.add_argument("--fer-python", help="python of a venv with fer 25.10.3")
    parser.add_argument("--split", default="test", help="FER2013's split: test, or val to tune")
    args = parser.parse_args()
    sources = dict(SOURCES)
    if args.split != "test":
        sources = {f"FER2013 {args.split}": (DATASETS / "fer2013", args.split)}
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    cv2.setNumThreads(args.threads)
    style = GroupStyle(min_px=args.min_px, max_px=args.max_px)
    recognizers = {
        f"attnfer {model}, {detector}": Recognizer(model, detector=detector)
        for model in args.models.split(",")
        for detector in args.detectors.split(",")
    }
    heads = [f"{lo}-{hi - 1} px" for lo, hi in SIZES[:-1]] + [f"{SIZES[-1][0]}+ px"]
    lines = []
    for source, (src, split) in sources.items():
        data = load_dataset(src)
        data = data.split(split) if split != "all" else data
        known = data.labels < NUM_KNOWN
        data = dataclasses.replace(data, images=data.images[known], labels=data.labels[known])
        names = tuple(data.label_names[c] for c in data.classes if c < NUM_KNOWN)
        photos, truths = make_groups(data, args.photos, args.faces, style)
        systems = {}
        if args.fer_python:
            systems["fer 25.10.3 (Haar + mini-Xception)"] = run_fer(args.fer_python, photos, names)
        for name, recognizer in recognizers.items():
            systems[name] = run_attnfer(recognizer, photos, names)
            print(f"{source}, {name}: done", file=sys.stderr, flush=True)
        faces = sum(len(t) for t in truths)
        lines.append(f"| **{source}** ({faces} faces) | | | | | " + "| " * len(heads) + "|")
        for name, (results, times) in systems.items():
            s = score(truths, results)
            lines.append(
                f"| {name} | {s['found']:.1f} | {s['accuracy']:.1f} | {s['on_found']:.1f} | "
                f"{s['extra']} | {' | '.join(s['bins'])} | {np.median(times):.0f} |"
            )
    print(
        f"\n{args.photos} group photos a set, {args.faces} faces each at {args.min_px}-"
        f"{args.max_px} px; {args.threads} thread(s); found and right in % of the faces (missed:"
        " wrong)\n"
    )
    columns = " | ".join(f"{h}: found / right" for h in heads)
    print(f"| system | found | right | right of found | extra | {columns} | ms per photo |")
    print("|---|---|---|---|---|" + "---|" * len(heads) + "---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
