"""Command-line options both servers share, and how they run (see :mod:`.hardening`)."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

READ_TIMEOUT_S = 20.0  # a request's headers and body must arrive within this
MAX_IN_FLIGHT = 64  # requests served at once
CORES = os.cpu_count() or 1
WORKERS = min(4, CORES)  # threads of attnfer serve's micro-batcher

AllowHostOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-host",
        metavar="NAME",
        help="Another name clients may reach the server by (Host header); loopback names and "
        "the --host address are always allowed. Repeatable.",
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        envvar="ATTNFER_TOKEN",
        metavar="TOKEN",
        help="Secret every request must carry (Authorization: Bearer TOKEN, or open the page "
        "once as /?token=TOKEN). Use it with any --host other than loopback.",
    ),
]
ReadTimeoutOpt = Annotated[
    float,
    typer.Option(min=1, help="Seconds a client has to send a request's headers and body."),
]
MaxInFlightOpt = Annotated[
    int,
    typer.Option(min=1, help="Requests served at once; beyond, 503 with Retry-After."),
]


def run_server(
    app: Any, host: str, port: int, token: str | None, read_timeout: float, log_level: str
) -> None:
    """Warn loudly when ``host`` is reachable from other machines, then serve ``app``."""
    import uvicorn

    from .hardening import exposure_warning, server_config

    warning = exposure_warning(host, token)
    if warning:
        typer.secho(warning, fg="red", bold=True, err=True)
    uvicorn.Server(server_config(app, host, port, read_timeout, log_level=log_level)).run()
