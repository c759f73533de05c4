"""Hostile traffic against ``attnfer serve``: what its memory and its health check do.

Starts ``attnfer serve`` (default settings, the default model) on a free loopback port, or uses
``--url`` with ``--pid`` (the server's process id, to read its memory), and runs in turn:

1. ``Content-Length: 100`` with a chunked body of ``--chunked-mb`` MB: the answer, how much of
   the body went out before the server closed the connection, and the server's memory growth;
2. ``--bombs`` concurrent posts of a 6300 x 6300 1-bit PNG (4.9 KB, 39.7 MP decoded): their
   statuses, the server's peak memory (resident, sampled every 50 ms) and the slowest
   ``/healthz`` answer meanwhile;
3. ``Host: attacker.example``: the status;
4. a client sending a byte a second: how long until the server closes the connection.

Usage: ``python benchmarks/serve_hostile.py [--bombs 16] [--chunked-mb 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from PIL import Image
from serve_load import local_server

BOMB_SIDE = 6300


def rss_mb(pid: int) -> float:
    """The process's resident memory in MB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for process {pid}")


def chunked_with_length(host: str, port: int, megabytes: int, pid: int) -> None:
    before = rss_mb(pid)
    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"100000\r\n" + bytes(1 << 20) + b"\r\n"
    sent = 0
    with socket.create_connection((host, port)) as sock:
        sock.sendall(head)
        sock.settimeout(10)
        answer = sock.recv(65536).split(b"\r\n", 1)[0].decode()
        try:
            for _ in range(megabytes):
                sock.sendall(chunk)
                sent += 1
        except OSError:
            pass
    print(
        f"Content-Length 100 + chunked {megabytes} MB: {answer!r}; {sent} MB went out before "
        f"the server closed the connection; server memory {before:.0f} -> {rss_mb(pid):.0f} MB"
    )


def bomb() -> bytes:
    out = io.BytesIO()
    Image.new("1", (BOMB_SIDE, BOMB_SIDE)).save(out, "PNG")
    return out.getvalue()


async def bombs(url: str, count: int, pid: int) -> None:
    data = bomb()
    peak, health, done = rss_mb(pid), [0.0], threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(pid))
            time.sleep(0.05)

    async def check_health(http: httpx.AsyncClient) -> None:
        while not done.is_set():
            start = time.perf_counter()
            await http.get("/healthz")
            health.append(time.perf_counter() - start)
            await asyncio.sleep(0.1)

    async def post(http: httpx.AsyncClient) -> int:
        response = await http.post("/v1/predict", files={"file": ("bomb.png", data)})
        return response.status_code

    before = rss_mb(pid)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    limits = httpx.Limits(max_connections=count + 1)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
        watcher = asyncio.create_task(check_health(http))
        statuses = await asyncio.gather(*(post(http) for _ in range(count)))
        done.set()
        await watcher
    sampler.join()
    seconds = time.perf_counter() - start
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(
        f"{count} concurrent {BOMB_SIDE} x {BOMB_SIDE} 1-bit PNGs ({len(data) / 1000:.1f} KB "
        f"each): statuses {counts} in {seconds:.1f} s; server memory {before:.0f} MB, peak "
        f"{peak:.0f} MB, after {rss_mb(pid):.0f} MB; slowest /healthz {max(health):.2f} s"
    )


def attacker_host(url: str) -> None:
    response = httpx.get(f"{url}/v1/models", headers={"Host": "attacker.example"})
    print(f"Host: attacker.example: {response.status_code} {response.json()['detail'][:60]}...")


def trickle(host: str, port: int) -> None:
    start = time.monotonic()
    with socket.create_connection((host, port)) as sock:
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: localhost\r\nContent-Length: 999\r\n\r\n")
        sock.settimeout(1)
        while time.monotonic() - start < 120:
            try:
                sock.sendall(b"x")
                if sock.recv(1) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
    print(
        f"a byte a second: the server closed the connection after {time.monotonic() - start:.1f} s"
    )


def run(url: str, pid: int, args: argparse.Namespace) -> None:
    address = urlsplit(url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    print(f"server process {pid}: {rss_mb(pid):.0f} MB at start")
    chunked_with_length(host, port, args.chunked_mb, pid)
    asyncio.run(bombs(url, args.bombs, pid))
    attacker_host(url)
    trickle(host, port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bombs", type=int, default=16)
    parser.add_argument("--chunked-mb", type=int, default=200)
    parser.add_argument("--url", help="a running server (default: start one on loopback)")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id")
    args = parser.parse_args()
    if args.url:
        if args.pid is None:
            raise SystemExit("--url needs --pid, to read the server's memory")
        run(args.url, args.pid, args)
        return
    with local_server("default", 8, 2.0) as (url, pid):
        run(url, pid, args)


if __name__ == "__main__":
    main()
