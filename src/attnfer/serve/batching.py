"""Micro-batching: concurrent requests share one ``Recognizer.predict_batch`` call.

A request hands its decoded image to :meth:`MicroBatcher.predict` and awaits the result; the
event loop never blocks. One worker thread, the only one that runs the model, takes the first
waiting image, gathers the images that arrive within ``max_wait_ms`` (up to ``max_batch``), runs
one ``predict_batch`` on them (face detection image by image, then one classifier call for all
their faces) and hands each request its faces. Images that arrive while a batch runs are waiting
when it ends and go together in the next one, so batches grow with the load.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from ..recognize import FaceResult, Recognizer


@dataclass(frozen=True)
class Batched:
    """The faces of one image and the number of images in the model call that found them."""

    faces: list[FaceResult]
    batch_size: int


Job = tuple[np.ndarray, Future[Batched]]  # a decoded image and its result


class MicroBatcher:
    """Runs ``recognizer`` on batches of concurrent requests in one worker thread.

    The thread starts with the first request (again after :meth:`close`); ``max_wait_ms=0``
    batches only the images already waiting.
    """

    def __init__(self, recognizer: Recognizer, max_batch: int = 8, max_wait_ms: float = 2.0):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError("max_batch must be at least 1 and max_wait_ms at least 0")
        self.recognizer = recognizer
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self._worker: threading.Thread | None = None
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()  # the worker's queue
        self._lock = threading.Lock()  # guards the worker and its queue
        self._model_lock = threading.Lock()  # one model call at a time, even across a restart

    async def predict(self, image: np.ndarray) -> Batched:
        """The faces in a decoded RGB image, from the next batch."""
        return await asyncio.wrap_future(self.submit(image))

    def submit(self, image: np.ndarray) -> Future[Batched]:
        """Queue a decoded RGB image; the future gets its faces (or the error)."""
        future: Future[Batched] = Future()
        with self._lock:
            if self._worker is None:
                self._jobs = queue.SimpleQueue()
                self._worker = threading.Thread(
                    target=self._run, args=(self._jobs,), name="attnfer-batcher", daemon=True
                )
                self._worker.start()
            self._jobs.put((image, future))
        return future

    def close(self) -> None:
        """Serve the images already queued, then stop the worker thread."""
        with self._lock:
            worker, self._worker = self._worker, None
            self._jobs.put(None)
        if worker is not None:
            worker.join()

    def _run(self, jobs: queue.SimpleQueue[Job | None]) -> None:
        while (job := jobs.get()) is not None:
            batch = [job]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    job = jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if job is None:
                    jobs.put(None)  # stop after this batch
                    break
                batch.append(job)
            self._serve(batch)

    def _serve(self, batch: list[Job]) -> None:
        live = [(image, future) for image, future in batch if future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            with self._model_lock:
                results = self.recognizer.predict_batch([image for image, _ in live])
        except Exception as exc:  # the requests fail, the worker goes on
            for _, future in live:
                future.set_exception(exc)
            return
        for (_, future), result in zip(live, results, strict=True):
            if isinstance(result, DataError):
                future.set_exception(result)
            else:
                future.set_result(Batched(result, len(live)))
