"""Trigger beeps in a recording's audio, and cutting the recording into clips at them.

The audio track is decoded in a stream (flat memory), mixed to mono and resampled to 16 kHz,
and cut into windows of ``window`` seconds (20 ms). In each window a Goertzel-style single-bin
DFT (Hann-windowed) measures the power at the beep frequency as a share of the window's power
(:func:`tone_ratio`: 1 for a pure tone at that frequency, about ``3 / samples`` for white
noise). Runs of windows whose share is at least ``threshold`` and whose RMS level is at least
``min_level`` (full scale 1.0) form a beep; beeps shorter than ``min_duration`` are ignored, and
a beep starting less than ``min_gap`` seconds after the previous one is taken as part of it.

:func:`split_at_beeps` cuts the recording from each beep (plus ``offset``) to the next one, or
for ``length`` seconds, re-encoding video and audio together so they stay in sync, and writes
``cuts.tsv`` (clip, start, end, beep time). The part before the first beep is not kept.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .io import container_origin, cut_segment, open_container, probe, require_av

ANALYSIS_RATE = 16_000
CUTS_NAME = "cuts.tsv"


@dataclass(frozen=True)
class Beep:
    """A detected beep: start and end in seconds, and its largest tone share."""

    start: float
    end: float
    strength: float


@dataclass(frozen=True)
class Cut:
    """A clip cut from a recording: its file, start and end in seconds, and frame count."""

    path: Path
    start: float
    end: float
    frames: int


def tone_ratio(windows: np.ndarray, freq: float, rate: int) -> np.ndarray:
    """The share of each window's power at ``freq`` Hz (windows: m x n samples)."""
    n = windows.shape[1]
    hann = np.hanning(n)
    phase = np.exp(-2j * np.pi * freq * np.arange(n) / rate)
    weighted = windows * hann
    power = np.abs(weighted @ phase) ** 2
    energy = (weighted**2).sum(1)
    scale = 2 * (hann**2).sum() / hann.sum() ** 2
    return np.where(energy > 0, scale * power / np.maximum(energy, 1e-20), 0.0)


def _audio_chunks(path: str | os.PathLike, rate: int) -> Iterator[tuple[float, np.ndarray]]:
    """(time of the first sample, mono float samples) of the audio track, chunk by chunk."""
    av = require_av()
    container = open_container(path)
    try:
        if not container.streams.audio:
            raise DataError(f"{path}: has no audio track to find beeps in")
        origin = container_origin(container)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for packet in container.demux(container.streams.audio[0]):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                continue
            for frame in frames:
                for chunk in resampler.resample(frame):
                    t = chunk.time - origin if chunk.time is not None else None
                    yield t, chunk.to_ndarray().reshape(-1)
    finally:
        container.close()


def tone_track(
    path: str | os.PathLike, freq: float, window: float = 0.02, rate: int = ANALYSIS_RATE
) -> tuple[float, np.ndarray, np.ndarray]:
    """The audio's start time, and per window the tone share and the RMS level."""
    size = max(8, round(window * rate))
    ratios, levels = [], []
    pending = np.zeros(0, np.float32)
    start: float | None = None
    for t, samples in _audio_chunks(path, rate):
        if start is None:
            start = t or 0.0
        pending = np.concatenate([pending, samples])
        whole = len(pending) // size * size
        if whole:
            windows = pending[:whole].reshape(-1, size).astype(np.float64)
            ratios.append(tone_ratio(windows, freq, rate))
            levels.append(np.sqrt((windows**2).mean(1)))
            pending = pending[whole:]
    if start is None:
        raise DataError(f"{path}: its audio track holds no samples")
    if not ratios:
        return start, np.zeros(0), np.zeros(0)
    return start, np.concatenate(ratios), np.concatenate(levels)


def beep_events(
    ratios: np.ndarray,
    levels: np.ndarray,
    window: float,
    start: float = 0.0,
    threshold: float = 0.5,
    min_level: float = 0.01,
    min_duration: float = 0.05,
    min_gap: float = 1.0,
) -> list[Beep]:
    """Beeps from per-window tone shares and levels (see the module notes)."""
    on = (np.asarray(ratios) >= threshold) & (np.asarray(levels) >= min_level)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    beeps: list[Beep] = []
    for first, stop in zip(edges[::2], edges[1::2], strict=True):
        begin, end = float(start + first * window), float(start + stop * window)
        if end - begin < min_duration - 1e-9:
            continue
        strength = float(np.max(ratios[first:stop]))
        if beeps and begin - beeps[-1].start < min_gap:
            last = beeps[-1]
            beeps[-1] = Beep(last.start, end, max(last.strength, strength))
        else:
            beeps.append(Beep(begin, end, strength))
    return beeps


def find_beeps(
    path: str | os.PathLike,
    freq: float = 1000.0,
    min_gap: float = 1.0,
    threshold: float = 0.5,
    min_level: float = 0.01,
    min_duration: float = 0.05,
    window: float = 0.02,
) -> list[Beep]:
    """The trigger beeps at ``freq`` Hz in the audio of ``path``, in time order."""
    if not 0 < freq < ANALYSIS_RATE / 2:
        raise ConfigError(f"beep frequency must be between 0 and {ANALYSIS_RATE // 2} Hz")
    start, ratios, levels = tone_track(path, freq, window)
    return beep_events(ratios, levels, window, start, threshold, min_level, min_duration, min_gap)


def cut_times(
    beeps: list[Beep], offset: float = 0.0, length: float | None = None
) -> list[tuple[float, float | None]]:
    """(start, end) of each clip: from a beep plus ``offset`` to the next beep plus ``offset``
    (the last one to the end of the recording, None), or for ``length`` seconds."""
    starts = [max(0.0, b.start + offset) for b in beeps]
    if length is not None:
        return [(s, s + length) for s in starts]
    return list(zip(starts, [*starts[1:], None], strict=True))


def split_at_beeps(
    path: str | os.PathLike,
    out_dir: str | os.PathLike,
    beeps: list[Beep],
    offset: float = 0.0,
    length: float | None = None,
) -> list[Cut]:
    """Cut ``path`` into ``<out>/<stem>_<nn>.mp4`` at ``beeps``; write ``cuts.tsv``."""
    path, out_dir = Path(path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cuts = []
    for n, (start, end) in enumerate(cut_times(beeps, offset, length), 1):
        target = out_dir / f"{path.stem}_{n:02d}.mp4"
        frames = cut_segment(path, target, start, end)
        actual_end = end if end is not None else start + frames / probe(path).fps
        cuts.append(Cut(target, start, actual_end, frames))
    with (out_dir / CUTS_NAME).open("w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["clip", "start", "end", "frames", "beep"])
        for cut, beep in zip(cuts, beeps, strict=True):
            row = [cut.path.name, f"{cut.start:.3f}", f"{cut.end:.3f}", cut.frames]
            writer.writerow([*row, f"{beep.start:.3f}"])
    return cuts
