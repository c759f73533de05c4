"""The recognition server: a FastAPI app with the JSON API and the demo page.

``create_app()`` loads the model and the face detector once; every request shares them through a
:class:`~attnfer.serve.batching.MicroBatcher`. Uploads are decoded in the server's thread pool (a
large JPEG at the reduced scale detection needs, boxes still in its pixels), the model runs in the
batcher's worker threads, and the event loop never waits on either. The app sits behind
:class:`~attnfer.serve.hardening.Guard` (Host allow-list, token, requests in flight, body size,
security headers), and an image holds its pixels (read from its header) in a
:class:`~attnfer.serve.hardening.PixelBudget` shared by all requests from before it is decoded until
its faces are found.

Endpoints: ``POST /v1/predict`` (one image), ``POST /v1/predict/batch`` (several, one result or
error each), ``GET /v1/models``, ``GET /healthz``, the demo page at ``/`` and the OpenAPI schema
at ``/openapi.json`` (browsed at ``/docs`` and ``/redoc``, offline). A refused upload gets a 4xx
with ``{"detail": "<file>: <problem>"}``: 400 for a disallowed Host or a body framed two ways, 401
without the token (when one is set), 411 without a Content-Length, 413 above the size, pixel
or file-count limit, 415 for a content type that is not an image, 422 for a missing, empty,
corrupt or unknown image; 503 with ``Retry-After`` when the server is too busy to take it. See
docs/serve.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..errors import DataError
from ..faces.images import Decoded, decode, describe
from ..pretrained import SHIPPED, load_pretrained
from ..recognize import Recognizer
from .batching import WORKERS, Batched, MicroBatcher
from .hardening import (
    LOOPBACK_HOSTS,
    MAX_IN_FLIGHT,
    Busy,
    Guard,
    GuardSettings,
    PixelBudget,
    header_pixels,
)

MAX_UPLOAD_BYTES = 20_000_000  # a request body (one upload, or all files of a batch)
MAX_PIXELS = 40_000_000  # an image's pixels, from its header, before it is decoded
MAX_FILES = 16  # files in one batch request
QUEUE_WAIT_S = 30.0  # how long an image waits for room in the pixel budget before a 503
STATIC = Path(__file__).with_name("static")


class FaceOut(BaseModel):
    """One face in an image: the API's schema of :meth:`attnfer.recognize.FaceResult.to_dict`
    (a key it does not know is refused, so the two cannot drift apart)."""

    model_config = ConfigDict(extra="forbid")

    box: tuple[int, int, int, int] = Field(description="x1, y1, x2, y2 in image pixels")
    detected: bool = Field(
        description="true: found by the face detector; false: the whole image taken as the face "
        "(an image no larger than a face crop)"
    )
    score: float | None = Field(
        description="detector confidence; null when the whole image was taken as the face"
    )
    landmarks: list[tuple[int, int]] | None = Field(
        description="eyes, nose tip, mouth corners (x, y), as seen in the image; null if unknown"
    )
    label: str = Field(description="the most probable expression")
    probabilities: dict[str, float] = Field(description="probability of each expression")


class Prediction(BaseModel):
    """The faces found in one image."""

    width: int = Field(description="image width in pixels (after EXIF rotation)")
    height: int = Field(description="image height in pixels")
    faces: list[FaceOut]
    batch_size: int = Field(description="images in the model call that served this one")
    time_ms: float = Field(description="server time from the upload's arrival to the answer")


class BatchItem(BaseModel):
    """One file of a batch: its prediction, or the status and message it would get alone."""

    filename: str | None
    status: int = Field(description="200, or the 4xx status of the problem")
    error: str | None = None
    prediction: Prediction | None = None


class BatchPrediction(BaseModel):
    """One item per uploaded file, in upload order."""

    results: list[BatchItem]


class ModelOut(BaseModel):
    """The model the server runs."""

    name: str
    arch: str | None = Field(description="architecture; null for an ONNX file")
    backend: str
    detector: str
    labels: list[str]
    input_size: int = Field(description="side of the square face crop the model takes")
    channels: int = Field(description="1 (gray) or 3 (RGB)")
    balance: float = Field(
        description="how far the training data's class frequencies are divided out of the "
        "probabilities (0: as trained, 1: every expression equally likely a priori)"
    )
    info: dict[str, Any] = Field(description="provenance from the weights' metadata")


class Models(BaseModel):
    """The loaded model and the names of the shipped ones."""

    loaded: ModelOut
    shipped: list[str]


class Health(BaseModel):
    """The server is up with its model loaded."""

    status: str
    model: str


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Malformed body, or a Host not allowed"},
    401: {"model": Problem, "description": "No token (when the server has one)"},
    411: {"model": Problem, "description": "No Content-Length"},
    413: {"model": Problem, "description": "Upload, image or batch above the limits"},
    415: {"model": Problem, "description": "Content type is not an image"},
    422: {"model": Problem, "description": "Missing, empty, corrupt or unknown image"},
    503: {"model": Problem, "description": "Too busy: retry after Retry-After seconds"},
}


def _is_image_type(content_type: str | None) -> bool:
    kind = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    return kind.startswith("image/") or kind == "application/octet-stream"


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's validation errors as one message, like every other refusal."""
    problems = [
        f"{'.'.join(str(part) for part in error['loc'][1:]) or 'request'}: {error['msg']}"
        for error in exc.errors()
    ]
    return JSONResponse({"detail": "; ".join(problems)}, status_code=422)


def _describe_model(name: str, recognizer: Recognizer) -> ModelOut:
    arch, info = None, {}
    if not name.endswith(".onnx"):  # an ONNX file has labels and preprocessing only
        pretrained = load_pretrained(name)
        arch, info = pretrained.arch, pretrained.info
    return ModelOut(
        name=name,
        arch=arch,
        backend=recognizer.backend,
        detector=recognizer.detector.name,
        labels=list(recognizer.label_names),
        input_size=recognizer.preprocess.size,
        channels=recognizer.preprocess.channels,
        balance=recognizer.balance,
        info=public_info(info),
    )


def public_info(info: dict[str, Any]) -> dict[str, Any]:
    """The weights' provenance without the entries that are file paths (the training data's)."""
    return {
        key: value
        for key, value in info.items()
        if not (isinstance(value, str) and ("/" in value or "\\" in value))
    }


@dataclass
class Server:
    """What every request shares: the recognizer behind its micro-batcher, the pixel budget, the
    per-request limits and the loaded model's description."""

    batcher: MicroBatcher
    budget: PixelBudget
    described: ModelOut
    max_pixels: int
    max_files: int

    async def decode(self, name: str, data: bytes) -> Decoded:
        """The image, decoded as finely as the recognizer needs (a large JPEG at a reduced
        scale), or an HTTPException naming the file and the problem."""
        side = self.batcher.recognizer.decode_side
        try:
            return await run_in_threadpool(decode, data, side, self.max_pixels)
        except DataError as exc:
            problem = str(exc).removeprefix(f"{describe(data)}: ")
            status = 413 if "above the limit" in problem else 422
            raise HTTPException(status, f"{name}: {problem}") from None

    async def find(self, name: str, data: bytes) -> tuple[int, int, Batched]:
        """The image's width, height and faces; its decoded pixels are held in the budget from
        before decoding until the faces are found."""
        try:
            async with self.budget.hold(min(header_pixels(data), self.max_pixels)):
                decoded = await self.decode(name, data)
                found = await self.batcher.predict(decoded)
                return *decoded.size, found
        except Busy as exc:
            raise HTTPException(503, f"{name}: {exc}", {"Retry-After": "5"}) from None

    async def recognise(self, upload: UploadFile) -> Prediction:
        """The faces of one upload, timed from its arrival."""
        start = time.perf_counter()
        width, height, found = await self.find(*await read_upload(upload))
        return Prediction(
            width=width,
            height=height,
            faces=[FaceOut(**face.to_dict()) for face in found.faces],
            batch_size=found.batch_size,
            time_ms=round(1000 * (time.perf_counter() - start), 1),
        )

    async def batch_item(self, upload: UploadFile) -> BatchItem:
        """One file of a batch: its prediction, or the status and message it would get alone."""
        name = upload.filename
        try:
            return BatchItem(filename=name, status=200, prediction=await self.recognise(upload))
        except HTTPException as exc:
            return BatchItem(filename=name, status=exc.status_code, error=exc.detail)


async def read_upload(upload: UploadFile) -> tuple[str, bytes]:
    """The upload's name and bytes; 415 for a content type that is not an image."""
    name = upload.filename or "the upload"
    if not _is_image_type(upload.content_type):
        raise HTTPException(
            415,
            f"{name}: content type {upload.content_type} is not an image type "
            "(send image/jpeg, image/png, ... or application/octet-stream)",
        )
    return name, await upload.read()


def _server(request: Request) -> Server:
    return request.app.state.server


ServerDep = Annotated[Server, Depends(_server)]
router = APIRouter()


@router.post("/v1/predict", responses=ERRORS)
async def predict(
    file: Annotated[UploadFile, File(description="a photo: JPEG, PNG, WebP, BMP, TIFF...")],
    server: ServerDep,
) -> Prediction:
    """Find the faces in an image and recognise their expressions."""
    return await server.recognise(file)


@router.post("/v1/predict/batch", responses=ERRORS)
async def predict_batch(
    files: Annotated[list[UploadFile], File(description="the images, in order")],
    server: ServerDep,
) -> BatchPrediction:
    """The faces of each image; a file that cannot be read gets its error, the others go on."""
    if len(files) > server.max_files:
        raise HTTPException(413, f"{len(files)} files, above the limit of {server.max_files}")
    return BatchPrediction(results=list(await asyncio.gather(*map(server.batch_item, files))))


@router.get("/v1/models")
async def models(server: ServerDep) -> Models:
    """The loaded model (architecture, labels, input, provenance) and the shipped names."""
    return Models(loaded=server.described, shipped=list(SHIPPED))


@router.get("/healthz")
async def healthz(server: ServerDep) -> Health:
    """Liveness: the model is loaded and the server answers."""
    return Health(status="ok", model=server.described.name)


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html")


def create_app(
    recognizer: Recognizer | None = None,
    *,
    model: str = "default",
    detector: str = "default",
    backend: str = "auto",
    balance: float | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_files: int = MAX_FILES,
    batch_size: int = 8,
    max_wait_ms: float = 2.0,
    workers: int = WORKERS,
    allowed_hosts: frozenset[str] = LOOPBACK_HOSTS,
    token: str | None = None,
    max_in_flight: int = MAX_IN_FLIGHT,
    max_pixels_in_flight: int | None = None,
    queue_wait_s: float = QUEUE_WAIT_S,
) -> FastAPI:
    """The server app, running ``recognizer`` or a new ``Recognizer(model, detector, backend,
    balance=balance)``.

    ``model`` names the model in ``GET /v1/models`` (pass the one ``recognizer`` was made
    from). ``max_upload_bytes`` caps a request body, ``max_pixels`` each image, ``max_files`` a
    batch. ``batch_size``, ``max_wait_ms`` and ``workers`` set the micro-batcher (see
    :mod:`.batching`). ``allowed_hosts``, ``token`` and ``max_in_flight`` go to the :class:`Guard`;
    ``max_pixels_in_flight`` (None: twice ``max_pixels``) bounds the decoded pixels of all
    requests together (an image waits up to ``queue_wait_s`` for room, then gets a 503). The
    app's state holds the :class:`Server` as ``server``.
    """
    if recognizer is None:
        recognizer = Recognizer(model, detector, backend, balance=balance)
    server = Server(
        batcher=MicroBatcher(recognizer, batch_size, max_wait_ms, workers),
        budget=PixelBudget(max(max_pixels_in_flight or 2 * max_pixels, max_pixels), queue_wait_s),
        described=_describe_model(model, recognizer),
        max_pixels=max_pixels,
        max_files=max_files,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(server.batcher.close)

    app = FastAPIOffline(  # FastAPI whose /docs and /redoc load no script from a CDN
        title="attnfer",
        version=__version__,
        description="Facial expression recognition: faces, boxes, landmarks and expressions.",
        lifespan=lifespan,
    )
    app.state.server = server
    app.add_middleware(
        Guard, settings=GuardSettings(allowed_hosts, token, max_upload_bytes, max_in_flight)
    )
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(router)
    return app
