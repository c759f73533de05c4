"""The recognition server: a FastAPI app with the JSON API and the demo page.

``create_app()`` loads the model and the face detector once; every request shares them through a
:class:`~attnfer.serve.batching.MicroBatcher`. Uploads are decoded in the server's thread pool,
the model runs in the batcher's one worker thread, and the event loop never waits on either.

Endpoints: ``POST /v1/predict`` (one image), ``POST /v1/predict/batch`` (several, one result or
error each), ``GET /v1/models``, ``GET /healthz``, the demo page at ``/`` and the OpenAPI schema
at ``/openapi.json`` (browsed at ``/docs`` and ``/redoc``, offline). A refused upload gets a 4xx
with ``{"detail": "<file>: <problem>"}``: 411 without a Content-Length, 413 above the size, pixel
or file-count limit, 415 for a content type that is not an image, 422 for a missing, empty,
corrupt or unknown image. See docs/serve.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__
from ..errors import DataError
from ..faces.images import describe, load_image
from ..pretrained import SHIPPED, load_pretrained
from ..recognize import Recognizer
from .batching import Batched, MicroBatcher

MAX_UPLOAD_BYTES = 20_000_000  # a request body (one upload, or all files of a batch)
MAX_PIXELS = 40_000_000  # an image's pixels, from its header, before it is decoded
MAX_FILES = 16  # files in one batch request
STATIC = Path(__file__).with_name("static")


class FaceOut(BaseModel):
    """One face in an image."""

    box: tuple[int, int, int, int] = Field(description="x1, y1, x2, y2 in image pixels")
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
    400: {"model": Problem, "description": "Malformed multipart body"},
    411: {"model": Problem, "description": "No Content-Length"},
    413: {"model": Problem, "description": "Upload, image or batch above the limits"},
    415: {"model": Problem, "description": "Content type is not an image"},
    422: {"model": Problem, "description": "Missing, empty, corrupt or unknown image"},
}


class BodyLimit:
    """Refuses a POST body above ``max_bytes`` (413) from its Content-Length, before reading it,
    and a POST without one (411), whose size would only be known once read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            problem = self._problem(Headers(scope=scope).get("content-length"))
            if problem is not None:
                response = JSONResponse({"detail": problem[1]}, status_code=problem[0])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _problem(self, length: str | None) -> tuple[int, str] | None:
        if length is None or not length.isdigit():
            return 411, "the request needs a Content-Length header"
        if int(length) > self.max_bytes:
            return 413, (
                f"the upload is {int(length) / 1e6:.3g} MB, above the limit of "
                f"{self.max_bytes / 1e6:.3g} MB"
            )
        return None


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
        info=info,
    )


def create_app(
    recognizer: Recognizer | None = None,
    *,
    model: str = "default",
    detector: str = "default",
    backend: str = "torch",
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_files: int = MAX_FILES,
    batch_size: int = 8,
    max_wait_ms: float = 2.0,
) -> FastAPI:
    """The server app, running ``recognizer`` or a new ``Recognizer(model, detector, backend)``.

    ``model`` names the model in ``GET /v1/models`` (pass the one ``recognizer`` was made
    from). ``max_upload_bytes`` caps a request body, ``max_pixels`` each image, ``max_files`` a
    batch. ``batch_size`` and ``max_wait_ms`` set the micro-batcher (see :mod:`.batching`).
    """
    if recognizer is None:
        recognizer = Recognizer(model, detector, backend)
    batcher = MicroBatcher(recognizer, batch_size, max_wait_ms)
    described = _describe_model(model, recognizer)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(batcher.close)

    app = FastAPIOffline(  # FastAPI whose /docs and /redoc load no script from a CDN
        title="attnfer",
        version=__version__,
        description="Facial expression recognition: faces, boxes, landmarks and expressions.",
        lifespan=lifespan,
    )
    app.state.recognizer = recognizer
    app.state.batcher = batcher
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes)
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def decode(upload: UploadFile) -> np.ndarray:
        """The upload as an RGB array, or an HTTPException naming the file and the problem."""
        name = upload.filename or "the upload"
        if not _is_image_type(upload.content_type):
            raise HTTPException(
                415,
                f"{name}: content type {upload.content_type} is not an image type "
                "(send image/jpeg, image/png, ... or application/octet-stream)",
            )
        data = await upload.read()
        try:
            return await run_in_threadpool(load_image, data, max_pixels)
        except DataError as exc:
            problem = str(exc).removeprefix(f"{describe(data)}: ")
            status = 413 if "above the limit" in problem else 422
            raise HTTPException(status, f"{name}: {problem}") from None

    async def decode_or_refusal(upload: UploadFile) -> np.ndarray | HTTPException:
        try:
            return await decode(upload)
        except HTTPException as exc:
            return exc

    def prediction(image: np.ndarray, found: Batched, start: float) -> Prediction:
        height, width = image.shape[:2]
        return Prediction(
            width=width,
            height=height,
            faces=[FaceOut(**face.to_dict()) for face in found.faces],
            batch_size=found.batch_size,
            time_ms=round(1000 * (time.perf_counter() - start), 1),
        )

    @app.post("/v1/predict", responses=ERRORS)
    async def predict(
        file: Annotated[UploadFile, File(description="a photo: JPEG, PNG, WebP, BMP, TIFF...")],
    ) -> Prediction:
        """Find the faces in an image and recognise their expressions."""
        start = time.perf_counter()
        image = await decode(file)
        return prediction(image, await batcher.predict(image), start)

    @app.post("/v1/predict/batch", responses=ERRORS)
    async def predict_batch(
        files: Annotated[list[UploadFile], File(description="the images, in order")],
    ) -> BatchPrediction:
        """The faces of each image; a file that cannot be read gets its error, the others go on."""
        if len(files) > max_files:
            raise HTTPException(413, f"{len(files)} files, above the limit of {max_files}")
        start = time.perf_counter()
        decoded = await asyncio.gather(*(decode_or_refusal(f) for f in files))
        images = [image for image in decoded if isinstance(image, np.ndarray)]
        found = iter(await asyncio.gather(*(batcher.predict(image) for image in images)))
        results = []
        for name, image in zip((f.filename for f in files), decoded, strict=True):
            if isinstance(image, HTTPException):
                item = BatchItem(filename=name, status=image.status_code, error=image.detail)
            else:
                done = prediction(image, next(found), start)
                item = BatchItem(filename=name, status=200, prediction=done)
            results.append(item)
        return BatchPrediction(results=results)

    @app.get("/v1/models")
    async def models() -> Models:
        """The loaded model (architecture, labels, input, provenance) and the shipped names."""
        return Models(loaded=described, shipped=list(SHIPPED))

    @app.get("/healthz")
    async def healthz() -> Health:
        """Liveness: the model is loaded and the server answers."""
        return Health(status="ok", model=model)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    return app
