"""Clip-level evaluation of a trained clip model file, on clips read as its run read them."""

from __future__ import annotations

import dataclasses
import os

from ..data.clips import clip_splits
from ..pretrained import load_pretrained
from ..train.clips import ClipConfig, evaluate_clips
from .clips import load_clips


def evaluate_clip_model(
    model: str | os.PathLike,
    data: str | os.PathLike,
    split: str = "test",
    aggregation: str | None = None,
) -> dict:
    """The report of :func:`attnfer.train.clips.evaluate_clips` (accuracy, per-class scores,
    confusion matrix; ``data``: the name of the clips evaluated, ``aggregation``: how their frames
    were combined) of the clip model file ``model`` (run folder or model.safetensors) on split
    ``split`` ('all': every clip) of the clips at ``data`` (a clip folder or CK+ crops).

    The clips are read, framed, sampled and cached with the clip settings stored in the model
    file; ``aggregation`` (decision, mean or attention) replaces the model's own. Where ``data``
    has no split folders, the split is made again as the run made it (its method, fractions and
    seed are stored in the model file).
    """
    pre = load_pretrained(model)
    stored = pre.info.get("clips") or {}
    clips = dataclasses.replace(
        ClipConfig(**stored), aggregation=aggregation or stored.get("aggregation")
    )
    dataset = load_clips(
        data, pre.preprocess.size, pre.preprocess.channels, detector=clips.detector,
        every=clips.every, cache_dir=clips.cache_dir, subject_pattern=clips.subject_pattern,
    )  # fmt: skip
    if split != "all" and not dataset.splits:
        how = pre.info.get("split") or {"method": "subject", "fractions": None, "seed": 0}
        dataset = clip_splits(dataset, how["method"], how["fractions"], how["seed"])
    part = dataset if split == "all" else dataset.split(split)
    return evaluate_clips(pre.model, pre.preprocess, pre.label_names, part, clips)
