"""Train recipes side by side on a lent GPU within one call of the device tool (DEVELOPERS.md).

Runs on the GPU machine, from the repo root, with that machine's python3 (PyTorch, Lightning):

    python3 tools/gpu_train.py --out $OUT --deadline 540 \\
        plain=recipes/gpu/resnet18_cbam_fer2013.yaml \\
        "teacher=recipes/gpu/resnet18_cbam_fer2013.yaml loss.soft_labels=0.5 loss.label_smoothing=0"

Each ``"NAME=RECIPE [key=value ...]"`` is one ``attnfer train`` process; all run at once, as one
small model leaves most of the GPU idle. First a warm-up of every run (``--warmup`` epochs,
compilation included) times an epoch under that shared load; then the real runs get as many
epochs as end before ``--deadline`` seconds from the start (at most the recipe's own), stop
at that time if their epochs run slower (keeping the best epoch so far), and leave in
``--out``: each run's fp16 weights in parts of 15 MiB (the device tool returns files of at
most 16: ``cat NAME.safetensors.part* > NAME.safetensors``) and ``logs.tar.gz`` (every
attempt's log, metrics, curves and recipe). Needs only the standard library besides attnfer,
which it imports from this checkout's ``src/``.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

START = time.monotonic()
SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))
EPOCH_LINE = re.compile(r"epoch (\d+)/(\d+)\s")
PART_BYTES = 15 * 2**20


class Run:
    """One ``attnfer train`` process whose epoch lines are timed as they arrive."""

    def __init__(
        self, name: str, recipe: str, sets: list[str], epochs: int, folder: Path, threads: int
    ):
        self.name = name
        cmd = [sys.executable, "-m", "attnfer", "train", "--config", recipe, "--out", str(folder)]
        for item in [*sets, f"trainer.epochs={epochs}"]:
            cmd += ["--set", item]
        path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
        env["OMP_NUM_THREADS"] = str(threads)  # never more threads than cores, all runs together
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.epoch_times: list[float] = []
        self.log = folder.with_suffix(".log")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        """Copy the output to the log, progress-bar updates left out, and time each epoch."""
        with self.log.open("w") as log:
            for line in io.TextIOWrapper(self.proc.stdout, newline=""):  # \r ends a line too
                if EPOCH_LINE.search(line):
                    self.epoch_times.append(time.monotonic())
                if "it/s" not in line and "s/it" not in line and line.strip():
                    log.write(line.rstrip("\r\n") + "\n")
                    log.flush()

    def wait(self) -> None:
        code = self.proc.wait()
        self.reader.join()
        if code != 0:
            tail = self.log.read_text().splitlines()[-15:]
            raise SystemExit(f"{self.name} failed ({code}):\n" + "\n".join(tail))


def parse_runs(specs: list[str]) -> list[tuple[str, str, list[str]]]:
    runs = []
    for spec in specs:
        name, sep, rest = spec.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise SystemExit(f"{spec!r}: expected 'NAME=RECIPE [key=value ...]'")
        recipe, *sets = rest.split()
        runs.append((name, recipe, sets))
    return runs


def recipe_epochs(recipe: str, sets: list[str]) -> int:
    """The recipe's epochs; a bad recipe stops the tool before any training."""
    from attnfer.errors import ConfigError
    from attnfer.train.config import load_recipe

    try:
        return load_recipe(recipe, sets).total_epochs
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None


def warm_up(runs, epochs: int, root: Path, threads: int) -> tuple[float, float]:
    """Every run for ``epochs`` epochs at once; returns (seconds to the first epoch, seconds an
    epoch afterwards), the slowest run's."""
    started = time.monotonic()
    procs = [Run(name, r, s, epochs, root / f"warmup_{name}", threads) for name, r, s in runs]
    for proc in procs:
        proc.wait()
    first = max(p.epoch_times[0] - started for p in procs)
    per_epoch = max((p.epoch_times[-1] - p.epoch_times[0]) / (epochs - 1) for p in procs)
    return first, per_epoch


def split_into_parts(path: Path, out: Path) -> list[Path]:
    data, parts = path.read_bytes(), []
    for i in range(0, len(data), PART_BYTES):
        part = out / f"{path.name}.part{i // PART_BYTES:02d}"
        part.write_bytes(data[i : i + PART_BYTES])
        parts.append(part)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="'NAME=RECIPE [key=value ...]'")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_out")))
    parser.add_argument("--deadline", type=float, default=540, help="seconds from the start")
    parser.add_argument("--warmup", type=int, default=3, help="epochs of the timing run (>= 2)")
    parser.add_argument("--work", type=Path, default=Path("runs/gpu"), help="run folders")
    args = parser.parse_args()
    runs = parse_runs(args.runs)
    most = {name: recipe_epochs(recipe, sets) for name, recipe, sets in runs}
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)

    threads = max(1, (os.cpu_count() or 1) // len(runs))  # the runs share the CPU cores
    first, per_epoch = warm_up(runs, max(args.warmup, 2), args.work, threads)
    left = args.deadline - (time.monotonic() - START) - first - 30  # restart, export, margin
    budget = math.floor(left / (1.1 * per_epoch))  # 10 % for epochs slower than the warm-up's
    print(f"warm-up: {first:.0f} s to the first epoch, then {per_epoch:.2f} s an epoch", flush=True)
    procs = []
    for name, recipe, sets in runs:
        epochs = min(most[name], budget)
        if epochs < 1:
            raise SystemExit(f"no time left for {name}: {left:.0f} s, {per_epoch:.1f} s an epoch")
        print(f"{name}: {epochs} epochs", flush=True)
        guard = [*sets, f"trainer.max_minutes={left / 60:.4g}"]  # a slow epoch cannot cost it all
        procs.append(Run(name, recipe, guard, epochs, args.work / name, threads))
    for proc in procs:
        proc.wait()

    for name, _, _ in runs:
        weights = args.work / f"{name}.safetensors"
        subprocess.run(
            [sys.executable, "-m", "attnfer", "export", "--model", str(args.work / name),
             "--format", "safetensors", "--half", "--out", str(weights)],
            check=True,
        )  # fmt: skip
        for part in split_into_parts(weights, args.out):
            print(f"wrote {part} ({part.stat().st_size / 1e6:.1f} MB)")
    with tarfile.open(args.out / "logs.tar.gz", "w:gz") as tar:
        for path in sorted(args.work.rglob("*")):
            if path.is_file() and path.suffix in {".log", ".csv", ".png", ".json"}:
                tar.add(path, arcname=str(path.relative_to(args.work)))
    print(f"done in {time.monotonic() - START:.0f} s", flush=True)


if __name__ == "__main__":
    main()
