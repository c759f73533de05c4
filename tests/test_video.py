"""Video: tracking, per-frame CSV, beeps and cuts, trimming by marks, broken files, clip sampling
and aggregation, k-means frame reduction, and FAN trained on CK+ sequences."""

from __future__ import annotations

import csv
import functools
import http.server
import itertools
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from PIL import Image
from typer.testing import CliRunner

pytest.importorskip("av")

from attnfer.cli.video import video_app
from attnfer.data.clips import ClipDataset, clip_splits, load_ckplus_sequences, segment_indices
from attnfer.data.labels import BASIC7
from attnfer.errors import ConfigError, DataError
from attnfer.models import create_model
from attnfer.preprocess import Preprocess
from attnfer.pretrained import load_pretrained, save_pretrained
from attnfer.recognize import Recognizer
from attnfer.train.aggregate import (
    AGGREGATIONS,
    clip_probabilities,
    decision_level,
    frame_groups,
    group_clips,
)
from attnfer.video import (
    VideoReader,
    VideoWriter,
    find_beeps,
    iter_video,
    load_video_clips,
    read_marks_table,
    reduce_frames,
)
from attnfer.video.beeps import beep_events
from attnfer.video.marks import read_clip_marks
from attnfer.video.stream import Smoother, csv_header
from attnfer.video.track import IoUTracker

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CKPLUS = DATASETS / "ckplus48"
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FPS, RATE = 25, 16_000
SIZE = (160, 120)  # frame width, height
FACE = 64  # face side in pixels
FRAMES = 100  # 4 s
BEEPS = (0.6, 1.8, 3.0)  # beep onsets in seconds, 0.15 s each
MARKER = 10  # side of the white square shown in the corner during beeps


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(lambda: None)
    app.add_typer(video_app, name="video")
    return app


def _face() -> np.ndarray:
    if not CKPLUS.is_dir():
        pytest.skip(f"CK+ crops not found at {CKPLUS}")
    files = sorted((CKPLUS / "happy").glob("*.png"))
    face = Image.open(files[len(files) // 2]).convert("RGB").resize((FACE, FACE), Image.BICUBIC)
    return np.asarray(face)


def face_x(k: int) -> int:
    """Left edge of the face in frame ``k``: it moves left to right across the frame."""
    return 4 + k * (SIZE[0] - FACE - 8) // (FRAMES - 1)


def beeping(t: float) -> bool:
    return any(b <= t < b + 0.15 for b in BEEPS)


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """4 s at 25 fps: a CK+ face moving across a textured background, 1 kHz beeps at BEEPS
    (a white corner square shows during each beep), quiet noise between them."""
    face = _face()
    rng = np.random.default_rng(0)
    w, h = SIZE
    ramp = np.linspace(90, 200, w)[None, :, None] + np.linspace(0, 40, h)[:, None, None]
    background = np.clip(ramp + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    t = np.arange(FRAMES * RATE // FPS) / RATE
    audio = 0.002 * rng.standard_normal(len(t))
    tone = np.array([beeping(x) for x in t])
    audio[tone] += 0.5 * np.sin(2 * np.pi * 1000 * t[tone])
    path = tmp_path_factory.mktemp("video") / "session.mp4"
    with VideoWriter(path, FPS, audio_rate=RATE) as writer:
        for k in range(FRAMES):
            frame = background.copy()
            frame[28 : 28 + FACE, face_x(k) : face_x(k) + FACE] = face
            if beeping(k / FPS):
                frame[:MARKER, :MARKER] = 255
            writer.write(frame)
        writer.write_audio(audio)
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """An untrained Deep-Emotion: the tests check tracking and files, not accuracy."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_pretrained(path, create_model("deep_emotion"), "deep_emotion", LABELS, Preprocess())


def count_frames(path: Path) -> int:
    with VideoReader(path) as reader:
        return sum(1 for _ in reader)


def test_track_ids_stable_and_csv_rows(recording, model_path, tmp_path) -> None:
    out, table = tmp_path / "annotated.mp4", tmp_path / "frames.csv"
    args = ["video", str(recording), "--csv", str(table), "--out", str(out), "--every", "5"]
    result = CliRunner().invoke(_app(), [*args, "--smooth", "3", "--model", str(model_path)])
    assert result.exit_code == 0, result.output
    assert "dominant" in result.output

    with table.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == csv_header(LABELS)
    body = rows[1:]
    assert [int(r[1]) for r in body] == list(range(FRAMES)), "one face in every frame"
    assert {r[2] for r in body} == {"1"}, "one stable track id"
    for row in body:
        k, (x1, y1, x2, y2) = int(row[1]), map(int, row[3:7])
        assert float(row[0]) == pytest.approx(k / FPS, abs=1e-3)
        assert abs((x1 + x2) / 2 - (face_x(k) + FACE / 2)) < 12, f"frame {k}: box {x1}..{x2}"
        assert abs((y1 + y2) / 2 - (28 + FACE / 2)) < 12, f"frame {k}: box {y1}..{y2}"
        probs = dict(zip(LABELS, map(float, row[8:]), strict=True))
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert probs[row[7]] == pytest.approx(max(probs.values()), abs=1e-5), "label = top class"
    assert count_frames(out) == FRAMES


def test_iter_video_is_lazy(recording, model_path) -> None:
    recognizer = Recognizer(str(model_path), faces="detect")
    frames = iter_video(recognizer, recording, every=5, smooth=2, batch_frames=4)
    first = list(itertools.islice(frames, 3))
    frames.close()
    assert [r.index for r in first] == [0, 1, 2]
    assert first[0].faces[0].score is not None and first[1].faces[0].score is None
    assert first[0].image.shape == (SIZE[1], SIZE[0], 3)


def test_tracker_keeps_ids_and_ends_lost_tracks() -> None:
    from attnfer.faces import Face

    tracker = IoUTracker(max_lost=5, refine=False)

    def faces(*xs: float) -> list[Face]:
        return [Face((x, 10.0, x + 40.0, 50.0), 0.9) for x in xs]

    assert [i for i, _ in tracker.update(faces(0, 100), 0)] == [1, 2]
    assert [i for i, _ in tracker.update(faces(8, 108), 5)] == [1, 2]
    followed = dict(tracker.follow(7))
    assert followed[1].box[0] == pytest.approx(8 + 2 * 0.8), "velocity carries the box"
    assert [i for i, _ in tracker.update(faces(16), 10)] == [1]
    assert [i for i, _ in tracker.update(faces(24), 15)] == [1], "face 2 lost 10 frames: ended"
    assert [i for i, _ in tracker.update(faces(32, 110), 20)] == [1, 3], "a new face, a new id"


def test_smoother_averages_the_last_frames() -> None:
    smooth = Smoother(2)
    assert smooth(1, np.array([1.0, 0.0])).tolist() == [1.0, 0.0]
    assert smooth(1, np.array([0.0, 1.0])).tolist() == [0.5, 0.5]
    assert smooth(1, np.array([0.0, 1.0])).tolist() == [0.0, 1.0]
    assert smooth(2, np.array([0.2, 0.8])).tolist() == [0.2, 0.8], "tracks apart"


def test_beeps_found_and_clips_cut_in_sync(recording, tmp_path) -> None:
    beeps = find_beeps(recording, freq=1000, min_gap=0.5)
    assert [round(b.start, 2) for b in beeps] == pytest.approx(BEEPS, abs=0.03)
    assert not find_beeps(recording, freq=2500, min_gap=0.5), "no beep at another frequency"

    out = tmp_path / "clips"
    args = ["video", "split-beeps", str(recording), "--out", str(out), "--min-gap", "0.5"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    with (out / "cuts.tsv").open() as f:
        cuts = list(csv.DictReader(f, delimiter="\t"))
    assert [float(c["start"]) for c in cuts] == pytest.approx(BEEPS, abs=0.03)
    ends = [*BEEPS[1:], FRAMES / FPS]
    for cut, start, end in zip(cuts, BEEPS, ends, strict=True):
        clip = out / cut["clip"]
        assert abs(count_frames(clip) - (end - start) * FPS) <= 1
        (beep,) = find_beeps(clip, min_gap=0.5)
        assert beep.start == pytest.approx(0.0, abs=0.03), "the beep opens the clip's audio"
        with VideoReader(clip) as reader:
            flash = next(f.time for f in reader if f.image[:MARKER, :MARKER].mean() > 200)
        assert flash == pytest.approx(beep.start, abs=1.5 / FPS), "audio and video in sync"


def test_beep_events_gap_and_duration() -> None:
    ratios = np.array([0, 1, 1, 1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1], float)
    levels = np.ones_like(ratios)
    beeps = beep_events(ratios, levels, 0.02, min_duration=0.04, min_gap=0.2)
    assert [(round(b.start, 2), round(b.end, 2)) for b in beeps] == [(0.02, 0.14), (0.3, 0.36)]
    assert not beep_events(ratios, levels * 0.001, 0.02), "too quiet"


def gray_clip(path: Path, frames: int) -> None:
    """A clip whose frame ``k`` is uniformly gray at level ``10 + 5 k``."""
    with VideoWriter(path, FPS) as writer:
        for k in range(frames):
            writer.write(np.full((48, 64, 3), 10 + 5 * k, np.uint8))


def levels(path: Path) -> list[float]:
    with VideoReader(path) as reader:
        return [float(f.image.mean()) for f in reader]


def test_trim_by_marks_sorts_and_drops_flagged(tmp_path) -> None:
    clips = tmp_path / "clips"
    for label, name in (("happy", "p01"), ("sad", "p02"), ("surprise", "p03")):
        (clips / label).mkdir(parents=True)
        gray_clip(clips / label / f"{name}.mp4", 40)
    (clips / "happy" / "p01.tsv").write_text("3\t20\t10\t0\t0\t0\t0\t0\n")
    (clips / "sad" / "p02.tsv").write_text("0 25 5 0 0 1 0 0\n")  # low occlusion
    (clips / "surprise" / "p03.tsv").write_text("# clip p03\n5\t39\t9\t0\t0\t0\t0\t0\n")

    out = tmp_path / "sorted"
    result = CliRunner().invoke(_app(), ["video", "trim", "--marks", str(clips), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4")) == [
        "happy/p01.mp4",
        "surprise/p03.mp4",
    ]
    happy = levels(out / "happy" / "p01.mp4")
    assert len(happy) == 18
    assert happy[0] == pytest.approx(10 + 5 * 3, abs=3) and happy[-1] == pytest.approx(110, abs=3)
    assert len(levels(out / "surprise" / "p03.mp4")) == 35
    report = (out / "trim.tsv").read_text()
    assert "flagged low_occlusion" in report

    combined = tmp_path / "marks.tsv"
    combined.write_text(f"{clips}/sad/p02.mp4\t0\t25\t5\t0\t0\t1\t0\t0\tangry\n")
    args = ["video", "trim", "--marks", str(combined), "--out", str(tmp_path / "kept")]
    result = CliRunner().invoke(_app(), [*args, "--keep-flag", "low_occlusion"])
    assert result.exit_code == 0, result.output
    assert len(levels(tmp_path / "kept" / "angry" / "p02.mp4")) == 26


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("3\t89\t43\t1\t0\t0\t0", "expected 8 fields"),
        ("3\t89\tpeak\t1\t0\t0\t0\t0", "whole numbers"),
        ("89\t3\t43\t0\t0\t0\t0\t0", "start <= end"),
        ("3\t89\t95\t0\t0\t0\t0\t0", "peak 95 is outside"),
        ("3\t89\t43\t2\t0\t0\t0\t0", "non_correlating=2"),
    ],
)
def test_malformed_marks_name_file_and_line(tmp_path, line: str, message: str) -> None:
    marks = tmp_path / "happy" / "p01.tsv"
    marks.parent.mkdir()
    marks.write_text(f"# marks\n\n{line}\n")
    with pytest.raises(DataError, match=message) as err:
        read_clip_marks(marks, marks.with_suffix(".mp4"))
    assert f"{marks}:3" in str(err.value)


def test_malformed_marks_table(tmp_path) -> None:
    table = tmp_path / "marks.tsv"
    table.write_text(
        "happy/a.mp4\t3\t89\t43\t0\t0\t0\t0\t0\nb.mp4\t3\t89\t43\t0\t0\t0\t0\t0\tjoyful2\n"
    )
    with pytest.raises(DataError, match=rf"{table}:2: 'joyful2' is not an emotion"):
        read_marks_table(table)
    table.write_text("happy/a.mp4\t3\t89\n")
    with pytest.raises(DataError, match=rf"{table}:1: expected the clip"):
        read_marks_table(table)


def test_broken_truncated_and_empty_videos(recording, tmp_path) -> None:
    data = recording.read_bytes()
    cases = {
        "empty.mp4": (b"", "empty file"),
        "junk.mp4": (os.urandom(4000), "not a readable video"),
        "truncated.mp4": (data[: len(data) // 2], "damaged or truncated"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataError, match=message) as err:
            count_frames(path)
        assert str(path) in str(err.value)
    with pytest.raises(DataError, match="no such video file"):
        VideoReader(tmp_path / "missing.mp4")
    with pytest.raises(DataError, match="camera 63: cannot be opened"):
        VideoReader("63")  # a camera index with no camera behind it


def mjpeg_with_bad_frames(path: Path, frames: int, bad: tuple[int, ...]) -> None:
    """An MJPEG AVI whose frames ``bad`` have their JPEG headers zeroed."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        for k in range(frames):
            image = np.full((48, 64, 3), 4 * k, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xd8"]
    for k in bad:
        data[starts[k] : starts[k + 1] - 8] = bytes(starts[k + 1] - 8 - starts[k])
    path.write_bytes(bytes(data))


def test_undecodable_frames_are_skipped_and_counted(tmp_path) -> None:
    path = tmp_path / "damaged.avi"
    mjpeg_with_bad_frames(path, 30, (5, 12, 20))
    with VideoReader(path) as reader:
        frames = list(reader)
    assert (len(frames), reader.skipped) == (27, 3)
    with pytest.raises(DataError, match="3 frames could not be decoded"), VideoReader(path, 2) as r:
        list(r)


def test_faststart_file_cut_short_is_truncated(tmp_path) -> None:
    import av

    path = tmp_path / "faststart.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(40):
            image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated: the video ends after"):
        count_frames(path)


def test_segment_sampling() -> None:
    rng = np.random.default_rng(0)
    draws = np.array([segment_indices(30, 3, rng) for _ in range(200)])
    for s in range(3):
        assert set(draws[:, s]) == set(range(10 * s, 10 * s + 10)), "random within its segment"
    assert segment_indices(30, 3).tolist() == [5, 15, 25], "evenly spaced for testing"
    assert segment_indices(2, 3).tolist() == [0, 1, 1]
    assert set(segment_indices(2, 3, rng)) <= {0, 1}
    with pytest.raises(ConfigError):
        segment_indices(0, 3)


def test_decision_level_aggregation_math() -> None:
    assert [len(g) for g in frame_groups(25, 10)] == [3] * 5 + [2] * 5
    assert [g.tolist() for g in frame_groups(4, 10)] == [
        [i] for i in (0, 0, 0, 1, 1, 2, 2, 2, 3, 3)
    ]
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    assert decision_level(probs, 2).tolist() == [0.25, 0.75]  # groups {0,1}, {2,3}
    # 4 frames, 10 groups: frame 0 three times, 1 twice, 2 three times, 3 twice
    assert decision_level(probs, 10).tolist() == pytest.approx([0.3, 0.7])
    assert (group_clips(3, 3, 10) == [0, 1, 2]).all()
    groups = group_clips(30, 3, 10)
    assert groups[:, 0].tolist() == list(range(10)) and groups[:, 2].tolist() == list(range(20, 30))


def test_clip_aggregation_methods() -> None:
    torch.manual_seed(0)
    frames = torch.randn(5, 1, 32, 32)
    fan = create_model("fan_resnet18", num_classes=7, in_chans=1, input_size=32).eval()
    frame_wise = create_model("deep_emotion", input_size=32).eval()
    for model, methods in ((fan, AGGREGATIONS), (frame_wise, ("decision", "mean"))):
        for method in methods:
            probs = clip_probabilities(model, frames, method, groups=4)
            assert probs.shape == (7,) and probs.sum() == pytest.approx(1.0, abs=1e-5)
    with torch.inference_mode():
        f = fan.frame_features(frames[None]).mean(1)
        expected = fan.classifier(torch.cat([f, f], -1)).softmax(1)[0].numpy()
        per_frame = frame_wise(frames).softmax(1).numpy()
    assert clip_probabilities(fan, frames, "mean") == pytest.approx(expected, abs=1e-5)
    assert clip_probabilities(frame_wise, frames, "decision") == pytest.approx(
        decision_level(per_frame), abs=1e-5
    )
    with pytest.raises(ConfigError, match="frame attention"):
        clip_probabilities(frame_wise, frames, "attention")


def test_kmeans_keeps_one_frame_of_each_kind() -> None:
    rng = np.random.default_rng(0)
    kinds = rng.integers(0, 255, (3, 24, 24), dtype=np.uint8)
    order = rng.permutation(np.repeat(np.arange(3), 8))
    noise = rng.integers(-3, 4, (24, 24, 24))
    frames = np.clip(kinds[order] + noise, 0, 255).astype(np.uint8)
    picked = reduce_frames(frames, 3, seed=1)
    assert len(picked) == 3 and sorted(order[picked]) == [0, 1, 2]
    assert (reduce_frames(frames, 3, seed=1) == picked).all(), "seeded"
    embedded = reduce_frames(frames, 3, embed=lambda x: np.eye(3)[order], seed=2)
    assert sorted(order[embedded]) == [0, 1, 2]
    assert reduce_frames(frames[:2], 3).tolist() == [0, 1]


@pytest.fixture(scope="module")
def ckplus_clips() -> ClipDataset:
    if not CKPLUS.is_dir():
        pytest.skip(f"CK+ crops not found at {CKPLUS}")
    return load_ckplus_sequences(CKPLUS)


def test_ckplus_sequences_form_clips(ckplus_clips) -> None:
    assert len(ckplus_clips) == 327 and set(ckplus_clips.lengths) == {3}
    assert ckplus_clips.frames.shape == (981, 48, 48)
    assert ckplus_clips.subjects is not None and ckplus_clips.subjects[0].startswith("S")
    name = str(ckplus_clips.names[0])
    label, sequence = name.split("/")
    files = sorted((CKPLUS / {"angry": "anger"}.get(label, label)).glob(f"{sequence}_*.png"))
    expected = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])
    assert (ckplus_clips.clip(0) == expected).all(), "frames in sequence order"


def test_video_clip_folder_caches_face_crops(recording, tmp_path, monkeypatch) -> None:
    root = tmp_path / "clips"
    (root / "happy").mkdir(parents=True)
    from attnfer.video.io import cut_segment

    cut_segment(recording, root / "happy" / "s01_a.mp4", 0.0, 0.4)
    data = load_video_clips(root, size=48, channels=1, subject_pattern=r"(s\d+)_")
    assert data.lengths.tolist() == [10] and data.frames.shape == (10, 48, 48)
    assert data.subjects.tolist() == ["s01"] and data.label_names[data.labels[0]] == "happy"
    assert (root / ".attnfer-faces" / "48-gray" / "happy" / "s01_a.npz").is_file()

    def no_detection(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr("attnfer.video.clips.create_detector", no_detection)
    again = load_video_clips(root, size=48, channels=1)
    assert (again.frames == data.frames).all()


@pytest.mark.slow
def test_fan_trains_on_ckplus_sequences(ckplus_clips, tmp_path) -> None:
    from attnfer.train.clips import clip_recipe_from_dict, fit_clips

    raw = {
        "name": "fan_ckplus_test",
        "data": {"source": str(CKPLUS), "split": "subject", "fractions": [0.7, 0.1, 0.2]},
        "model": {"name": "fan_resnet18", "kwargs": {"attention": "relation"}},
        "preprocess": {"size": 32, "channels": 1},
        "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4},
        "schedule": {"name": "step", "step_size": 250, "gamma": 0.2},
        "trainer": {"epochs": 2, "batch_size": 16, "precision": "32-true"},
        "clips": {"frames": 3},
    }
    cr = clip_recipe_from_dict(raw)
    full = clip_splits(ckplus_clips, "subject", [0.7, 0.1, 0.2], seed=0)
    parts = {"train": full.splits["train"][:32], "val": full.splits["val"][:8]}
    parts["test"] = full.splits["test"][:32]
    subset = full.subset(np.concatenate(list(parts.values())), "ckplus_sequences")
    bounds = np.cumsum([0, *map(len, parts.values())])
    subset.splits = {name: np.arange(bounds[i], bounds[i + 1]) for i, name in enumerate(parts)}
    train_subjects = set(subset.split("train").subjects)
    assert not train_subjects & set(subset.split("test").subjects), "subject-independent"

    result = fit_clips(cr, tmp_path / "run", subset, progress=False)
    report = result.test_report
    assert report is not None and report["samples"] == 32
    assert 0.0 <= report["accuracy"] <= 1.0
    print(f"FAN on CK+ sequences (2 epochs, subset): test accuracy {report['accuracy']:.3f}")
    pre = load_pretrained(result.model_path)
    assert pre.arch == "fan_resnet18" and pre.info["clips"]["frames"] == 3
    assert (tmp_path / "run" / "eval_test.json").is_file()


def test_frame_wise_model_trains_on_clips(ckplus_clips, tmp_path) -> None:
    from attnfer.train.clips import clip_recipe_from_dict, fit_clips

    raw = {
        "data": {"source": str(CKPLUS), "split": "stratified"},
        "model": {"name": "deep_emotion"},
        "optimizer": {"name": "adam", "lr": 0.005},
        "trainer": {"epochs": 1, "batch_size": 32, "precision": "32-true"},
        "clips": {"frames": 3, "groups": 4},
    }
    cr = clip_recipe_from_dict(raw, "deep_emotion_clips")
    data = ckplus_clips.subset(np.arange(0, 327, 3), "ckplus_sequences")
    data.splits = {"train": np.arange(0, 80), "val": np.arange(80, 95), "test": np.arange(95, 109)}
    result = fit_clips(cr, tmp_path / "run", data, progress=False)
    assert result.test_report["aggregation"] == "decision" and result.test_report["samples"] == 14

    args = ["video", "evaluate-clips", str(tmp_path / "run"), "--data", str(CKPLUS)]
    outcome = CliRunner().invoke(_app(), [*args, "--split", "val", "--out", str(tmp_path / "ev")])
    assert outcome.exit_code == 0, outcome.output
    assert "accuracy" in outcome.output and (tmp_path / "ev" / "eval_val_decision.json").is_file()


def test_clip_recipe_errors() -> None:
    from attnfer.train.clips import clip_recipe_from_dict

    base = {"data": {"source": "x"}, "model": {"name": "fan_resnet18"}}
    with pytest.raises(ConfigError, match="unknown key"):
        clip_recipe_from_dict({**base, "clips": {"segments": 3}})
    with pytest.raises(ConfigError, match="clips: frames must be a whole number"):
        clip_recipe_from_dict({**base, "clips": {"frames": 0}})
    with pytest.raises(ConfigError, match="aggregation"):
        clip_recipe_from_dict({**base, "clips": {"aggregation": "max"}})


@pytest.mark.parametrize("name", ["fan_emo2018", "deep_emotion_emo2018", "fan_ckplus_sequences"])
def test_paper004_recipes_parse_as_clip_recipes(name: str) -> None:
    from attnfer.train.clips import load_clip_recipe

    path = Path(__file__).resolve().parents[1] / "recipes" / "paper004" / f"{name}.yaml"
    cr = load_clip_recipe(path, ["clips.frames=5"])
    assert cr.clips.frames == 5 and cr.recipe.paper["id"] == "004"
    assert cr.recipe.optimizer.momentum == 0.9


def test_fan_backbone_starts_from_the_shipped_default() -> None:
    """The FAN recipes name ``default``: its ResNet18 weights fill FAN's frame embedding."""
    from attnfer.pretrained import resolve
    from attnfer.train.clips import load_clip_recipe, make_clip_task

    path = Path(__file__).resolve().parents[1] / "recipes" / "paper004" / "fan_emo2018.yaml"
    task = make_clip_task(load_clip_recipe(path).recipe, BASIC7)
    default = load_pretrained("default")
    assert default.arch == "resnet18_cbam" and resolve("default").is_file()
    shipped = default.model.state_dict()
    own = task.model.state_dict()
    for key in ("conv1.weight", "layer1.0.conv1.weight", "layer4.1.bn2.running_var"):
        assert torch.equal(own["backbone." + key], shipped[key].float()), key
    assert any(".attention." in k for k in shipped), "the default has CBAM weights"
    assert not any(".attention." in k for k in own), "which FAN's plain ResNet18 leaves out"


def test_clip_task_continues_training_only_with_the_same_classes() -> None:
    """``continue_training`` of a frame-wise clip model checks the file's class names."""
    from attnfer.errors import ModelError
    from attnfer.train.clips import load_clip_recipe, make_clip_task

    path = (
        Path(__file__).resolve().parents[1] / "recipes" / "paper004" / "deep_emotion_emo2018.yaml"
    )
    sets = ["model.name=resnet18_cbam", "model.kwargs.stem=cifar_s2", "model.weights=default"]
    recipe = load_clip_recipe(path, [*sets, "model.weights_mode=continue_training"]).recipe
    task = make_clip_task(recipe, BASIC7)
    shipped = load_pretrained("default").model.state_dict()["classifier.weight"].float()
    assert torch.equal(task.model.state_dict()["classifier.weight"], shipped)
    swapped = (BASIC7[1], BASIC7[0], *BASIC7[2:])
    with pytest.raises(ModelError, match="class names"):
        make_clip_task(recipe, swapped)


@pytest.mark.parametrize("name", ["fan_emo2018", "deep_emotion_emo2018"])
def test_emo2018_recipes_train_on_a_clip_folder(name: str, recording, tmp_path) -> None:
    """EMO2018 itself is not available: its recipes run end to end on a folder of the same
    layout (``<emotion>/*.mp4``) cut from the test recording, as `video trim` would write it."""
    from attnfer.video.io import cut_segment

    root = tmp_path / "clips"
    for label, offset in (("happy", 0.0), ("sad", 0.2)):
        (root / label).mkdir(parents=True)
        for k in range(5):
            start = offset + 0.7 * k
            cut_segment(recording, root / label / f"s{k:02d}.mp4", start, start + 0.2)
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "paper004" / f"{name}.yaml"
    sets = [f"data.source={root}", "data.fractions=[0.6,0.2,0.2]", "trainer.epochs=1"]
    args = ["video", "train-clips", "-c", str(recipe), "--out", str(tmp_path / "run")]
    outcome = CliRunner().invoke(_app(), [*args, *[a for s in sets for a in ("--set", s)]])
    assert outcome.exit_code == 0, outcome.output
    assert "best val accuracy" in outcome.output and "test accuracy" in outcome.output
    report = json.loads((tmp_path / "run" / "eval_test.json").read_text())
    assert report["samples"] == 2, "one happy and one sad clip of five each"
    assert load_pretrained(tmp_path / "run").info["clips"]["frames"] == 3


@pytest.fixture
def http_folder(tmp_path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on a loopback port: (folder, base URL)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_stream_url_gives_the_same_results_as_the_file(recording, model_path, http_folder) -> None:
    folder, base = http_folder
    shutil.copy(recording, folder / "session.mp4")
    recognizer = Recognizer(str(model_path), faces="detect")
    from_file = list(iter_video(recognizer, recording, every=5, smooth=2))
    from_url = list(iter_video(recognizer, f"{base}/session.mp4", every=5, smooth=2))
    assert len(from_url) == len(from_file) == FRAMES
    for a, b in zip(from_url, from_file, strict=True):
        assert [f.box for f in a.faces] == [f.box for f in b.faces]
        assert [f.label for f in a.faces] == [f.label for f in b.faces]
    with pytest.raises(DataError, match=r"missing\.mp4"):
        list(iter_video(recognizer, f"{base}/missing.mp4"))
