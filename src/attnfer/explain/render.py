"""PNG figures of explanations (matplotlib Agg, written atomically) and raw maps as ``.npy``.

A figure is a grid of :class:`Panel` s: a face, a heat map over a face with its colour bar, or
bars (channel weights).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..files import write_atomic
from .api import Explanation

DPI = 100


@dataclass(frozen=True)
class Panel:
    """One plot: ``image`` (gray ``(H, W)`` or RGB ``(H, W, 3)`` in [0, 1]) with ``heat``
    (``(H, W)``, drawn over it with a colour bar labelled ``label``), or ``values`` as bars."""

    title: str
    _: KW_ONLY
    image: np.ndarray | None = None
    heat: np.ndarray | None = None
    values: np.ndarray | None = None
    cmap: str = "jet"
    vmin: float | None = None
    vmax: float | None = None
    label: str = ""


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("PNG output needs matplotlib: pip install matplotlib") from None
    return Figure, FigureCanvasAgg


def save_array(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as a ``.npy`` file (no pickle), atomically."""
    return write_atomic(path, lambda fh: np.save(fh, np.asarray(array), allow_pickle=False))


def _draw(fig: Any, ax: Any, panel: Panel) -> None:
    ax.set_title(panel.title, fontsize=8)
    if panel.values is not None:
        ax.stairs(panel.values, fill=True, color="tab:orange")
        ax.set_xlim(0, len(panel.values))
        ax.set_ylim(panel.vmin, panel.vmax)
        ax.set_xlabel("channel", fontsize=7)
        ax.set_ylabel(panel.label, fontsize=7)
        ax.tick_params(labelsize=6)
        return
    ax.axis("off")
    if panel.image is not None:
        ax.imshow(panel.image, cmap="gray", vmin=0.0, vmax=1.0)
    if panel.heat is not None:
        alpha = 0.5 if panel.image is not None else 1.0
        shown = ax.imshow(
            panel.heat, cmap=panel.cmap, vmin=panel.vmin, vmax=panel.vmax, alpha=alpha
        )
        bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        bar.solids.set_alpha(1.0)
        bar.ax.tick_params(labelsize=6)
        bar.set_label(panel.label, fontsize=7)


def save_panels(
    path: str | os.PathLike,
    panels: Sequence[Panel],
    title: str = "",
    columns: int | None = None,
    size: float = 2.2,
) -> Path:
    """Draw ``panels`` in a grid of ``columns`` (default: one row) and write a PNG."""
    figure_cls, canvas_cls = _matplotlib()
    columns = columns or len(panels)
    rows = math.ceil(len(panels) / columns)
    bars = any(p.heat is not None or p.values is not None for p in panels)
    width, height = columns * size * (1.45 if bars else 1.05), rows * (size + 0.35) + 0.5
    fig = figure_cls(figsize=(width, height), layout="constrained")
    canvas_cls(fig)
    for i, panel in enumerate(panels):
        _draw(fig, fig.add_subplot(rows, columns, i + 1), panel)
    if title:
        fig.suptitle(title, fontsize=10)
    return write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=DPI))


def _symmetric(heat: np.ndarray) -> float:
    return max(float(np.abs(heat).max()), 1e-6)


def _maps_named(e: Explanation, prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in e.maps.items() if k.startswith(prefix)}


def _occlusion_figures(e: Explanation) -> dict[str, list[Panel]]:
    m = _symmetric(e.maps["drop"])
    drop = Panel(
        f"occluded: P({e.target}) drop",
        image=e.face,
        heat=e.maps["drop"],
        cmap="RdBu_r",
        vmin=-m,
        vmax=m,
        label="probability",
    )
    flip = Panel(
        "prediction flips",
        image=e.face,
        heat=e.maps["flip"],
        cmap="Reds",
        vmin=0,
        vmax=1,
        label="fraction of windows",
    )
    return {"occlusion": [Panel("input", image=e.face), drop, flip]}


def _gradcam_figures(e: Explanation) -> dict[str, list[Panel]]:
    cam = Panel(f"Grad-CAM: {e.target}", image=e.face, heat=e.maps["cam"], vmin=0, vmax=1)
    return {"gradcam": [Panel("input", image=e.face), cam]}


def _stn_figures(e: Explanation) -> dict[str, list[Panel]]:
    warped = Panel("warped: what the network sees", image=e.maps["warped"])
    return {"stn": [Panel("original", image=e.face), warped]}


def _cbam_figures(e: Explanation) -> dict[str, list[Panel]]:
    figures = {}
    spatial = _maps_named(e, "spatial.")
    if spatial:
        figures["cbam"] = [Panel("input", image=e.face)] + [
            Panel(name, image=e.face, heat=value, label="attention")
            for name, value in spatial.items()
        ]
    channel = _maps_named(e, "channel.")
    if channel:
        figures["cbam_channel"] = [
            Panel(name, values=value, vmin=0, vmax=1, label="weight")
            for name, value in channel.items()
        ]
    return figures


FIGURES: dict[str, Callable[[Explanation], dict[str, list[Panel]]]] = {
    "occlusion": _occlusion_figures,
    "gradcam": _gradcam_figures,
    "stn": _stn_figures,
    "cbam": _cbam_figures,
}


def explanation_figures(e: Explanation) -> dict[str, list[Panel]]:
    """The figures of an explanation by file suffix (``occlusion``, ``cbam``, ``cbam_channel``,
    ...), each as its panels."""
    return FIGURES[e.method](e)


def render_explanation(e: Explanation, folder: str | os.PathLike, stem: str) -> list[Path]:
    """Write ``<stem>.<figure>.png`` for each figure and ``<stem>.<method>.<map>.npy`` for each
    map into ``folder``; the paths written."""
    folder = Path(folder)
    title = f"predicted {e.label} ({100 * e.probability:.1f}%) | {e.note}"
    written = []
    for suffix, panels in explanation_figures(e).items():
        columns = min(len(panels), 5)
        written.append(save_panels(folder / f"{stem}.{suffix}.png", panels, title, columns))
    for name, value in e.maps.items():
        written.append(save_array(folder / f"{stem}.{e.method}.{name}.npy", value))
    return written
