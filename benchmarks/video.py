"""Video recognition speed: frames/s with one face, detection every N frames, per frame size.

For each ``--sizes`` (default 640x480 and 1920x1080) writes a 10 s, 25 fps H.264 video of the
example photo (one face, half the frame's height) moving across a plain background (with
``--gallery COLSxROWS``, a video call's gallery view instead: the photo in every tile of the grid,
its face about a quarter of a tile's height, each tile swaying a little), then times
``iter_video`` over it on ``--threads`` threads (PyTorch and OpenCV): decoding, face detection
every N frames (on the frame shrunk to 480 pixels on its longer side, as ``attnfer video`` does)
and tracking in between, alignment, classification in batches and smoothing. Decoding alone is
timed too. The target is real time, at least 25 frames/s. Frames per CPU second (the process's
CPU time over all its threads) is printed beside it; with one thread it bounds the rate on an
idle core from below, so it stays meaningful when other work shares the cores (with more
threads, threads waiting on each other spin and inflate the CPU time). The model is ``--model``
(a shipped name, run folder or weights file; default: the shipped default). Faces per frame
(mean) and track ids say how many of the faces were found. Usage:

    python benchmarks/video.py [--every 5 10] [--threads 2] [--model default] [--sizes 1920x1080]
        [--gallery 5x5] [--detect-side 480]
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
from attnfer.video.stream import detection_side

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut.jpg"
FPS, SECONDS = 25, 10


def make_video(path: Path, width: int, height: int, gallery: tuple[int, int] | None) -> Path:
    """The example photo (a square of half the height) gliding left to right over gray; or, with
    ``gallery`` (columns, rows), the photo in every tile of that grid, swaying."""
    frames = FPS * SECONDS
    cols, rows = gallery or (1, 1)
    side = height // 2 if gallery is None else min(width // cols, height // rows)
    photo = np.asarray(Image.open(EXAMPLE).convert("RGB").resize((side, side), Image.BICUBIC))
    with VideoWriter(path, FPS) as writer:
        for k in range(frames):
            frame = np.full((height, width, 3), 128 if gallery is None else 40, np.uint8)
            if gallery is None:
                x, top = k * (width - side) // (frames - 1), (height - side) // 2
                frame[top : top + side, x : x + side] = photo
            for row in range(rows if gallery else 0):
                for col in range(cols):
                    sway = round(0.1 * side * np.sin(k / 12 + row * cols + col))
                    x = col * width // cols + (width // cols - side) // 2 + sway
                    y = row * height // rows + (height // rows - side) // 2
                    x = min(max(x, 0), width - side)
                    frame[y : y + side, x : x + side] = photo
            writer.write(frame)
    return path


def decode_rate(path: Path) -> float:
    start = time.perf_counter()
    with VideoReader(path) as reader:
        n = sum(1 for _ in reader)
    return n / (time.perf_counter() - start)


def recognition_rate(
    recognizer: Recognizer, path: Path, every: int, detect_side: int | None
) -> tuple[float, float, float, int]:
    """Frames per second of per-frame recognition, frames per CPU second (this process, all
    threads), faces per frame (mean) and the number of track ids seen."""
    ids: set[int] = set()
    start, cpu, n, faces = time.perf_counter(), time.process_time(), 0, 0
    for result in iter_video(recognizer, path, every=every, smooth=5, detect_side=detect_side):
        ids.update(face.track_id for face in result.faces)
        n += 1
        faces += len(result.faces)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return n / wall, n / cpu, faces / max(1, n), len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, nargs="+", default=[5], help="detect every N frames")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="default")
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1920x1080"], help="WxH")
    parser.add_argument("--gallery", help="COLSxROWS: a gallery view of that grid of faces")
    parser.add_argument("--detect-side", type=int, help="default: as attnfer video (auto)")
    args = parser.parse_args()
    gallery = tuple(map(int, args.gallery.split("x"))) if args.gallery else None
    shown = f"{gallery[0] * gallery[1]} faces" if gallery else "1 face"
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    recognizer = Recognizer(args.model, faces="detect")
    recognizer.probabilities(np.zeros((1, 48, 48), np.uint8))  # warm-up
    print(f"model: {args.model} ({resolve(args.model)}); {args.threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            width, height = map(int, size.split("x"))
            video = make_video(Path(tmp) / f"video_{size}.mp4", width, height, gallery)
            print(f"{size}: decoding alone: {decode_rate(video):.0f} frames/s")
            side = args.detect_side or detection_side(width, height)
            for every in args.every:
                rate, per_cpu, faces, tracks = recognition_rate(
                    recognizer, video, every, args.detect_side
                )
                verdict = "meets" if rate >= 25 else "misses"
                print(
                    f"{size}, {shown}, detection every {every} frames at {side} px: "
                    f"{rate:.1f} frames/s ({verdict} the 25 frames/s target; {per_cpu:.1f} frames"
                    f" per CPU second; {faces:.1f} faces a frame, {tracks} track id(s))"
                )


if __name__ == "__main__":
    main()
