"""``attnfer annotate DIR``: the clip labelling tool of paper 004, served to a browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from ..errors import ConfigError
from ..serve.limits import MAX_IN_FLIGHT, READ_TIMEOUT_S
from .options import AllowHostOpt, MaxInFlightOpt, ReadTimeoutOpt, TokenOpt, run_server


def annotate(
    folder: Annotated[
        Path, typer.Argument(help="Folder of clips in emotion folders (happy/p01.mp4, ...).")
    ],
    host: Annotated[
        str, typer.Option(help="Address to serve on; any but loopback needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8001,
    hints: Annotated[
        bool,
        typer.Option("--hints/--no-hints", help="Show the model's label of each frame."),
    ] = True,
    model: Annotated[
        str, typer.Option(help="Model for the hints: shipped name, run folder or file.")
    ] = "default",
    allow_host: AllowHostOpt = None,
    token: TokenOpt = None,
    read_timeout: ReadTimeoutOpt = READ_TIMEOUT_S,
    max_in_flight: MaxInFlightOpt = MAX_IN_FLIGHT,
) -> None:
    """Label clips frame by frame in the browser: start, end and peak frames and flags.

    Marks are saved as `<clip>.tsv` beside each clip and in FOLDER/marks.tsv, the input of
    attnfer video trim; a new session opens at the first unlabelled clip (see docs/annotate.md).
    """
    try:
        from ..annotate.app import Hints, create_app
        from ..serve.hardening import GuardSettings, allowed_hosts
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"attnfer annotate needs {exc.name}: pip install 'attnfer[serve]'"
        ) from None
    from ..annotate.store import MarksStore
    from ..pretrained import resolve
    from ..video.io import require_av

    require_av()
    if hints:
        resolve(model)  # a bad model name fails here, not at the first clip
    store = MarksStore(folder)
    start = store.first_unlabelled()
    where = "all labelled" if start is None else f"starting at {store.clips[start].name}"
    typer.echo(f"{len(store.clips)} clips in {folder}, {sum(store.labelled())} labelled; {where}")
    for skipped in store.skipped:
        typer.echo(f"left out {skipped.name}: {skipped.reason}")
    guard = GuardSettings(allowed_hosts(host, allow_host or ()), token, max_in_flight=max_in_flight)
    app = create_app(store, Hints(model) if hints else None, guard)
    url = f"http://{host}:{port}/" + (f"?token={quote(token, safe='')}" if token else "")
    typer.echo(f"open {url} in a browser; Ctrl+C stops (saved marks are kept)")
    run_server(app, host, port, token, read_timeout, "warning")
