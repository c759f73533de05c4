"""Video: per-frame recognition over files and streams, clip data sets and their tools.

- :mod:`.io`: decoding (PyAV) and writing videos; :mod:`.track`: IoU face tracker;
- :mod:`.stream`: :func:`iter_video`, per-frame results with track ids, CSV rows, summaries;
- :mod:`.clips`: clip data sets from videos, with face-crop caches, and k-means frame reduction;
- :mod:`.beeps`, :mod:`.marks`, :mod:`.trim`: session recordings cut at trigger beeps, the
  labelling tool's marks and re-trimming by them;
- :mod:`.evaluate`: a clip model file evaluated on clips read as its run read them.

Clip data sets in memory and CK+ sequences are in :mod:`attnfer.data.clips`; training clip models
and their decision- and feature-level aggregation in :mod:`attnfer.train.clips` and
:mod:`attnfer.train.aggregate`.

PyAV is needed for video files: ``pip install 'attnfer[video]'``.
"""

from .beeps import Beep, find_beeps, split_at_beeps
from .clips import distinct_frames, load_clips, load_video_clips, recipe_clips, reduce_frames
from .io import Frame, VideoInfo, VideoReader, VideoWriter, cut_segment, probe, read_frames
from .marks import MarkedClip, Marks, find_marks, parse_marks, read_clip_marks, read_marks_table
from .stream import FrameCSV, FrameResult, TrackedFace, TrackSummary, VideoRecognition, iter_video
from .track import IoUTracker
from .trim import Trimmed, trim_clips

__all__ = [
    "Beep",
    "Frame",
    "FrameCSV",
    "FrameResult",
    "IoUTracker",
    "MarkedClip",
    "Marks",
    "TrackSummary",
    "TrackedFace",
    "Trimmed",
    "VideoInfo",
    "VideoReader",
    "VideoRecognition",
    "VideoWriter",
    "cut_segment",
    "distinct_frames",
    "find_beeps",
    "find_marks",
    "iter_video",
    "load_clips",
    "load_video_clips",
    "parse_marks",
    "probe",
    "read_clip_marks",
    "read_frames",
    "read_marks_table",
    "recipe_clips",
    "reduce_frames",
    "split_at_beeps",
    "trim_clips",
]
