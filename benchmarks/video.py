"""Video recognition speed: frames/s with one face, detection every N frames, per frame size.

For each ``--sizes`` (default 640x480 and 1920x1080) writes a 10 s, 25 fps H.264 video of the
example photo (one face, half the frame's height) moving across a plain background, then times
``iter_video`` over it on ``--threads`` threads (PyTorch and OpenCV): decoding, face detection
every N frames (on the frame shrunk to 480 pixels on its longer side, as ``attnfer video`` does)
and tracking in between, alignment, classification in batches and smoothing. Decoding alone is
timed too. The target is real time, at least 25 frames/s. Frames per CPU second (the process's
CPU time over all its threads) is printed beside it; with one thread it bounds the rate on an
idle core from below, so it stays meaningful when other work shares the cores (with more
threads, threads waiting on each other spin and inflate the CPU time). The model is ``--model``
(a shipped name, run folder or weights file; default: the shipped default). Usage:

    python benchmarks/video.py [--every 5 10] [--threads 2] [--model default] [--sizes 1920x1080]
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
FPS, SECONDS = 25, 10


def make_video(path: Path, width: int, height: int) -> Path:
    """The example photo (a square of half the height) gliding left to right over gray."""
    side = height // 2
    photo = np.asarray(Image.open(EXAMPLE).convert("RGB").resize((side, side), Image.BICUBIC))
    frames = FPS * SECONDS
    top = (height - side) // 2
    with VideoWriter(path, FPS) as writer:
        for k in range(frames):
            frame = np.full((height, width, 3), 128, np.uint8)
            x = k * (width - side) // (frames - 1)
            frame[top : top + side, x : x + side] = photo
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
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1920x1080"], help="WxH")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    recognizer = Recognizer(args.model, faces="detect")
    recognizer.probabilities(np.zeros((1, 48, 48), np.uint8))  # warm-up
    print(f"model: {args.model} ({resolve(args.model)}); {args.threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            width, height = map(int, size.split("x"))
            video = make_video(Path(tmp) / f"one_face_{size}.mp4", width, height)
            print(f"{size}: decoding alone: {decode_rate(video):.0f} frames/s")
            for every in args.every:
                rate, per_cpu, tracks = recognition_rate(recognizer, video, every)
                verdict = "meets" if rate >= 25 else "misses"
                print(
                    f"{size}, 1 face, detection every {every} frames: {rate:.1f} frames/s "
                    f"({verdict} the 25 frames/s target; {per_cpu:.1f} frames per CPU second; "
                    f"{tracks} track id(s))"
                )


if __name__ == "__main__":
    main()
