"""Micro-batching: concurrent requests share ``Recognizer.predict_batch`` calls.

A request hands its decoded image to :meth:`MicroBatcher.predict` and awaits the result; the
event loop never blocks. ``workers`` threads share one queue. Each takes the first waiting
image, gathers the images that arrive within ``max_wait_ms`` (up to ``max_batch``), runs one
``predict_batch`` on them (face detection image by image, then one classifier call for all their
faces) and hands each request its faces. Images that arrive while the batches run are waiting
when one ends and go together in the next, so batches grow with the load. Each worker detects
faces with a detector of its own (detectors are not safe to share between threads) and all share
the classifier, so the detection of concurrent requests runs on as many cores as there are
workers.
"""

from __future__ import annotations

import asyncio
import copy
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

from ..errors import DataError
from ..faces.images import ImageInput
from ..recognize import FaceResult, Recognizer
from .limits import WORKERS


@dataclass(frozen=True)
class Batched:
    """The faces of one image and the number of images in the model call that found them."""

    faces: list[FaceResult]
    batch_size: int


Job = tuple[ImageInput, Future[Batched]]  # an image (the server's are decoded) and its result


def with_own_detector(recognizer: Recognizer) -> Recognizer:
    """A shallow copy of ``recognizer`` (sharing its classifier) with a new detector of the same
    kind and settings."""
    detector = recognizer.detector
    clone = copy.copy(recognizer)
    clone._detector = type(detector)(
        min_score=detector.min_score,
        max_side=detector.max_side,
        first_side=detector.first_side,
        enlarge=detector.enlarge,
    )
    return clone


class MicroBatcher:
    """Runs ``recognizer`` on batches of concurrent requests in ``workers`` threads.

    The threads start with the first request (again after :meth:`close`); ``max_wait_ms=0``
    batches only the images already waiting.
    """

    def __init__(
        self,
        recognizer: Recognizer,
        max_batch: int = 8,
        max_wait_ms: float = 2.0,
        workers: int = WORKERS,
    ) -> None:
        if max_batch < 1 or max_wait_ms < 0 or workers < 1:
            raise ValueError("max_batch and workers must be at least 1, max_wait_ms at least 0")
        self.recognizer = recognizer
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        # the first worker runs ``recognizer`` itself, each other one a copy with its own detector
        copies = [with_own_detector(recognizer) for _ in range(workers - 1)]
        self.recognizers = [recognizer, *copies]
        self._workers: list[threading.Thread] = []
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()  # the workers' queue
        self._lock = threading.Lock()  # guards the workers and their queue

    async def predict(self, image: ImageInput) -> Batched:
        """The faces in an image (one :class:`~attnfer.recognize.Recognizer` takes), from the
        next batch."""
        return await asyncio.wrap_future(self.submit(image))

    def submit(self, image: ImageInput) -> Future[Batched]:
        """Queue an image; the future gets its faces (or the error)."""
        future: Future[Batched] = Future()
        with self._lock:
            if not self._workers:
                self._jobs = queue.SimpleQueue()
                self._workers = [
                    threading.Thread(
                        target=self._run,
                        args=(self._jobs, recognizer),
                        name=f"attnfer-batcher-{i}",
                        daemon=True,
                    )
                    for i, recognizer in enumerate(self.recognizers)
                ]
                for worker in self._workers:
                    worker.start()
            self._jobs.put((image, future))
        return future

    def close(self) -> None:
        """Serve the images already queued, then stop the worker threads."""
        with self._lock:
            workers, self._workers = self._workers, []
            self._jobs.put(None)
        for worker in workers:
            worker.join()

    def _run(self, jobs: queue.SimpleQueue[Job | None], recognizer: Recognizer) -> None:
        """Serve batches until the stop mark, which it leaves in the queue for the others."""
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
            self._serve(batch, recognizer)
        jobs.put(None)

    @staticmethod
    def _serve(batch: list[Job], recognizer: Recognizer) -> None:
        live = [(image, future) for image, future in batch if future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            results = recognizer.predict_batch([image for image, _ in live])
        except Exception as exc:  # the requests fail, the worker goes on
            for _, future in live:
                future.set_exception(exc)
            return
        for (_, future), result in zip(live, results, strict=True):
            if isinstance(result, DataError):
                future.set_exception(result)
            else:
                future.set_result(Batched(result, len(live)))
