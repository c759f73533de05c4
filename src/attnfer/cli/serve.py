"""``attnfer serve``: the recognition API and the demo page over HTTP."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import ConfigError
from ..serve.limits import MAX_IN_FLIGHT, READ_TIMEOUT_S, WORKERS, share_cores
from .options import (
    AllowHostOpt,
    BackendOpt,
    BalanceOpt,
    DetectorOpt,
    MaxInFlightOpt,
    ModelOpt,
    ReadTimeoutOpt,
    TokenOpt,
    run_server,
)


def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 opens the server to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    model: ModelOpt = "default",
    detector: DetectorOpt = "default",
    backend: BackendOpt = "auto",
    balance: BalanceOpt = None,
    max_upload_mb: Annotated[
        float, typer.Option(min=0.001, help="Largest request body (a batch: all files), in MB.")
    ] = 20.0,
    max_megapixels: Annotated[
        float, typer.Option(min=0.001, help="Largest image, in millions of pixels.")
    ] = 40.0,
    max_files: Annotated[int, typer.Option(min=1, help="Most files in one batch request.")] = 16,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Most images the micro-batcher runs in one model call.")
    ] = 8,
    max_wait_ms: Annotated[
        float, typer.Option(min=0, help="How long the batcher waits for more images, in ms.")
    ] = 2.0,
    workers: Annotated[
        int, typer.Option(min=1, help="Batcher threads, each detecting faces on a core.")
    ] = WORKERS,
    max_megapixels_in_flight: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Decoded pixels of all requests together, in millions (default: twice "
            "--max-megapixels); an image waits for room, then gets a 503.",
        ),
    ] = None,
    allow_host: AllowHostOpt = None,
    token: TokenOpt = None,
    read_timeout: ReadTimeoutOpt = READ_TIMEOUT_S,
    max_in_flight: MaxInFlightOpt = MAX_IN_FLIGHT,
) -> None:
    """Serve the recognition API (/v1/predict, /docs) and the demo page (/) over HTTP.

    The model is loaded once and concurrent requests are batched. Binds 127.0.0.1 unless --host;
    any other address needs --token (see docs/serve.md).
    """
    share_cores(workers)
    try:
        from ..serve.app import create_app
        from ..serve.hardening import allowed_hosts
    except ImportError as exc:
        raise ConfigError(
            f"attnfer serve needs the serve extra ({exc.name} is missing): "
            "pip install 'attnfer[serve]'"
        ) from None
    app = create_app(
        model=model,
        detector=detector,
        backend=backend,
        balance=balance,
        max_upload_bytes=round(max_upload_mb * 1e6),
        max_pixels=round(max_megapixels * 1e6),
        max_files=max_files,
        batch_size=batch_size,
        max_wait_ms=max_wait_ms,
        workers=workers,
        allowed_hosts=allowed_hosts(host, allow_host or ()),
        token=token,
        max_in_flight=max_in_flight,
        max_pixels_in_flight=max_megapixels_in_flight and round(max_megapixels_in_flight * 1e6),
    )
    run_server(app, host, port, token, read_timeout, "info")
