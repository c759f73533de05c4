"""Video decoding and encoding with PyAV (FFmpeg's libraries, shipped in its wheel).

:class:`VideoReader` yields RGB frames one at a time from a file, a stream URL (``rtsp://``,
``http://`` ...) or a camera index (``0``, through OpenCV), so memory stays flat however long the
video. A file that is missing, empty (0 bytes), not a video, truncated before its index
(an MP4 whose ``moov`` atom is missing) or with no decodable frame raises :class:`DataError`
naming it. A few undecodable frames are skipped and counted in ``reader.skipped``; past
``max_bad_frames`` the reader stops with a DataError. A file cut short after its index (it
announces more frames than it holds) raises a DataError when its frames run out.

:class:`VideoWriter` writes H.264 MP4 (MPEG-4 part 2 where FFmpeg lacks libx264), optionally
with an AAC audio track; :func:`cut_segment` re-encodes a time range of a video with its audio,
keeping both in sync.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError

VIDEO_SUFFIXES = frozenset((".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"))
MAX_BAD_FRAMES = 100
TRUNCATION_SLACK = 2  # frames a container's announced count may exceed what it holds
DEFAULT_FPS = 30.0

Source = str | int | os.PathLike


def require_av() -> ModuleType:
    """The ``av`` module (PyAV); ConfigError saying how to install it when it is missing."""
    try:
        import av
    except ImportError:
        raise ConfigError("video needs PyAV: pip install 'attnfer[video]'") from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What a video says of itself: size, frame rate, frame count (None if unknown), duration
    in seconds (None if unknown) and whether it has an audio track."""

    source: str
    width: int
    height: int
    fps: float
    frames: int | None
    duration: float | None
    audio: bool


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in the video, time in seconds and RGB uint8 pixels."""

    index: int
    time: float
    image: np.ndarray


def is_camera(source: Source) -> bool:
    """True for a camera index (an int or a string of digits)."""
    return isinstance(source, int) or (isinstance(source, str) and source.isdigit())


def is_url(source: Source) -> bool:
    return isinstance(source, str) and "://" in source


def check_file(path: Path) -> None:
    """DataError naming ``path`` when it is missing, not a file or empty."""
    if not path.exists():
        raise DataError(f"{path}: no such video file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")


def open_container(source: str | os.PathLike) -> Any:
    """An input container for a file or URL; DataError naming it when FFmpeg cannot open it."""
    av = require_av()
    if not is_url(source):
        check_file(Path(source))
    try:
        container = av.open(str(source), timeout=20.0 if is_url(source) else None)
    except av.FFmpegError as exc:
        raise DataError(
            f"{source}: not a readable video, or damaged or truncated ({_reason(exc)})"
        ) from None
    if not container.streams.video:
        container.close()
        raise DataError(f"{source}: has no video stream")
    return container


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def container_origin(container: Any) -> float:
    """The container's start time in seconds; frame times are measured from it."""
    return (container.start_time or 0) / 1_000_000


def _fps(stream: Any) -> float:
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    return float(rate) if rate else DEFAULT_FPS


class VideoReader:
    """Frames of a file, stream URL or camera index, decoded lazily (see the module notes).

    Use as an iterable, ideally in a ``with`` block; ``info`` describes the video and
    ``skipped`` counts the frames that could not be decoded so far.
    """

    def __init__(self, source: Source, max_bad_frames: int = MAX_BAD_FRAMES) -> None:
        self.source = str(source)
        self.max_bad_frames = max_bad_frames
        self.skipped = 0
        self._camera = None
        self._container = None
        if is_camera(source):
            self.info = self._open_camera(int(source))
        else:
            self._container = open_container(source)
            self.info = self._describe(self._container)

    def _open_camera(self, index: int) -> VideoInfo:
        import cv2

        camera = cv2.VideoCapture(index)
        if not camera.isOpened():
            raise DataError(f"camera {index}: cannot be opened")
        self._camera = camera
        width = int(camera.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(camera.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = camera.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
        return VideoInfo(f"camera {index}", width, height, float(fps), None, None, False)

    def _describe(self, container: Any) -> VideoInfo:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        ctx = stream.codec_context
        duration = container.duration / 1_000_000 if container.duration else None
        return VideoInfo(
            self.source, ctx.width, ctx.height, _fps(stream), stream.frames or None, duration,
            bool(container.streams.audio),
        )  # fmt: skip

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._camera is not None:
            self._camera.release()
            self._camera = None

    def __iter__(self) -> Iterator[Frame]:
        frames = self._camera_frames() if self._camera is not None else self._file_frames()
        count = 0
        for frame in frames:
            count += 1
            yield frame
        if count == 0:
            raise DataError(f"{self.source}: no frame could be decoded")
        missing = (self.info.frames or 0) - count - self.skipped
        if missing > TRUNCATION_SLACK:
            raise DataError(
                f"{self.source}: truncated: the video ends after {count + self.skipped} of its "
                f"{self.info.frames} frames"
            )

    def _skip(self, n: int, why: str) -> None:
        self.skipped += n
        if self.skipped > self.max_bad_frames:
            raise DataError(
                f"{self.source}: {self.skipped} frames could not be decoded "
                f"(more than {self.max_bad_frames}): {why}"
            )

    def _file_frames(self) -> Iterator[Frame]:
        av = require_av()
        container = self._container
        if container is None:
            raise DataError(f"{self.source}: the reader is closed")
        stream = container.streams.video[0]
        origin, fps = container_origin(container), self.info.fps
        index = 0
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
                decoded = packet.decode()
            except StopIteration:
                break
            except av.FFmpegError as exc:
                self._skip(1, _reason(exc))
                index += 1
                continue
            for frame in decoded:
                t = frame.time - origin if frame.time is not None else index / fps
                yield Frame(index, t, frame.to_ndarray(format="rgb24"))
                index += 1

    def _camera_frames(self) -> Iterator[Frame]:
        import cv2

        start, index = time.monotonic(), 0
        while self._camera is not None:
            ok, bgr = self._camera.read()
            if not ok:
                break
            yield Frame(index, time.monotonic() - start, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1


def read_frames(source: Source, max_bad_frames: int = MAX_BAD_FRAMES) -> Iterator[Frame]:
    """The frames of ``source``, lazily; the video is closed when the iteration ends."""
    with VideoReader(source, max_bad_frames) as reader:
        yield from reader


def probe(source: str | os.PathLike) -> VideoInfo:
    """A video's :class:`VideoInfo`, without decoding it."""
    with VideoReader(source) as reader:
        return reader.info


def _video_codec(av: ModuleType) -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


class VideoWriter:
    """Writes RGB frames (and optionally audio) to a video file, MP4 by default.

    The frame size is taken from the first frame (odd sides are padded by one pixel, as
    H.264's 4:2:0 needs even ones). ``audio_rate`` adds an AAC track fed by
    :meth:`write_audio` with float samples in [-1, 1].
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float | Fraction,
        audio_rate: int | None = None,
        audio_channels: int = 1,
        crf: int = 23,
    ) -> None:
        self._av = require_av()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.crf = crf
        try:
            self._out = self._av.open(str(self.path), "w")
        except self._av.FFmpegError as exc:
            raise DataError(f"{self.path}: cannot write a video here ({_reason(exc)})") from None
        self._video: Any = None
        self._audio: Any = None
        self.frames = 0
        self._samples = 0
        if audio_rate:
            layout = {1: "mono", 2: "stereo"}.get(audio_channels)
            if layout is None:
                raise ConfigError(f"audio_channels must be 1 or 2, got {audio_channels}")
            self._audio = self._out.add_stream("aac", rate=int(audio_rate), layout=layout)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_video(self, width: int, height: int) -> None:
        codec = _video_codec(self._av)
        stream = self._out.add_stream(codec, rate=self.fps)
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(self.crf), "preset": "veryfast"}
        self._video = stream

    def write(self, image: np.ndarray) -> None:
        """Append one H x W x 3 RGB uint8 frame."""
        if self._video is None:
            self._open_video(image.shape[1], image.shape[0])
        height, width = self._video.height, self._video.width
        if image.shape[:2] != (height, width):
            pad = ((0, height - image.shape[0]), (0, width - image.shape[1]), (0, 0))
            image = np.pad(image, pad, mode="edge")
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = self.frames
        frame.time_base = 1 / self.fps
        self._out.mux(self._video.encode(frame))
        self.frames += 1

    def write_audio(self, samples: np.ndarray) -> None:
        """Append float samples, shape ``(n,)`` or ``(channels, n)``."""
        if self._audio is None:
            raise ConfigError(f"{self.path}: the writer was opened without audio_rate")
        data = np.asarray(samples, dtype=np.float32)
        data = np.ascontiguousarray(data.reshape(1, -1) if data.ndim == 1 else data)
        if data.shape[1] == 0:
            return
        layout = self._audio.layout.name
        frame = self._av.AudioFrame.from_ndarray(data, format="fltp", layout=layout)
        frame.sample_rate = self._audio.rate
        frame.pts = self._samples
        frame.time_base = Fraction(1, self._audio.rate)
        self._out.mux(self._audio.encode(frame))
        self._samples += data.shape[1]

    def close(self) -> None:
        """Flush the encoders and finish the file."""
        if self._out is None:
            return
        for stream in (self._video, self._audio):
            if stream is not None:
                self._out.mux(stream.encode(None))
        self._out.close()
        self._out = None


def _audio_slice(frame: Any, origin: float, start: float, end: float) -> np.ndarray | None:
    """The samples of a decoded (fltp) audio frame that fall in ``[start, end)``."""
    t = frame.time - origin
    rate = frame.sample_rate
    first = max(0, math.ceil((start - t) * rate - 1e-6))
    last = (
        frame.samples
        if math.isinf(end)
        else min(frame.samples, math.floor((end - t) * rate + 1e-6))
    )
    if last <= first:
        return None
    return frame.to_ndarray()[:, first:last]


def cut_segment(
    source: str | os.PathLike, out: str | os.PathLike, start: float, end: float | None = None
) -> int:
    """Re-encode ``[start, end)`` seconds of ``source`` (with its audio) to ``out``.

    A frame is kept when its time lies within half a frame of the range, so ``start = s / fps``
    and ``end = (e + 1) / fps`` keep frames ``s`` to ``e``. Returns the number of frames written.
    """
    av = require_av()
    container = open_container(source)
    try:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        fps = video.average_rate or Fraction(DEFAULT_FPS)
        origin, half = container_origin(container), 0.5 / float(fps)
        stop = math.inf if end is None else end
        if start > 1.0:  # to the keyframe before, then decode forward to ``start``
            container.seek(int((origin + start - 1.0) * 1_000_000))
        resampler = None
        if audio is not None:
            layout = "stereo" if audio.channels > 1 else "mono"
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=audio.rate)
        writer = VideoWriter(
            out, fps, audio.rate if audio else None, 2 if audio and audio.channels > 1 else 1
        )
        with writer:
            streams = [s for s in (video, audio) if s is not None]
            for packet in container.demux(*streams):
                try:
                    decoded = packet.decode()
                except av.FFmpegError:
                    continue
                for frame in decoded:
                    if frame.time is None:
                        continue
                    if packet.stream is video:
                        t = frame.time - origin
                        if start - half <= t < stop - half:
                            writer.write(frame.to_ndarray(format="rgb24"))
                    else:
                        for chunk in resampler.resample(frame):
                            samples = _audio_slice(chunk, origin, start, stop)
                            if samples is not None:
                                writer.write_audio(samples)
                if frame_past(decoded, origin, stop + 1.0):
                    break
        return writer.frames
    finally:
        container.close()


def frame_past(decoded: list, origin: float, limit: float) -> bool:
    """True when the last decoded frame lies beyond ``limit`` seconds."""
    return bool(decoded) and decoded[-1].time is not None and decoded[-1].time - origin > limit
