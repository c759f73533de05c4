"""Load test of ``attnfer serve``: concurrent clients post a photo to /v1/predict for a while.

Each of ``--clients`` httpx async clients, with a connection of its own, posts the example
photo (one face, 512 x 512) and, as soon as the answer comes, posts it again, for ``--seconds``;
requests still running then are waited for. Prints requests/s, p50 and p99 latency in ms, the
mean number of images per model call (the micro-batcher's batches) and the error count; exits 1
on any error or when nothing completed. ``--face-crop`` posts the photo's face region instead
(88 x 114 px: a face crop, so the server skips detection and runs only the model). Without
``--url``, it starts ``attnfer serve`` on a free loopback port in a subprocess, passing
``--model``, ``--batch-size``, ``--max-wait-ms`` and ``--workers`` on, and stops it at the end.
Usage:

    python benchmarks/serve_load.py [--clients 50] [--seconds 30] [--url http://127.0.0.1:8000]
                                    [--face-crop] [--model default] [--batch-size 8]
                                    [--max-wait-ms 2] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut.jpg"
FACE_BOX = (179, 60, 267, 174)  # where attnfer finds the face in the example
START_TIMEOUT_S = 120


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _client(url: str, data: bytes, stop_at: float, tally: Tally) -> None:
    """One client with its own connection, posting back to back until ``stop_at``."""
    # its connection expires when idle before the server closes it (uvicorn: after 5 s), so no
    # request goes out on a connection the server is closing
    limits = httpx.Limits(max_connections=1, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            try:
                response = await http.post("/v1/predict", files={"file": ("face.jpg", data)})
            except httpx.HTTPError as exc:
                tally.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if response.status_code != 200:
                tally.errors.append(f"{response.status_code}: {response.text[:200]}")
                continue
            tally.latencies_ms.append(1000 * (time.perf_counter() - start))
            tally.batch_sizes.append(response.json()["batch_size"])


async def run_load(url: str, data: bytes, clients: int, seconds: float) -> tuple[Tally, float]:
    """The requests' tally and the wall time they took (including the last ones' tail)."""
    tally = Tally()
    start = time.perf_counter()
    await asyncio.gather(*(_client(url, data, start + seconds, tally) for _ in range(clients)))
    return tally, time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def local_server(
    model: str, batch_size: int, max_wait_ms: float, workers: int | None = None
) -> Iterator[tuple[str, int]]:
    """``attnfer serve`` on a free loopback port, up and answering: its URL and process id. Its
    log goes to a file."""
    port = _free_port()
    command = [sys.executable, "-m", "attnfer", "serve", "--port", str(port), "--model", model]
    command += ["--batch-size", str(batch_size), "--max-wait-ms", str(max_wait_ms)]
    command += [] if workers is None else ["--workers", str(workers)]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise SystemExit(f"the server did not start:\n{log.read()[-2000:]}")
                try:
                    if httpx.get(f"{url}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            yield url, server.pid
        finally:
            server.terminate()
            server.wait(timeout=30)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[round(q / 100 * (len(ordered) - 1))]


def _image(face_crop: bool) -> bytes:
    if not face_crop:
        return EXAMPLE.read_bytes()
    from PIL import Image

    out = io.BytesIO()
    Image.open(EXAMPLE).crop(FACE_BOX).save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--url", help="a running server (default: start one on loopback)")
    parser.add_argument("--face-crop", action="store_true", help="post the face region only")
    parser.add_argument("--model", default="default", help="for the server it starts")
    parser.add_argument("--batch-size", type=int, default=8, help="for the server it starts")
    parser.add_argument("--max-wait-ms", type=float, default=2.0, help="for the server it starts")
    parser.add_argument("--workers", type=int, help="for the server it starts (default: its own)")
    args = parser.parse_args()

    data = _image(args.face_crop)
    if args.url:
        tally, wall = asyncio.run(run_load(args.url, data, args.clients, args.seconds))
    else:
        server = local_server(args.model, args.batch_size, args.max_wait_ms, args.workers)
        with server as (url, _):
            tally, wall = asyncio.run(run_load(url, data, args.clients, args.seconds))
    done = len(tally.latencies_ms)
    print(f"{args.clients} clients, {wall:.1f} s: {done} requests, {done / wall:.1f} requests/s")
    if done:
        p50, p99 = _percentile(tally.latencies_ms, 50), _percentile(tally.latencies_ms, 99)
        batch = statistics.fmean(tally.batch_sizes)
        print(f"latency p50 {p50:.0f} ms, p99 {p99:.0f} ms; mean batch {batch:.1f}")
    print(f"{len(tally.errors)} errors")
    for error in sorted(set(tally.errors))[:5]:
        print(f"  {error}")
    if tally.errors or not done:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
