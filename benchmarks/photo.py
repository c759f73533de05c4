"""Milliseconds per photo, end to end, for attnfer (each model and detector) and fer beside it.

One face per photo: FER2013 test faces placed into 512 x 512 photo-like JPEGs (``attnfer data
photos``' composition). A photo's time is ``Recognizer.predict(jpeg bytes)``: decode, detect,
align, classify, one photo at a time, as ``Recognizer(model, detector)`` does by default (int8
in onnxruntime, flip TTA). Then classification alone, one view a crop (no TTA, as fer
classifies), crops per second at batch 1 and 256, for the int8, onnx (fp32) and torch backends.
With ``--fer-python`` (the python of a venv holding fer 25.10.3: ``../shared/tools/fervenv.sh``
builds one) fer runs on the same photos and crops in a subprocess, in the same run, with the
same threads. Run it on a quiet machine.

    python benchmarks/photo.py [--photos 100] [--threads 1] [--fer-python /tmp/fervenv/bin/python]
"""

from __future__ import annotations

import argparse
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

from attnfer.data.readers import load_dataset
from attnfer.faces import list_detectors
from attnfer.faces.compose import PhotoStyle, compose_photo
from attnfer.recognize import Recognizer

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
STYLE = PhotoStyle(min_side=512, max_side=512, min_face=0.3, max_face=0.6)

FER_SCRIPT = """
import json, sys, time, cv2, numpy as np
from fer.fer import FER
folder, repeats = sys.argv[1], int(sys.argv[2])
photos = [open(f"{folder}/{i:04d}.jpg", "rb").read() for i in range(int(sys.argv[3]))]
crops = np.load(f"{folder}/crops.npy")
fer = FER()
def photo(data):
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return len(fer.detect_emotions(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
found = sum(photo(p) > 0 for p in photos)
times = []
for _ in range(repeats):
    for p in photos:
        t = time.perf_counter(); photo(p); times.append(time.perf_counter() - t)
rgb = [cv2.cvtColor(c, cv2.COLOR_GRAY2RGB) for c in crops]
for c in rgb[:10]:
    fer.detect_emotions(c, face_rectangles=[(0, 0, 48, 48)])
t = time.perf_counter()
for c in rgb:
    fer.detect_emotions(c, face_rectangles=[(0, 0, 48, 48)])
crop_rate = len(rgb) / (time.perf_counter() - t)
print(json.dumps({"ms": [1000 * s for s in times], "found": found, "crops_per_s": crop_rate}))
"""


def make_photos(count: int) -> tuple[list[bytes], np.ndarray]:
    """``count`` one-face 512 x 512 JPEGs and the FER2013 test crops they hold."""
    test = load_dataset(DATASETS / "fer2013").split("test")
    crops = test.images[:count]
    photos = []
    for row, crop in enumerate(crops):
        photo, _ = compose_photo(crop, np.random.default_rng([7, row]), STYLE)
        ok, data = cv2.imencode(".jpg", photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        assert ok
        photos.append(data.tobytes())
    return photos, crops


def time_photos(recognizer: Recognizer, photos: list[bytes], repeats: int) -> tuple[list, int]:
    found = sum(len(recognizer.predict(p)) > 0 for p in photos)  # also warms up
    times = []
    for _ in range(repeats):
        for p in photos:
            start = time.perf_counter()
            recognizer.predict(p)
            times.append(time.perf_counter() - start)
    return [1000 * t for t in times], found


def crops_per_second(recognizer: Recognizer, crops: np.ndarray, batch: int) -> float:
    stack = np.resize(crops, (max(batch, len(crops)), *crops.shape[1:]))
    calls = [stack[i : i + batch] for i in range(0, len(stack) - batch + 1, batch)]
    recognizer.probabilities(calls[0])
    start = time.perf_counter()
    for call in calls:
        recognizer.probabilities(call)
    return len(calls) * batch / (time.perf_counter() - start)


def run_fer(python: str, photos: list[bytes], crops: np.ndarray, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        for i, data in enumerate(photos):
            Path(folder, f"{i:04d}.jpg").write_bytes(data)
        np.save(Path(folder, "crops.npy"), crops)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
        done = subprocess.run(
            [python, "-c", FER_SCRIPT, folder, str(repeats), str(len(photos))],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"fer failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def row(name: str, ms: list[float], found: int, count: int, crops: str) -> str:
    return f"| {name} | {np.median(ms):.1f} | {np.mean(ms):.1f} | {found}/{count} | {crops} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="threads for every system")
    parser.add_argument("--models", default="default,fast")
    parser.add_argument("--detectors", default="all")
    parser.add_argument("--fer-python", help="python of a venv with fer 25.10.3")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    cv2.setNumThreads(args.threads)
    photos, crops = make_photos(args.photos)
    detectors = list_detectors() if args.detectors == "all" else args.detectors.split(",")
    lines = []
    if args.fer_python:
        fer = run_fer(args.fer_python, photos, crops, args.repeats)
        lines.append(row("fer 25.10.3 (Haar + mini-Xception)", fer["ms"], fer["found"],
                         len(photos), f"{fer['crops_per_s']:.0f} (batch 1)"))  # fmt: skip
    for model in args.models.split(","):
        rates = []
        for backend in ("int8", "onnx", "torch"):
            r = Recognizer(model, backend=backend, tta="none", bf16=False)
            one, many = crops_per_second(r, crops, 1), crops_per_second(r, crops, 256)
            rates.append(f"{backend}: {one:.0f} / {many:.0f}")
        for detector in detectors:
            try:
                recognizer = Recognizer(model, detector=detector)
                ms, found = time_photos(recognizer, photos, args.repeats)
            except Exception as exc:  # a detector that is not installed
                print(f"{model} with {detector}: skipped ({exc})", file=sys.stderr)
                continue
            name = f"attnfer {model}, {detector}, {recognizer.backend}"
            lines.append(row(name, ms, found, len(photos), "; ".join(rates)))
    print(f"\n{len(photos)} photos of 512 x 512, one face each; {args.threads} thread(s)\n")
    print("| system | ms per photo (median) | mean | faces found | crops/s (batch 1 / 256) |")
    print("|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
