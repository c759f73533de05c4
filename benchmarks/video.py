"""Video recognition speed: frames/s at 640 x 480 with one face, detection every N frames.

Writes a 10 s, 25 fps, 640 x 480 H.264 video of the example photo (one face) moving across a
plain background, then times ``iter_video`` over it on ``--threads`` threads (PyTorch and
OpenCV): decoding, face detection every N frames and tracking in between, alignment,
classification in batches and smoothing. Decoding alone is timed too. The target is real time,
at least 25 frames/s. Frames per CPU second (the process's CPU time over all its threads) is
printed beside it; with one thread it bounds the rate on an idle core from below, so it stays
meaningful when other work shares the cores (with more threads, threads waiting on each other
spin and inflate the CPU time). The model is ``--model`` (a shipped name, run folder or weights
file; default: the shipped default). Usage:

    python benchmarks/video.py [--every 5 10] [--threads 2] [--model default]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from attnfer.pretrained import resolve
from attnfer.recognize import Recognizer
from attnfer.video import VideoReader, VideoWriter, iter_video

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut.jpg"
WIDTH, HEIGHT, FPS, SECONDS = 640, 480, 25, 10


def make_video(path: Path) -> Path:
    """The example photo (320 px) gliding left to right over a gray background."""
    photo = np.asarray(Image.open(EXAMPLE).convert("RGB").resize((320, 320), Image.BICUBIC))
    frames = FPS * SECONDS
    with VideoWriter(path, FPS) as writer:
        for k in range(frames):
            frame = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
            x = k * (WIDTH - 320) // (frames - 1)
            frame[80:400, x : x + 320] = photo
            writer.write(frame)
    return path


def decode_rate(path: Path) -> float:
    start = time.perf_counter()
    with VideoReader(path) as reader:
        n = sum(1 for _ in reader)
    return n / (time.perf_counter() - start)


def recognition_rate(recognizer: Recognizer, path: Path, every: int) -> tuple[float, float, int]:
    """Frames per second of per-frame recognition, frames per CPU second (this process, all
    threads), and the number of track ids seen."""
    ids: set[int] = set()
    start, cpu, n = time.perf_counter(), time.process_time(), 0
    for result in iter_video(recognizer, path, every=every, smooth=5):
        ids.update(face.track_id for face in result.faces)
        n += 1
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return n / wall, n / cpu, len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, nargs="+", default=[5], help="detect every N frames")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "one_face.mp4")
        recognizer = Recognizer(args.model, faces="detect")
        recognizer.probabilities(np.zeros((1, 48, 48), np.uint8))  # warm-up
        print(f"model: {args.model} ({resolve(args.model)}); {args.threads} threads")
        print(f"decoding alone: {decode_rate(video):.0f} frames/s")
        for every in args.every:
            rate, per_cpu, tracks = recognition_rate(recognizer, video, every)
            verdict = "meets" if rate >= 25 else "misses"
            print(
                f"{WIDTH}x{HEIGHT}, 1 face, detection every {every} frames: {rate:.1f} frames/s "
                f"({verdict} the 25 frames/s target; {per_cpu:.1f} frames per CPU second; "
                f"{tracks} track id(s))"
            )


if __name__ == "__main__":
    main()
