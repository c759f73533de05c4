"""What several commands share: the consoles, the options of the commands that run a model
(``--model``, ``--detector``, ``--backend``) and of both web servers, shell completion, input
paths, detector names and the progress bar."""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..errors import ConfigError
from ..files import IMAGE_SUFFIXES

# soft_wrap: long lines (file paths) are never broken by inserted newlines.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def complete_from(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """A shell-completion callback offering the ``choices`` that start with what was typed."""

    def complete(incomplete: str) -> list[str]:
        return [choice for choice in choices if choice.startswith(incomplete)]

    return complete


def complete_model(incomplete: str) -> list[str]:
    """Shell completion of ``--model``: the shipped names, then model files and run folders."""
    from ..pretrained import SHIPPED

    here = Path(incomplete).parent if incomplete else Path(".")
    found = [
        str(path) + ("/" if path.is_dir() else "")
        for path in sorted(here.glob("*"))
        if (path.is_dir() or path.suffix in (".safetensors", ".onnx"))
        and not path.name.startswith(".")
    ]
    names = [*SHIPPED, *found]
    return [name for name in names if name.startswith(incomplete.removeprefix("./"))]


def complete_detector(incomplete: str) -> list[str]:
    """Shell completion of ``--detector``: default and every detector back end."""
    from ..faces import list_detectors

    return complete_from(["default", *list_detectors()])(incomplete)


# Options of the commands that run a Recognizer (predict and serve; explain takes --detector).
ModelOpt = Annotated[
    str,
    typer.Option(
        help="Shipped model name (attnfer models), run folder, .safetensors or .onnx file.",
        autocompletion=complete_model,
    ),
]
DetectorOpt = Annotated[
    str,
    typer.Option(
        help="Face detector: default (retinaface), retinaface, mtcnn, yunet.",
        autocompletion=complete_detector,
    ),
]
BackendOpt = Annotated[
    str,
    typer.Option(
        help="auto (onnxruntime on the CPU: int8 for the shipped models, else fp32), int8, onnx "
        "or torch; an .onnx model runs in onnxruntime.",
        autocompletion=complete_from(("auto", "int8", "onnx", "torch")),
    ),
]
BalanceOpt = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        help="How far the training data's class frequencies are divided out of the "
        "probabilities: 0 as trained, 1 every expression equally likely a priori (default: the "
        "Recognizer's, chosen on FER2013 val).",
    ),
]

# Options both web servers share (serve, annotate).
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
    """Warn loudly when ``host`` is reachable from other machines, then serve ``app`` with the
    hardened uvicorn configuration (:mod:`attnfer.serve.hardening`) until stopped."""
    import uvicorn

    from ..serve.hardening import exposure_warning, server_config

    warning = exposure_warning(host, token)
    if warning:
        typer.secho(warning, fg="red", bold=True, err=True)
    uvicorn.Server(server_config(app, host, port, read_timeout, log_level=log_level)).run()


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _images_in(paths: Iterator[Path]) -> list[Path]:
    return sorted(p for p in paths if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def expand_paths(args: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Files named, images under folders (recursively) and glob matches; and the problems.

    A named file is read whatever its suffix; folders and globs give files with image suffixes.
    """
    files: dict[Path, None] = {}
    problems = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            found = _images_in(path.rglob("*"))
        elif path.exists():
            found = [path]
        elif _is_glob(arg):
            found = _images_in(Path(p) for p in glob.glob(arg, recursive=True))
        else:
            problems.append(f"{arg}: no such file or folder")
            continue
        if not found:
            problems.append(f"{arg}: no image files found")
        files.update(dict.fromkeys(found))
    return list(files), problems


def detector_names(text: str) -> list[str]:
    """``all`` or a comma-separated list of detector names, checked."""
    from ..faces import list_detectors

    known = list_detectors()
    names = known if text == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ConfigError(f"unknown detector(s) {unknown or text!r}; choose from all, {known}")
    return names


def progress_bar() -> Progress:
    """A bar on stdout with the count done, elapsed time and time left, gone when it ends."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
