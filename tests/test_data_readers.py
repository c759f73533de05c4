"""Readers on fixtures written here (real PNG/JPEG/TIFF files, CSVs) and on ../shared/datasets."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attnfer.data.dataset import FaceDataset
from attnfer.data.decode import BadSamples, Decoder, decode_image
from attnfer.data.labels import CANONICAL
from attnfer.data.readers import (
    detect_format,
    load_dataset,
    read_ckplus,
    read_fer2013_csv,
    read_ferplus,
    read_folder,
    read_image_csv,
    read_jaffe,
    read_rafdb,
)
from attnfer.errors import ConfigError, DataError

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
IDX = {name: i for i, name in enumerate(CANONICAL)}


def write_image(path: Path, value: int, size: int = 8, mode: str = "L") -> Path:
    """A flat image of ``value`` (PNG, JPEG, TIFF by suffix); flat so JPEG keeps it exactly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, value, value)
    Image.new(mode, (size, size), color).save(path)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def label_names(data: FaceDataset, rows) -> list[str]:
    return [data.label_names[data.labels[i]] for i in rows]


# --- decoding and bad samples -------------------------------------------------------------


def test_decode_image_modes_sizes_and_bytes(tmp_path):
    png = write_image(tmp_path / "a.png", 100, size=10)
    assert decode_image(png).shape == (10, 10)
    assert decode_image(png).dtype == np.uint8 and (decode_image(png) == 100).all()
    rgb = decode_image(png, color="rgb", size=4)
    assert rgb.shape == (4, 4, 3) and (rgb == 100).all()
    jpg = write_image(tmp_path / "b.jpg", 200, mode="RGB")
    assert decode_image(jpg.read_bytes()).shape == (8, 8)
    with pytest.raises(ConfigError, match="color"):
        decode_image(png, color="bgr")


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty file"), (b"hello, not a picture", "not an image"), (None, "cannot read")],
)
def test_decode_image_bad_files_name_the_file(tmp_path, content, reason):
    path = tmp_path / "face.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=f"face.jpg: {reason}"):
        decode_image(path)


def test_decode_image_truncated_jpeg(tmp_path):
    path = tmp_path / "cut.jpg"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match=r"cut\.jpg: corrupt image"):
        decode_image(path)


def test_bad_samples_threshold_and_summary():
    bad = BadSamples(max_bad_samples=2)
    bad.add("x/a.jpg", "not an image")
    bad.add("x/b.jpg", "empty file (0 bytes)")
    bad.drop("FER+ majority unknown", 3)
    assert len(bad) == 2
    summary = bad.summary()
    assert "2 bad samples" in summary and "x/a.jpg (not an image)" in summary
    assert "3 dropped (FER+ majority unknown)" in summary
    with pytest.raises(DataError, match=r"max_bad_samples=2.*x/a\.jpg.*x/c\.csv:7 \(bad row\)"):
        bad.add("x/c.csv:7", "bad row")
    assert BadSamples().summary() == "no bad samples"
    unlimited = BadSamples(max_bad_samples=None)
    unlimited.add("folder", "unknown label folder", count=10_000)
    assert len(unlimited) == 10_000


# --- folder trees -------------------------------------------------------------------------


@pytest.fixture
def split_tree(tmp_path) -> Path:
    root = tmp_path / "tree"
    write_image(root / "train" / "anger" / "a1.png", 10)
    write_image(root / "train" / "anger" / "a2.jpg", 20)
    write_image(root / "train" / "Happiness" / "h1.png", 30)
    write_image(root / "valid" / "angry" / "a3.png", 40)
    write_image(root / "test" / "happy" / "h2.png", 50)
    write_image(root / "test" / "other" / "o1.png", 60)  # unknown label folder
    write_text(root / "train" / "anger" / "notes.jpg", "a text file named .jpg")
    write_text(root / "train" / "anger" / "empty.png", "")
    write_text(root / "train" / "anger" / ".DS_Store", "junk")  # hidden: ignored
    return root


def test_folder_tree_with_splits_and_bad_files(split_tree):
    decoder = Decoder(bad=BadSamples(max_bad_samples=10))
    data = read_folder(split_tree, decoder=decoder)
    assert len(data) == 5 and data.name == "tree"
    assert list(data.splits) == ["train", "val", "test"]
    assert [len(v) for v in data.splits.values()] == [3, 1, 1]
    assert sorted(label_names(data, data.splits["train"])) == ["angry", "angry", "happy"]
    assert label_names(data, data.splits["test"]) == ["happy"]
    assert data.images.shape == (5, 8, 8) and data.label_names == CANONICAL[:7]
    assert sorted(int(data.images[i, 0, 0]) for i in range(5)) == [10, 20, 30, 40, 50]
    bad = decoder.bad
    assert len(bad) == 3
    reasons = dict(bad.entries)
    assert reasons[str(split_tree / "train" / "anger" / "notes.jpg")] == "not an image"
    assert reasons[str(split_tree / "train" / "anger" / "empty.png")] == "empty file (0 bytes)"
    assert "unknown label folder 'other'" in reasons[str(split_tree / "test" / "other")]


def test_folder_tree_stops_past_max_bad_samples(split_tree):
    with pytest.raises(DataError, match=r"max_bad_samples=1: .*test/other \(unknown.*empty\.png"):
        load_dataset(split_tree, max_bad_samples=1)


def test_folder_tree_without_splits_resizes_mixed_sizes(tmp_path):
    write_image(tmp_path / "sad" / "1.png", 10, size=20)
    write_image(tmp_path / "surprised" / "2.png", 20, size=30)
    data = read_folder(tmp_path)
    assert data.splits == {} and data.images.shape == (2, 48, 48)
    assert label_names(data, range(2)) == ["sad", "surprise"]
    small = read_folder(tmp_path, decoder=Decoder(color="rgb", size=16))
    assert small.images.shape == (2, 16, 16, 3) and small.channels == 3


def test_folder_with_no_images_is_a_clear_error(tmp_path):
    write_text(tmp_path / "happy" / "x.png", "")
    with pytest.raises(DataError, match=r"no readable images found.*x\.png \(empty file"):
        read_folder(tmp_path)


# --- FER2013 and FER+ CSVs ----------------------------------------------------------------


def fer_row(code, value: int, usage: str, side: int = 4) -> str:
    return f"{code},{' '.join([str(value)] * side * side)},{usage}"


@pytest.fixture
def fer_csv(tmp_path) -> Path:
    rows = [
        fer_row(0, 10, "Training"),
        fer_row(3, 20, "Training"),
        fer_row(6, 30, "PublicTest"),
        fer_row(5, 40, "PrivateTest"),
    ]
    return write_text(tmp_path / "fer2013.csv", "emotion,pixels,Usage\n" + "\n".join(rows) + "\n")


def test_fer2013_csv(fer_csv):
    data = read_fer2013_csv(fer_csv)
    assert data.images.shape == (4, 4, 4) and data.name == "fer2013"
    assert label_names(data, range(4)) == ["angry", "happy", "neutral", "surprise"]
    assert [int(data.images[i].mean()) for i in range(4)] == [10, 20, 30, 40]
    assert {k: v.tolist() for k, v in data.splits.items()} == {
        "train": [0, 1],
        "val": [2],
        "test": [3],
    }
    rgb = read_fer2013_csv(fer_csv, decoder=Decoder(color="rgb", size=8))
    assert rgb.images.shape == (4, 8, 8, 3)


def test_fer2013_csv_malformed_rows_are_skipped(fer_csv):
    with open(fer_csv, "a") as f:
        f.write("3,1 2 3 4\n")  # missing Usage field
        f.write(fer_row(9, 10, "Training") + "\n")  # no such emotion
        f.write("2,1 2 3,Training\n")  # 3 pixels: not square
        f.write("2,1 2 x 4,Training\n")  # not numbers
        f.write("2,1 2 3 999,Training\n")  # out of range
        f.write(fer_row(1, 10, "Holdout") + "\n")  # unknown usage
    decoder = Decoder()
    data = read_fer2013_csv(fer_csv, decoder=decoder)
    assert len(data) == 4
    assert [where.rsplit(":", 1)[1] for where, _ in decoder.bad.entries] == [
        "6", "7", "8", "9", "10", "11",
    ]  # fmt: skip
    assert "wrong number of fields" in decoder.bad.entries[0][1]
    assert "not a FER2013 code" in decoder.bad.entries[1][1]
    with pytest.raises(DataError, match=r"fer2013\.csv:6"):
        read_fer2013_csv(fer_csv, decoder=Decoder(bad=BadSamples(max_bad_samples=0)))


def test_fer2013_csv_odd_labels_bytes_and_huge_fields_cost_their_row_only(fer_csv):
    with open(fer_csv, "ab") as f:
        f.write(fer_row("\u00b2", 10, "Training").encode() + b"\n")  # isdigit(), not int()
        f.write(fer_row(2, 10, "Training").encode().replace(b"Training", b"Tr\xffining") + b"\n")
        f.write(b"2," + b"1 " * 70_000 + b"1,Training\n")  # a field over 131,072 characters
        f.write(fer_row(4, 50, "Training").encode() + b"\n")
    decoder = Decoder()
    data = read_fer2013_csv(fer_csv, decoder=decoder)
    assert len(data) == 5 and int(data.images[-1].mean()) == 50  # the row after them is read
    problems = [(where.rsplit(":", 1)[1], problem) for where, problem in decoder.bad.entries]
    assert [line for line, _ in problems] == ["6", "7", "8"]
    assert problems[0][1] == "emotion '\u00b2' is not a FER2013 code 0..6"
    assert problems[1][1] == "not UTF-8 text"
    assert problems[2][1].startswith("unreadable row (field larger than field limit")


FERPLUS_HEADER = (
    "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
)


def test_ferplus_majority_and_soft_labels(fer_csv):
    votes = [
        "Training,fer0000000.png,0,8,1,0,0,0,0,1,0,0",  # happy, with some surprise and contempt
        "Training,fer0000001.png,2,0,0,0,0,0,0,0,8,0",  # majority unknown: dropped
        "PublicTest,,0,0,0,0,0,0,0,0,0,10",  # not a face: dropped
        "PrivateTest,fer0000003.png,0,0,2,0,0,0,0,6,2,0",  # contempt
    ]
    path = write_text(fer_csv.parent / "fer2013new.csv", "\n".join([FERPLUS_HEADER, *votes]))
    decoder = Decoder()
    data = read_ferplus(path, decoder=decoder)
    assert data.label_names == CANONICAL and len(data) == 2
    assert label_names(data, range(2)) == ["happy", "contempt"]
    assert [int(data.images[i].mean()) for i in range(2)] == [10, 40]
    assert {k: v.tolist() for k, v in data.splits.items()} == {"train": [0], "test": [1]}
    assert data.soft_labels.shape == (2, 8)
    np.testing.assert_allclose(data.soft_labels.sum(1), 1.0, rtol=1e-6)
    assert data.soft_labels[0, IDX["happy"]] == pytest.approx(0.8)
    assert data.soft_labels[0, IDX["surprise"]] == pytest.approx(0.1)
    assert data.soft_labels[1, IDX["contempt"]] == pytest.approx(0.75)
    assert decoder.bad.dropped == {"FER+ majority unknown or not a face": 2}
    assert len(decoder.bad) == 0
    assert detect_format(path) == "ferplus" and len(load_dataset(path)) == 2


def test_ferplus_needs_matching_fer2013(fer_csv, tmp_path):
    path = write_text(tmp_path / "votes" / "fer2013new.csv", FERPLUS_HEADER + "\n")
    with pytest.raises(DataError, match="need the FER2013 CSV"):
        read_ferplus(path)
    with pytest.raises(DataError, match=r"0 rows but .* has 4"):
        read_ferplus(path, fer2013=fer_csv)


# --- generic CSV (AffectNet style) --------------------------------------------------------


def test_image_csv_with_names_codes_and_bad_rows(tmp_path):
    write_image(tmp_path / "img" / "a.png", 10)
    write_image(tmp_path / "img" / "b.png", 20)
    write_image(tmp_path / "img" / "c.png", 30)
    rows = [
        "path,label,split",
        "img/a.png,Happiness,train",
        "img/b.png,4,test",  # FER2013 code 4: sad
        "img/c.png,bored,train",  # unknown label
        "img/missing.png,fear,train",  # no such file
        "img/a.png",  # malformed
    ]
    path = write_text(tmp_path / "list.csv", "\n".join(rows) + "\n")
    decoder = Decoder()
    data = read_image_csv(path, decoder=decoder)
    assert label_names(data, range(2)) == ["happy", "sad"]
    assert {k: v.tolist() for k, v in data.splits.items()} == {"train": [0], "test": [1]}
    reasons = [reason for _, reason in decoder.bad.entries]
    assert reasons[0] == "unknown label 'bored'"
    assert reasons[1] == "malformed row (too few fields)"
    assert reasons[2].startswith("cannot read file")
    assert decoder.bad.entries[2][0].endswith("missing.png")
    assert detect_format(path) == "csv"


def test_affectnet_csv_codes(tmp_path):
    write_image(tmp_path / "imgs" / "1" / "x.jpg", 10, mode="RGB")
    write_image(tmp_path / "imgs" / "1" / "y.jpg", 20, mode="RGB")
    header = (
        "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression"
    )
    rows = [header, "1/x.jpg,0,0,8,8,,6", "1/y.jpg,0,0,8,8,,10"]
    path = write_text(tmp_path / "training.csv", "\n".join(rows))
    decoder = Decoder(color="rgb")
    data = read_image_csv(path, image_root=tmp_path / "imgs", decoder=decoder)
    assert len(data) == 1 and label_names(data, [0]) == ["angry"]  # AffectNet 6: anger
    assert data.images.shape == (1, 8, 8, 3)
    assert decoder.bad.dropped == {"AffectNet 'no face', not an expression": 1}


# --- CK+ ----------------------------------------------------------------------------------


def test_ckplus_crops_with_subjects(tmp_path):
    write_image(tmp_path / "anger" / "S005_001_00000010.png", 10)
    write_image(tmp_path / "anger" / "S005_001_00000011.png", 11)
    write_image(tmp_path / "contempt" / "S010_002_00000014.png", 12)
    write_image(tmp_path / "happy" / "S011_004_00000019.png", 13)
    assert detect_format(tmp_path) == "ckplus"
    write_image(tmp_path / "happy" / "face.png", 14)  # no subject id in the name
    decoder = Decoder()
    data = read_ckplus(tmp_path, decoder=decoder)
    assert data.subjects.tolist() == ["S005", "S005", "S010", "S011"]
    assert label_names(data, range(4)) == ["angry", "angry", "contempt", "happy"]
    assert data.label_names == CANONICAL  # contempt present
    assert decoder.bad.entries[0][0].endswith("face.png")


def test_ckplus_original_layout_takes_last_frames(tmp_path):
    images, emotion = tmp_path / "cohn-kanade-images", tmp_path / "Emotion"
    for frame in range(1, 6):
        write_image(images / "S005" / "001" / f"S005_001_{frame:08d}.png", frame * 10)
        write_image(images / "S010" / "002" / f"S010_002_{frame:08d}.png", 100 + frame)
    write_image(images / "S011" / "001" / "S011_001_00000001.png", 0)  # unlabelled: ignored
    write_text(emotion / "S005" / "001" / "S005_001_00000005_emotion.txt", "   3.0000000e+00\n")
    write_text(emotion / "S010" / "002" / "S010_002_00000005_emotion.txt", "   2.0000000e+00\n")
    write_text(emotion / "S020" / "001" / "S020_001_00000005_emotion.txt", "happy\n")
    assert detect_format(tmp_path) == "ckplus"
    decoder = Decoder()
    data = read_ckplus(tmp_path, decoder=decoder)
    assert len(data) == 6
    assert label_names(data, range(6)) == ["disgust"] * 3 + ["contempt"] * 3  # CK+ 3, 2
    assert data.subjects.tolist() == ["S005"] * 3 + ["S010"] * 3
    assert [int(v) for v in data.images[:, 0, 0]] == [30, 40, 50, 103, 104, 105]
    assert decoder.bad.entries[0][0].endswith("S020_001_00000005_emotion.txt")
    one = load_dataset(tmp_path, frames=1)
    assert [int(v) for v in one.images[:, 0, 0]] == [50, 105]
    with pytest.raises(ConfigError, match="frames"):
        read_ckplus(tmp_path, frames=0)


# --- JAFFE --------------------------------------------------------------------------------


def test_jaffe_codes_and_subjects(tmp_path):
    names = ["KA.AN1.39.tiff", "KA.HA2.30.tiff", "KM.NE3.14.tiff", "YM.SU1.58.tiff"]
    for i, name in enumerate(names):
        write_image(tmp_path / name, 10 * i, size=16)
    write_image(tmp_path / "KA.XX1.1.tiff", 0, size=16)  # no expression code
    write_text(tmp_path / "README", "JAFFE")
    assert detect_format(tmp_path) == "jaffe"
    decoder = Decoder()
    data = read_jaffe(tmp_path, decoder=decoder)
    assert label_names(data, range(4)) == ["angry", "happy", "neutral", "surprise"]
    assert data.subjects.tolist() == ["KA", "KA", "KM", "YM"]
    assert data.images.shape == (4, 16, 16)
    assert [w for w, _ in decoder.bad.entries] == [str(tmp_path / "KA.XX1.1.tiff")]


# --- RAF-DB -------------------------------------------------------------------------------


@pytest.fixture
def rafdb(tmp_path) -> Path:
    base = tmp_path / "basic"
    lines = ["train_00001.jpg 1", "train_00002.jpg 6", "test_0001.jpg 7", "test_0002.jpg nine"]
    write_text(base / "EmoLabel" / "list_patition_label.txt", "\n".join(lines) + "\n")
    for i, name in enumerate(["train_00001", "train_00002", "test_0001"]):
        write_image(base / "Image" / "aligned" / f"{name}_aligned.jpg", 50 * i, size=12, mode="RGB")
        write_image(base / "Image" / "original" / f"{name}.jpg", 50 * i, size=20 + i, mode="RGB")
    return base


def test_rafdb_aligned_and_original(rafdb):
    decoder = Decoder()
    data = read_rafdb(rafdb, decoder=decoder)
    assert label_names(data, range(3)) == ["surprise", "angry", "neutral"]  # RAF 1, 6, 7
    assert {k: v.tolist() for k, v in data.splits.items()} == {"train": [0, 1], "test": [2]}
    assert data.images.shape == (3, 12, 12, 3)  # colour by default
    assert decoder.bad.entries == [(f"{rafdb / 'EmoLabel' / 'list_patition_label.txt'}:4",
                                    "malformed line, expected 'train_00001.jpg 5'")]  # fmt: skip
    original = read_rafdb(rafdb, aligned=False)
    assert original.images.shape == (3, 100, 100, 3)  # sizes differ: default rgb size
    gray = read_rafdb(rafdb, aligned=False, decoder=Decoder(color="gray"))
    assert gray.images.shape == (3, 48, 48)
    assert detect_format(rafdb) == "rafdb"
    assert detect_format(rafdb / "EmoLabel" / "list_patition_label.txt") == "rafdb"


# --- load_dataset -------------------------------------------------------------------------


def test_load_dataset_detects_and_round_trips_packed(fer_csv, tmp_path):
    assert detect_format(fer_csv) == "fer2013"
    data = load_dataset(fer_csv)
    packed = data.save(tmp_path / "fer.safetensors")
    assert detect_format(packed) == "packed"
    back = load_dataset(packed)
    assert list(back.splits) == ["train", "val", "test"]
    np.testing.assert_array_equal(back.images, data.images)
    np.testing.assert_array_equal(back.labels, data.labels)
    assert back.summary() == data.summary()
    assert load_dataset(packed, color="rgb", size=6).images.shape == (4, 6, 6, 3)


def test_load_dataset_format_override_and_errors(fer_csv, tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_dataset(tmp_path / "nothing")
    write_image(tmp_path / "flat" / "a.png", 1)
    with pytest.raises(DataError, match="cannot tell the data format"):
        load_dataset(tmp_path / "flat")
    with pytest.raises(ConfigError, match="unknown data format 'xyz'"):
        load_dataset(fer_csv, format="xyz")
    with pytest.raises(ConfigError, match="takes no option frames"):
        load_dataset(fer_csv, frames=3)
    with pytest.raises(DataError, match="no column emotion"):
        load_dataset(write_text(tmp_path / "x.csv", "a,b\n1,2\n"), format="fer2013")
    with pytest.raises(DataError, match="not a packed attnfer data set"):
        load_dataset(fer_csv, format="packed")


def test_load_dataset_logs_bad_samples(split_tree, caplog):
    data = load_dataset(split_tree)
    assert len(data) == 5
    assert "3 bad samples skipped" in caplog.text and "notes.jpg (not an image)" in caplog.text


# --- the real data sets in ../shared/datasets ---------------------------------------------

FER2013_COUNTS = {
    "train": {"angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215, "sad": 4830,
              "surprise": 3171, "neutral": 4965},
    "val": {"angry": 467, "disgust": 56, "fear": 496, "happy": 895, "sad": 653,
            "surprise": 415, "neutral": 607},
    "test": {"angry": 491, "disgust": 55, "fear": 528, "happy": 879, "sad": 594,
             "surprise": 416, "neutral": 626},
}  # fmt: skip


def real(name: str) -> Path:
    path = DATASETS / name
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="module")
def fer2013() -> FaceDataset:
    """The FER2013 JPEG tree, decoded once for this module."""
    start = time.perf_counter()
    data = load_dataset(real("fer2013"), max_bad_samples=0)
    print(f"decoded the FER2013 tree in {time.perf_counter() - start:.1f} s")
    return data


@pytest.mark.slow
def test_real_fer2013_tree(fer2013):
    assert fer2013.summary() == FER2013_COUNTS
    assert fer2013.images.shape == (35_887, 48, 48)
    assert fer2013.label_names == CANONICAL[:7]


@pytest.mark.slow
def test_real_fer2013_pack_round_trip(fer2013, tmp_path):
    path = fer2013.save(tmp_path / "fer2013.safetensors")
    start = time.perf_counter()
    back = load_dataset(path)
    seconds = time.perf_counter() - start
    print(f"loaded packed FER2013 ({path.stat().st_size / 1e6:.1f} MB) in {seconds:.3f} s")
    assert seconds < 2.0
    np.testing.assert_array_equal(back.images, fer2013.images)
    np.testing.assert_array_equal(back.labels, fer2013.labels)
    assert back.summary() == FER2013_COUNTS


def test_real_ckplus48():
    decoder = Decoder(bad=BadSamples(max_bad_samples=0))
    data = read_ckplus(real("ckplus48"), decoder=decoder)
    assert len(data) == 981 and data.images.shape == (981, 48, 48)
    assert sum(n > 0 for n in data.class_counts().values()) == 7
    assert data.class_counts()["contempt"] == 54 and data.class_counts()["neutral"] == 0
    assert len(set(data.subjects.tolist())) == 118
    assert detect_format(real("ckplus48")) == "ckplus"
