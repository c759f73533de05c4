"""The default limits of both web servers (see :mod:`.hardening`) and how ``attnfer serve``
shares the machine's cores between its batcher threads (see :mod:`.batching`)."""

from __future__ import annotations

import os

READ_TIMEOUT_S = 20.0  # a request's headers and body must arrive within this
MAX_IN_FLIGHT = 64  # requests served at once
CORES = os.cpu_count() or 1
WORKERS = min(4, CORES)  # threads of attnfer serve's micro-batcher


def share_cores(workers: int) -> None:
    """Give each of ``workers`` batcher threads its share of the cores: PyTorch, onnxruntime
    (the models and RetinaFace) and OpenCV run on ``CORES // workers`` threads each (at least
    one), unless ``OMP_NUM_THREADS`` is set, which then wins. Call it before the first model is
    loaded; it sets ``OMP_NUM_THREADS`` when unset."""
    import cv2
    import torch

    threads = int(os.environ.setdefault("OMP_NUM_THREADS", str(max(1, CORES // workers))))
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
