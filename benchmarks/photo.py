"""Milliseconds per photo, end to end, for attnfer (each model and detector) and fer beside it.

One face per photo: FER2013 test faces placed into 512 x 512 photo-like JPEGs (``attnfer data
photos``' composition), enlarged to ``--side`` (4000: a phone photo's size). A photo's time is
``Recognizer.predict(jpeg bytes)``: decode, detect, align, classify, one photo at a time, as
``Recognizer(model, detector)`` does by default (int8 in onnxruntime, flip TTA). Then classification
alone, one view a crop (no TTA, as fer classifies), crops per second at batch 1 and 256, for the
int8 (where the model ships one), onnx (fp32) and torch backends; a model given as an ``.onnx`` file
(``attnfer export``, int8 with ``--calibrate``) runs as it is. With ``--fer-python`` (the python of
a venv holding fer 25.10.3: ``../shared/tools/fervenv.sh`` builds one) fer runs on the same photos
and crops in a subprocess, in the same run, with the same threads, once before attnfer and once
after; its time is the median over both runs, and each attnfer system's median is also given as a
share of it. attnfer's systems are timed in turns, photo by photo, so that a machine whose speed
drifts during the run (a shared virtual machine's can) weighs on all of them alike. Run it on a
quiet machine. ``--empty`` times photos without a face instead (smooth noise), where a detector
runs every pass it has.

    python benchmarks/photo.py [--photos 100] [--threads 1] [--fer-python /tmp/fervenv/bin/python]
        [--side 512] [--models default,fast] [--detectors all] [--empty]
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
from attnfer.errors import ModelError
from attnfer.faces import list_detectors
from attnfer.faces.compose import PhotoStyle, compose_photo
from attnfer.pretrained import shipped_int8
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


def make_photos(count: int, side: int = 512, empty: bool = False) -> tuple[list[bytes], np.ndarray]:
    """``count`` one-face 512 x 512 JPEGs (``empty``: smooth noise, no face), enlarged to
    ``side`` x ``side``, and the FER2013 test crops they hold (or would)."""
    test = load_dataset(DATASETS / "fer2013").split("test")
    crops = test.images[:count]
    photos = []
    for row, crop in enumerate(crops):
        rng = np.random.default_rng([7, row])
        if empty:
            noise = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
            photo = cv2.GaussianBlur(noise, (31, 31), 9)
        else:
            photo, _ = compose_photo(crop, rng, STYLE)
        if side != photo.shape[0]:
            photo = cv2.resize(photo, (side, side), interpolation=cv2.INTER_CUBIC)
        ok, data = cv2.imencode(".jpg", photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        assert ok
        photos.append(data.tobytes())
    return photos, crops


def time_photos(
    recognizers: dict[str, Recognizer], photos: list[bytes], repeats: int
) -> dict[str, tuple[list[float], int]]:
    """ms per photo and faces found for each recognizer, timed in turns (each photo by every
    recognizer before the next photo), so that a machine's speed drifting during the run weighs
    on all of them alike."""
    found = {
        name: sum(len(r.predict(p)) > 0 for p in photos)  # also warms up
        for name, r in recognizers.items()
    }
    times: dict[str, list[float]] = {name: [] for name in recognizers}
    for _ in range(repeats):
        for p in photos:
            for name, r in recognizers.items():
                start = time.perf_counter()
                r.predict(p)
                times[name].append(1000 * (time.perf_counter() - start))
    return {name: (times[name], found[name]) for name in recognizers}


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


def row(name: str, ms: list[float], found: int, count: int, crops: str, fer_ms: float) -> str:
    share = f"{100 * np.median(ms) / fer_ms:.0f} %" if fer_ms else ""
    return (
        f"| {name} | {np.median(ms):.1f} | {np.mean(ms):.1f} | {share} | {found}/{count} | "
        f"{crops} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="threads for every system")
    parser.add_argument("--models", default="default,fast")
    parser.add_argument("--detectors", default="all")
    parser.add_argument("--fer-python", help="python of a venv with fer 25.10.3")
    parser.add_argument("--side", type=int, default=512, help="photos enlarged to this side")
    parser.add_argument("--empty", action="store_true", help="photos without a face")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    cv2.setNumThreads(args.threads)
    photos, crops = make_photos(args.photos, args.side, args.empty)
    detectors = list_detectors() if args.detectors == "all" else args.detectors.split(",")
    fer_runs = [run_fer(args.fer_python, photos, crops, args.repeats)] if args.fer_python else []
    rates: dict[str, str] = {}
    recognizers: dict[str, Recognizer] = {}
    crop_rates: dict[str, str] = {}
    for model in args.models.split(","):
        per_backend = []
        backends = ("int8", "onnx", "torch") if shipped_int8(model) else ("onnx", "torch")
        for backend in ("onnx",) if model.endswith(".onnx") else backends:
            r = Recognizer(model, backend=backend, tta="none", bf16=False)
            one, many = crops_per_second(r, crops, 1), crops_per_second(r, crops, 256)
            per_backend.append(f"{backend}: {one:.0f} / {many:.0f}")
        rates[model] = "; ".join(per_backend)
        for detector in detectors:
            recognizer = Recognizer(model, detector=detector)
            try:
                recognizer.detector  # noqa: B018 (made now: one that is not installed fails here)
            except ModelError as exc:
                print(f"{model} with {detector}: skipped ({exc})", file=sys.stderr)
                continue
            name = f"attnfer {model}, {detector}, {recognizer.backend}"
            recognizers[name], crop_rates[name] = recognizer, rates[model]
    timed = time_photos(recognizers, photos, args.repeats)
    if args.fer_python:  # fer again after attnfer: its time is the median over both runs
        fer_runs.append(run_fer(args.fer_python, photos, crops, args.repeats))
    lines, fer_ms = [], 0.0
    if fer_runs:
        ms = [t for run in fer_runs for t in run["ms"]]
        fer_ms = float(np.median(ms))
        rate = " and ".join(f"{run['crops_per_s']:.0f}" for run in fer_runs)
        name = "fer 25.10.3 (Haar + mini-Xception)"
        lines.append(row(name, ms, fer_runs[0]["found"], len(photos), f"{rate} (batch 1)", fer_ms))
    for name, (ms, found) in timed.items():
        lines.append(row(name, ms, found, len(photos), crop_rates[name], fer_ms))
    size = f"{args.side} x {args.side}"
    faces = "no face" if args.empty else "one face each"
    print(f"\n{len(photos)} photos of {size}, {faces}; {args.threads} thread(s)\n")
    print(
        "| system | ms per photo (median) | mean | of fer's median | faces found "
        "| crops/s (batch 1 / 256) |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
