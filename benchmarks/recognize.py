"""Recognition speed: crops/s, ms per photo end to end, peak memory; the ``fer`` package beside it.

On ``--threads`` threads (default 2; PyTorch, onnxruntime and OpenCV alike): crops/s of the model
at each of ``--batches`` crops a call (default 1 and 256) with PyTorch (its default precision: bf16
where the CPU runs it fast, for calls of 8 crops or more; fp32; bf16; on a CPU without bf16
instructions the one PyTorch row is fp32) and ONNX (FER2013 test crops
when ``../shared/datasets`` has them,
random faces otherwise), ms per photo for ``Recognizer.predict(path)`` (decode, detection,
alignment, classification) on the shipped example (one face) and on six copies of it tiled into
one 1536 x 1024 JPEG (six faces), and the process's peak resident memory. The ``fer`` package
(its 64 x 64 classifier on the same crops) runs in the Python given by ``--fer-python``, where
``pip install fer`` worked (it needs TensorFlow), or in this one if it has ``fer``. Usage:

    python benchmarks/recognize.py [--model default] [--threads 2] [--batches 1,256]
        [--fer-python PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from attnfer.faces import fit_to_input
from attnfer.precision import bf16_is_fast
from attnfer.recognize import Recognizer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut.jpg"
FER_TEST = ROOT.parent / "shared" / "datasets" / "fer2013" / "test"

FER_SCRIPT = """
import json, os, sys, time
threads = sys.argv[2]
os.environ.update(TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS=threads,
                  TF_NUM_INTRAOP_THREADS=threads, TF_NUM_INTEROP_THREADS="1")
import cv2, numpy as np, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(int(threads))
tf.config.threading.set_inter_op_parallelism_threads(1)
from fer.fer import FER
crops = np.load(sys.argv[1])
faces = np.stack([cv2.resize(c, (64, 64)) for c in crops]).astype("float32") / 255.0
faces = (faces - 0.5) * 2.0  # fer's own preprocessing

def rate(run, batch):
    run(faces[:batch])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < 3:
        for i in range(0, len(faces), batch):
            run(faces[i:i + batch])
            done += len(faces[i:i + batch])
    return done / (time.perf_counter() - start)

out = {}
tflite = FER()  # fer's default: its quantised TFLite model, one face at a time
out["tflite (fer's default), one at a time"] = rate(tflite._classify_emotions, len(faces))
keras = FER(use_tflite=False)
out["keras, batch 256"] = rate(lambda x: keras._classify_emotions(x[..., None]), 256)
print(json.dumps(out))
"""


def sample_crops(n: int = 256) -> np.ndarray:
    """``n`` FER2013 test crops (uint8, 48 x 48) across classes; random ones without the data."""
    files = sorted(FER_TEST.glob("*/*.jpg"))
    if len(files) < n:
        return np.random.default_rng(0).integers(0, 256, (n, 48, 48), dtype=np.uint8)
    return np.stack([np.asarray(Image.open(f).convert("L")) for f in files[:: len(files) // n][:n]])


def per_second(run: Callable[[], int], seconds: float = 3.0) -> float:
    """Items per second of ``run`` (which returns how many it did), after one warm-up call."""
    run()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += run()
    return done / (time.perf_counter() - start)


def crops_per_second(recognizer: Recognizer, crops: np.ndarray, batch: int) -> float:
    """Model throughput (preprocessing + forward + softmax) at ``batch`` crops per call."""
    state = {"i": 0}
    size, channels = recognizer.preprocess.size, recognizer.preprocess.channels
    fitted = np.stack([fit_to_input(c, size, channels) for c in crops])

    def run() -> int:
        start = state["i"] % len(fitted)
        state["i"] += batch
        chunk = fitted[start : start + batch]
        recognizer.probabilities(chunk)
        return len(chunk)

    return per_second(run)


def ms_per_photo(recognizer: Recognizer, path: Path) -> tuple[float, int]:
    """Mean ms of ``predict(path)`` and the number of faces found."""

    def run() -> int:
        recognizer.predict(path)
        return 1

    return 1000 / per_second(run), len(recognizer.predict(path))


def six_faces(folder: Path) -> Path:
    """Six copies of the example photo in a 3 x 2 grid, as one JPEG."""
    one = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    grid = np.vstack([np.hstack([one] * 3)] * 2)
    path = folder / "six_faces.jpg"
    Image.fromarray(grid).save(path, quality=92)
    return path


def fer_rates(python: str | None, crops: np.ndarray, threads: int) -> dict[str, float] | str:
    """crops/s of the ``fer`` package's classifier, or why it was not measured."""
    if python is None:
        if importlib.util.find_spec("fer") is None:
            return "not installed here; give --fer-python, a Python where `pip install fer` worked"
        python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "crops.npy", crops)
        proc = subprocess.run(
            [python, "-c", FER_SCRIPT, str(Path(tmp) / "crops.npy"), str(threads)],
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        return "failed: " + proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", default="1,256", help="Comma-separated crops per call.")
    parser.add_argument("--fer-python", default=os.environ.get("FER_PYTHON"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    crops = sample_crops()
    print(f"model {args.model}, {args.threads} threads, torch {torch.__version__}")
    recognizers = {
        "PyTorch": Recognizer(args.model),
        "PyTorch fp32": Recognizer(args.model, bf16=False),
        "PyTorch bf16": Recognizer(args.model, bf16=True),
        "ONNX": Recognizer(args.model, backend="onnx"),
    }
    if not bf16_is_fast(torch.device("cpu")):
        print(
            "no bf16 instructions on this CPU: PyTorch runs fp32, its fp32 and bf16 rows left out"
        )
        del recognizers["PyTorch bf16"], recognizers["PyTorch fp32"]
    for name, recognizer in recognizers.items():
        for batch in map(int, args.batches.split(",")):
            rate = crops_per_second(recognizer, crops, batch)
            print(f"{name:12s} batch {batch:3d}: {rate:8.1f} crops/s")
    with tempfile.TemporaryDirectory() as tmp:
        photos = {"one face": EXAMPLE, "six faces": six_faces(Path(tmp))}
        for name, recognizer in recognizers.items():
            for label, path in photos.items():
                ms, found = ms_per_photo(recognizer, path)
                size = "x".join(map(str, Image.open(path).size))
                print(f"{name:12s} {label} ({size}, {found} found): {ms:7.1f} ms per photo")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (the recognizers above loaded): {peak:.0f} MB")
    fer = fer_rates(args.fer_python, crops, args.threads)
    if isinstance(fer, str):
        print(f"fer: {fer}")
    for name, rate in ({} if isinstance(fer, str) else fer).items():
        print(f"fer {name}: {rate:8.1f} crops/s")


if __name__ == "__main__":
    main()
