"""Video: per-frame recognition over files and streams, clip data sets and their tools.

- :mod:`.io`: decoding (PyAV) and writing videos; :mod:`.track`: IoU face tracker;
- :mod:`.stream`: :func:`iter_video`, per-frame results with track ids, CSV rows, summaries;
- :mod:`.clips`: clip data sets with face-crop caches, frame sampling and k-means reduction;
- :mod:`.aggregate`: decision- and feature-level clip predictions (paper 004);
- :mod:`.beeps`, :mod:`.marks`, :mod:`.trim`: session recordings cut at trigger beeps, the
  labelling tool's marks and re-trimming by them;
- :mod:`.train_clips`: training and evaluating FAN and frame-wise models on clips (Lightning);
- :mod:`.evaluate`: a clip model file evaluated on clips read as its run read them.

PyAV is needed for video files: ``pip install 'attnfer[video]'``.
"""

from .aggregate import clip_probabilities, decision_level, frame_groups, group_clips
from .beeps import Beep, find_beeps, split_at_beeps
from .clips import (
    ClipDataset,
    distinct_frames,
    load_ckplus_sequences,
    load_clips,
    load_video_clips,
    reduce_frames,
    segment_indices,
)
from .io import Frame, VideoInfo, VideoReader, VideoWriter, cut_segment, probe, read_frames
from .marks import MarkedClip, Marks, find_marks, parse_marks, read_clip_marks, read_marks_table
from .stream import FrameCSV, FrameResult, TrackedFace, TrackSummary, VideoRecognition, iter_video
from .track import IoUTracker
from .trim import Trimmed, trim_clips

__all__ = [
    "Beep",
    "ClipDataset",
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
    "clip_probabilities",
    "cut_segment",
    "decision_level",
    "distinct_frames",
    "find_beeps",
    "find_marks",
    "frame_groups",
    "group_clips",
    "iter_video",
    "load_ckplus_sequences",
    "load_clips",
    "load_video_clips",
    "parse_marks",
    "probe",
    "read_clip_marks",
    "read_frames",
    "read_marks_table",
    "reduce_frames",
    "segment_indices",
    "split_at_beeps",
    "trim_clips",
]
