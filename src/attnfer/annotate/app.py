"""The labelling tool's web app: a FastAPI app over a :class:`MarksStore`.

Routes (clips are addressed by index only, so no route takes a path from the request):

- ``GET /``: the page; ``GET /static/*``: its script and style (files of the static folder only);
- ``GET /api/state``: the clips, which are labelled, the skipped videos and where to start
  (the first unlabelled clip);
- ``GET /api/clips/{i}``: a clip's frame count, frame rate and saved marks, or why it cannot be
  read. The clip is decoded once and its frames kept as JPEG while it is one of the last two
  clips asked for;
- ``GET /api/clips/{i}/frames/{n}``: frame ``n`` (from 0) as JPEG;
- ``GET /api/clips/{i}/hints``: the model's label and probability for each frame (None where no
  face is found), computed on first request (the model is loaded then) and kept per clip;
- ``PUT /api/clips/{i}/marks``: check and save the marks (JSON: ``start``, ``end``, ``peak`` and
  the five flags); a 422 answer's ``detail`` says what is wrong.

The app sits behind :class:`~attnfer.serve.hardening.Guard` (Host allow-list, token, requests
in flight, body size, security headers).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import cv2
import numpy as np
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from ..errors import AttnferError, DataError
from ..faces import largest
from ..serve.hardening import Guard, GuardSettings
from ..video.io import VideoReader
from ..video.marks import Marks
from .store import TABLE_NAME, MarksStore

STATIC = Path(__file__).parent / "static"
JPEG_QUALITY = 90
MAX_BODY_BYTES = 10_000  # a request body: the marks' JSON
HINT_EVERY = 5  # the hints detect faces every N frames and track them in between


@dataclass(frozen=True)
class DecodedClip:
    """A clip's frames as JPEG, its frame rate, or why it could not be read."""

    index: int
    frames: list[bytes]
    fps: float
    error: str | None = None


def decode_clip(index: int, path: Path) -> DecodedClip:
    """Every frame of ``path`` as JPEG; an unreadable clip gives its error instead."""
    try:
        with VideoReader(path) as reader:
            fps = reader.info.fps
            frames = [_jpeg(frame.image) for frame in reader]
    except DataError as exc:
        return DecodedClip(index, [], 0.0, str(exc))
    return DecodedClip(index, frames, fps)


def _jpeg(rgb: np.ndarray) -> bytes:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise DataError("a frame could not be encoded as JPEG")
    return data.tobytes()


class RecentClips:
    """The decoded frames of the last ``keep`` clips asked for (the one being labelled and the
    one before, so a late request for the previous clip does not decode it again)."""

    def __init__(self, store: MarksStore, keep: int = 2) -> None:
        self.store = store
        self.keep = keep
        self._lock = threading.Lock()
        self._clips: OrderedDict[int, DecodedClip] = OrderedDict()

    def get(self, index: int) -> DecodedClip:
        with self._lock:
            if index not in self._clips:
                while len(self._clips) >= self.keep:
                    self._clips.popitem(last=False)
                self._clips[index] = decode_clip(index, self.store.clips[index].path)
            self._clips.move_to_end(index)
            return self._clips[index]


class Hints:
    """The model's per-frame labels of each clip, computed on first request and kept."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._recognizer: Any = None
        self._lock = threading.Lock()
        self._done: dict[int, list[dict[str, Any] | None]] = {}

    def get(self, index: int, path: Path) -> list[dict[str, Any] | None]:
        with self._lock:
            if index not in self._done:
                if self._recognizer is None:
                    from ..recognize import Recognizer

                    self._recognizer = Recognizer(self.model)
                self._done[index] = frame_hints(self._recognizer, path)
            return self._done[index]


def frame_hints(recognizer: Any, path: Path) -> list[dict[str, Any] | None]:
    """Per frame, the label and probability of the largest face (None where there is none)."""
    from ..video.stream import iter_video

    hints: list[dict[str, Any] | None] = []
    for result in iter_video(recognizer, path, every=HINT_EVERY, smooth=1):
        if not result.faces:
            hints.append(None)
            continue
        face = largest(result.faces)
        hints.append({"label": face.label, "probability": round(face.probabilities[face.label], 3)})
    return hints


class MarksBody(BaseModel):
    """Marks as the page sends them; stamps not yet set are null."""

    start: int | None = None
    end: int | None = None
    peak: int | None = None
    non_correlating: bool = False
    abnormal_limb: bool = False
    low_occlusion: bool = False
    heavy_occlusion: bool = False
    other: bool = False


@dataclass
class Labelling:
    """What every request shares: the marks store, the recently decoded clips and the hints
    (None: off)."""

    store: MarksStore
    recent: RecentClips
    hints: Hints | None

    def clip_index(self, i: int) -> int:
        """``i``, or a 404 when there is no clip ``i``."""
        count = len(self.store.clips)
        if not 0 <= i < count:
            raise HTTPException(404, f"no clip {i}: there are {count} clips (0 to {count - 1})")
        return i

    def readable(self, i: int) -> DecodedClip:
        """Clip ``i`` decoded, or a 422 saying why it cannot be read."""
        decoded = self.recent.get(self.clip_index(i))
        if decoded.error is not None:
            raise HTTPException(422, decoded.error)
        return decoded


def _labelling(request: Request) -> Labelling:
    return request.app.state.labelling


LabellingDep = Annotated[Labelling, Depends(_labelling)]
router = APIRouter()


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC / "annotate.html")


@router.get("/api/state")
def state(lab: LabellingDep) -> dict[str, Any]:
    labelled = lab.store.labelled()
    start = next((i for i, done in enumerate(labelled) if not done), None)
    clips = [
        {"name": c.name, "emotion": c.label, "labelled": done}
        for c, done in zip(lab.store.clips, labelled, strict=True)
    ]
    return {
        "root": str(lab.store.root),
        "table": TABLE_NAME,
        "hints": lab.hints is not None,
        "clips": clips,
        "skipped": [dataclasses.asdict(s) for s in lab.store.skipped],
        "start": start,
    }


@router.get("/api/clips/{i}")
def clip(i: int, lab: LabellingDep) -> dict[str, Any]:
    decoded = lab.recent.get(lab.clip_index(i))
    marks = lab.store.saved(i)
    return {
        "index": i,
        "name": lab.store.clips[i].name,
        "emotion": lab.store.clips[i].label,
        "frames": len(decoded.frames),
        "fps": decoded.fps,
        "marks": None if marks is None else dataclasses.asdict(marks),
        "error": decoded.error,
    }


@router.get("/api/clips/{i}/frames/{n}")
def frame(i: int, n: int, lab: LabellingDep) -> Response:
    frames = lab.readable(i).frames
    if not 0 <= n < len(frames):
        raise HTTPException(404, f"clip {i} has frames 0 to {len(frames) - 1}, not {n}")
    return Response(frames[n], media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/api/clips/{i}/hints")
def clip_hints(i: int, lab: LabellingDep) -> dict[str, Any]:
    if lab.hints is None:
        raise HTTPException(404, "the model's hints are off (--no-hints)")
    try:
        return {"hints": lab.hints.get(lab.clip_index(i), lab.store.clips[i].path)}
    except AttnferError as exc:  # an unreadable clip, or a model that does not load
        raise HTTPException(422, str(exc)) from None


@router.put("/api/clips/{i}/marks")
def save(i: int, body: MarksBody, lab: LabellingDep) -> dict[str, Any]:
    frames = len(lab.readable(i).frames)
    missing = [name for name in ("start", "end", "peak") if getattr(body, name) is None]
    if missing:
        raise HTTPException(
            422,
            f"mark the {' and '.join(missing)} first: S marks the start, then the end, "
            "then the peak frame",
        )
    marks = Marks(**body.model_dump())
    try:
        lab.store.save(i, marks, frames)
    except DataError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"line": marks.line(), "marks": dataclasses.asdict(marks)}


def create_app(
    store: MarksStore, hints: Hints | None = None, guard: GuardSettings | None = None
) -> FastAPI:
    """The labelling app over ``store``; ``hints`` None leaves the model out. ``guard`` (default:
    loopback hosts, no token) sets the :class:`Guard` in front of it. The app's state holds the
    :class:`Labelling` as ``labelling``."""
    app = FastAPI(title="attnfer annotate", docs_url=None, redoc_url=None, openapi_url=None)
    settings = guard or GuardSettings()
    app.add_middleware(Guard, settings=dataclasses.replace(settings, max_body_bytes=MAX_BODY_BYTES))
    app.state.labelling = Labelling(store, RecentClips(store), hints)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
