"""The clip labelling tool (attnfer annotate): clips and marks files, resuming, the API and its
refusal of paths, and the page driven by its keys in headless Chromium."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("av")
pytest.importorskip("fastapi")

import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from attnfer.annotate.app import Hints, create_app
from attnfer.annotate.store import MarksStore, Skipped
from attnfer.cli.annotate import annotate
from attnfer.data.labels import CANONICAL
from attnfer.errors import DataError
from attnfer.serve.hardening import GuardSettings, allowed_hosts
from attnfer.video import VideoReader, VideoWriter
from attnfer.video.io import VIDEO_SUFFIXES
from attnfer.video.marks import FLAGS, MarkedClip, Marks, find_marks, read_marks_table
from attnfer.video.trim import trim_clips

CKPLUS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ckplus48"
FPS, FRAMES = 25, 20
COLUMNS = "start end peak non_correlating abnormal_limb low_occlusion heavy_occlusion other"
HEADER = "\t".join(("# clip", *COLUMNS.split(), "emotion"))


def level(k: int) -> int:
    """The gray level of frame ``k`` of the test clips."""
    return 10 + 10 * k


def gray_clip(path: Path, frames: int = FRAMES) -> None:
    with VideoWriter(path, FPS) as writer:
        for k in range(frames):
            writer.write(np.full((48, 64, 3), level(k), np.uint8))


@pytest.fixture
def clips(tmp_path) -> Path:
    """happy/a.mp4 and sad/b.mp4 (20 frames each), a broken surprise/broken.mp4, a clip in no
    emotion folder and one in a hidden folder."""
    root = tmp_path / "clips"
    gray_clip(root / "happy" / "a.mp4")
    gray_clip(root / "sad" / "b.mp4")
    (root / "surprise").mkdir()
    (root / "surprise" / "broken.mp4").write_bytes(b"not a video at all")
    (root / "misc").mkdir()
    (root / "misc" / "c.mp4").write_bytes(b"")
    (root / ".cache" / "happy").mkdir(parents=True)
    (root / ".cache" / "happy" / "d.mp4").write_bytes(b"")
    return root


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# The store: clips, marks files, resuming.


def test_clips_found_and_session_resumes_at_first_unlabelled(clips) -> None:
    store = MarksStore(clips)
    assert [c.name for c in store.clips] == ["happy/a.mp4", "sad/b.mp4", "surprise/broken.mp4"]
    assert [c.label for c in store.clips] == ["happy", "sad", "surprise"]
    assert [s.name for s in store.skipped] == ["misc/c.mp4"], "hidden folders are passed over"
    assert isinstance(store.skipped[0], Skipped)
    assert store.first_unlabelled() == 0

    store.save(0, Marks(3, 8, 6), FRAMES)
    (clips / "sad" / "b.tsv").write_text("3 8\n")  # a damaged marks file: still unlabelled
    assert MarksStore(clips).first_unlabelled() == 1, "a new session resumes after saved clips"
    store.save(1, Marks(0, 19, 10), FRAMES)
    assert MarksStore(clips).first_unlabelled() == 2
    store.save(2, Marks(0, 0, 0))
    assert MarksStore(clips).first_unlabelled() is None
    assert MarksStore(clips).labelled() == [True, True, True]

    with pytest.raises(DataError, match="no clips in emotion folders"):
        MarksStore(clips / "misc")


def test_save_writes_clip_and_combined_files_atomically(clips) -> None:
    store = MarksStore(clips)
    store.save(0, Marks(3, 8, 6, non_correlating=True), FRAMES)
    clip_file = clips / "happy" / "a.tsv"
    assert clip_file.read_text() == "3\t8\t6\t1\t0\t0\t0\t0\n"
    assert store.table.read_text() == f"{HEADER}\nhappy/a.mp4\t3\t8\t6\t1\t0\t0\t0\t0\thappy\n"

    inodes = clip_file.stat().st_ino, store.table.stat().st_ino
    store.save(0, Marks(2, 9, 4, heavy_occlusion=True, other=True), FRAMES)
    store.save(1, Marks(0, 19, 19, abnormal_limb=True, low_occlusion=True), FRAMES)
    assert (clip_file.stat().st_ino, store.table.stat().st_ino) != inodes, "replaced, not rewritten"
    assert clip_file.read_text() == "2\t9\t4\t0\t0\t0\t1\t1\n"
    assert (clips / "sad" / "b.tsv").read_text() == "0\t19\t19\t0\t1\t1\t0\t0\n"
    assert store.table.read_text().splitlines() == [
        HEADER,
        "happy/a.mp4\t2\t9\t4\t0\t0\t0\t1\t1\thappy",
        "sad/b.mp4\t0\t19\t19\t0\t1\t1\t0\t0\tsad",
    ]
    table = store.table.read_text()
    for marks, message in [
        (Marks(5, 8, 9), r"sad/b.mp4: peak 9 is outside start..end \(5..8\)"),
        (Marks(8, 5, 6), "needs 0 <= start <= end"),
        (Marks(3, 20, 5), r"end 20 is past the last frame \(19\)"),
    ]:
        with pytest.raises(DataError, match=message):
            store.save(1, marks, FRAMES)
    assert (clips / "sad" / "b.tsv").read_text() == "0\t19\t19\t0\t1\t1\t0\t0\n", "kept"
    assert store.table.read_text() == table
    expected = ["happy/a.mp4", "happy/a.tsv", "marks.tsv", "sad/b.mp4", "sad/b.tsv"]
    assert [f for f in files(clips) if not f.startswith((".cache", "misc", "surprise"))] == expected
    assert not any(f.endswith(".tmp") for f in files(clips)), "no temporary file left"


def test_clips_that_would_share_a_marks_file_or_break_a_line_are_left_out(tmp_path) -> None:
    happy = tmp_path / "happy"
    happy.mkdir()
    names = ["p01.mp4", "p01.avi", "p02.mp4"]
    breaks = ["\n", "\r", "\v", "\f", "\x1c", "\x85", "\u2028", "\u2029", "\t"]
    names += [f"x{i}{c}y.mp4" for i, c in enumerate(breaks)]
    for name in names:
        (happy / name).write_bytes(b"")
    store = MarksStore(tmp_path)
    assert [c.name for c in store.clips] == ["happy/p02.mp4"]
    reasons = {s.name: s.reason for s in store.skipped}
    assert (
        reasons["happy/p01.avi"] == "shares its marks file p01.tsv with happy/p01.mp4: rename one"
    )
    assert (
        reasons["happy/p01.mp4"] == "shares its marks file p01.tsv with happy/p01.avi: rename one"
    )
    assert reasons["happy/x6\\u2028y.mp4"].startswith("its path holds '\\u2028' (a tab or line")
    assert len(reasons) == 2 + len(breaks)
    assert all("\n" not in f"{name}: {reason}" for name, reason in reasons.items()), "one line"


def test_a_new_session_cleans_up_after_a_killed_one(clips) -> None:
    store = MarksStore(clips)
    store.save(0, Marks(3, 8, 6), FRAMES)
    store.save(1, Marks(2, 12, 5), FRAMES)
    (clips / "sad" / "b.tsv").write_text("1\t9\t4\t0\t0\t0\t0\t1\n")  # killed before the table
    orphans = [clips / "happy" / ".a.tsv.0123456789ab.tmp", clips / ".marks.tsv.ba9876543210.tmp"]
    for orphan in orphans:
        orphan.write_text("3\t8")
    again = MarksStore(clips)
    assert not any(orphan.exists() for orphan in orphans)
    assert again.table.read_text().splitlines()[1:] == [
        "happy/a.mp4\t3\t8\t6\t0\t0\t0\t0\t0\thappy",
        "sad/b.mp4\t1\t9\t4\t0\t0\t0\t0\t1\tsad",
    ]


KILLED_SAVER = """
import sys
from attnfer.annotate.store import MarksStore
from attnfer.video.marks import Marks
store = MarksStore(sys.argv[1])
print("ready", flush=True)
k = 0
while True:
    k += 1
    store.save(k % 2, Marks(0, k % 19 + 1, 0), None)
"""


@pytest.mark.slow
def test_marks_stay_consistent_across_kill_9(clips) -> None:
    for delay in (0.05, 0.13, 0.29):
        saver = subprocess.Popen(
            [sys.executable, "-c", KILLED_SAVER, str(clips)], stdout=subprocess.PIPE, text=True
        )
        assert saver.stdout.readline() == "ready\n"
        time.sleep(delay)
        saver.send_signal(signal.SIGKILL)
        saver.wait()
        store = MarksStore(clips)
        clip_lines = [
            f"{c.name}\t{store.saved(i).line()}\t{c.label}"
            for i, c in enumerate(store.clips)
            if store.saved(i) is not None
        ]
        assert store.table.read_text().splitlines()[1:] == clip_lines
        assert not any(f.endswith(".tmp") for f in files(clips))


def test_marks_files_are_flushed_to_disk(clips, monkeypatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name the synced files")
    monkeypatch.setattr(os, "fsync", fsync)
    MarksStore(clips).save(0, Marks(3, 8, 6), FRAMES)
    names = [Path(s).name for s in synced]
    assert names[1] == "happy" and names[3] == "clips"  # each file, then its folder
    assert names[0].startswith(".a.tsv.") and names[2].startswith(".marks.tsv.")


def test_marks_read_back_and_feed_video_trim(clips, tmp_path) -> None:
    store = MarksStore(clips)
    store.save(0, Marks(3, 8, 6), FRAMES)
    store.save(1, Marks(2, 12, 5, low_occlusion=True), FRAMES)
    expected = [
        MarkedClip(clips / "happy" / "a.mp4", "happy", Marks(3, 8, 6)),
        MarkedClip(clips / "sad" / "b.mp4", "sad", Marks(2, 12, 5, low_occlusion=True)),
    ]
    assert read_marks_table(store.table) == expected
    assert find_marks(store.table, VIDEO_SUFFIXES) == expected
    assert find_marks(clips, VIDEO_SUFFIXES) == expected, "the per-clip files read the same"

    results = trim_clips(find_marks(store.table, VIDEO_SUFFIXES), tmp_path / "sorted")
    assert [(r.out and r.out.relative_to(tmp_path), r.frames, r.peak) for r in results] == [
        (Path("sorted/happy/a.mp4"), 6, 3),
        (None, 0, None),
    ]
    assert results[1].skipped == "flagged low_occlusion"
    with VideoReader(tmp_path / "sorted" / "happy" / "a.mp4") as reader:
        means = [float(f.image.mean()) for f in reader]
    assert means == pytest.approx([level(k) for k in range(3, 9)], abs=4)


def test_command_refuses_a_folder_without_clips(tmp_path) -> None:
    app = typer.Typer()
    app.command()(annotate)
    assert "--no-hints" in CliRunner().invoke(app, ["--help"]).output
    (tmp_path / "misc").mkdir()
    (tmp_path / "misc" / "c.mp4").write_bytes(b"")
    result = CliRunner().invoke(app, [str(tmp_path)])
    assert isinstance(result.exception, DataError)
    assert "no clips in emotion folders (happy/p01.mp4, ...); videos found elsewhere: 1" in str(
        result.exception
    )


# The API.


def test_api_serves_frames_and_checks_marks(clips) -> None:
    api = TestClient(create_app(MarksStore(clips)), base_url="http://localhost")
    state = api.get("/api/state").json()
    assert [c["name"] for c in state["clips"]] == [
        "happy/a.mp4",
        "sad/b.mp4",
        "surprise/broken.mp4",
    ]
    assert (state["start"], state["hints"], state["table"]) == (0, False, "marks.tsv")
    assert state["skipped"] == [{"name": "misc/c.mp4", "reason": state["skipped"][0]["reason"]}]

    clip = api.get("/api/clips/1").json()
    assert (clip["name"], clip["emotion"], clip["frames"], clip["fps"]) == (
        "sad/b.mp4",
        "sad",
        20,
        25,
    )
    assert (clip["marks"], clip["error"]) == (None, None)
    for n in (0, 7, 19):
        response = api.get(f"/api/clips/1/frames/{n}")
        assert response.headers["content-type"] == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert image.shape == (48, 64) and image.mean() == pytest.approx(level(n), abs=4)
    assert api.get("/api/clips/1/frames/20").status_code == 404
    assert api.get("/api/clips/1/hints").status_code == 404, "hints off"

    for body, message in [
        ({"start": 3}, "mark the end and peak first"),
        ({"start": 3, "end": 8, "peak": 9}, r"peak 9 is outside start..end \(3..8\)"),
        ({"start": 3, "end": 20, "peak": 5}, r"end 20 is past the last frame \(19\)"),
        ({"start": "three", "end": 8, "peak": 5}, None),
    ]:
        response = api.put("/api/clips/1/marks", json=body)
        assert response.status_code == 422
        if message:
            assert re.search(message, response.json()["detail"])
    assert not (clips / "sad" / "b.tsv").exists()

    body = {"start": 3, "end": 8, "peak": 5, "abnormal_limb": True}
    response = api.put("/api/clips/1/marks", json=body)
    assert response.status_code == 200
    assert response.json()["line"] == "3\t8\t5\t0\t1\t0\t0\t0"
    assert (clips / "sad" / "b.tsv").read_text() == "3\t8\t5\t0\t1\t0\t0\t0\n"
    assert api.get("/api/clips/1").json()["marks"]["abnormal_limb"] is True
    assert [c["labelled"] for c in api.get("/api/state").json()["clips"]] == [False, True, False]

    broken = api.get("/api/clips/2").json()
    assert broken["frames"] == 0 and "broken.mp4" in broken["error"]
    assert api.get("/api/clips/2/frames/0").status_code == 422
    response = api.put("/api/clips/2/marks", json={"start": 0, "end": 0, "peak": 0})
    assert response.status_code == 422 and "broken.mp4" in response.json()["detail"]


def test_api_answers_only_allowed_hosts_and_its_token(clips) -> None:
    attacker = TestClient(create_app(MarksStore(clips)), base_url="http://attacker.example")
    marks = {"start": 1, "end": 2, "peak": 1}
    for response in (
        attacker.get("/api/state"),
        attacker.get("/api/clips/0/frames/0"),
        attacker.put("/api/clips/0/marks", json=marks),
    ):
        assert response.status_code == 400
        assert response.json()["detail"].startswith("Host 'attacker.example' is not one")
    assert not (clips / "happy" / "a.tsv").exists()

    guard = GuardSettings(allowed_hosts("0.0.0.0", ["annotate.lan"]), token="s3cret")
    api = TestClient(create_app(MarksStore(clips), guard=guard), base_url="http://annotate.lan")
    assert api.get("/api/state").status_code == 401
    assert api.put("/api/clips/0/marks", json=marks).status_code == 401
    page = api.get("/?token=s3cret")
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert api.put("/api/clips/0/marks", json=marks).status_code == 200  # by the cookie
    too_big = api.put("/api/clips/0/marks", content=b"{" + b" " * 20_000 + b"}")
    assert too_big.status_code == 413


def raw_get(base_url: str, path: str, method: str = "GET") -> tuple[int, str]:
    """Send ``path`` exactly as written (no client normalises it)."""
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.read().decode("latin-1")
    finally:
        connection.close()


def test_routes_refuse_path_traversal(clips, live_server) -> None:
    url = live_server(create_app(MarksStore(clips)))
    (clips.parent / "secret.txt").write_text("TOP-SECRET")
    assert raw_get(url, "/static/annotate.js")[0] == 200
    attempts = [
        "/static/../../etc/passwd",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/../app.py",
        "/static/%2e%2e/store.py",
        "/static//etc/passwd",
        "/static/..\\..\\..\\etc\\passwd",
        "/../../etc/passwd",
        "/api/clips/-1",
        "/api/clips/-1/frames/0",
        "/api/clips/999/frames/0",
        "/api/clips/999/hints",
        "/api/clips/0/frames/-1",
        "/api/clips/0/frames/999",
        "/api/clips/..%2f..%2fsecret.txt/frames/0",
        "/api/clips/../../secret.txt",
        f"/api/clips/{clips.parent / 'secret.txt'}",
    ]
    for path in attempts:
        status, body = raw_get(url, path)
        assert 400 <= status < 500, f"{path}: {status}"
        for leak in ("root:", "TOP-SECRET", "def create_app", "class MarksStore"):
            assert leak not in body, f"{path} leaked {leak!r}"
    status, body = raw_get(url, "/api/clips/-1/marks", "PUT")
    assert 400 <= status < 500


# The page, driven in headless Chromium.


def by_id(driver, element_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def wait_until(driver, condition, timeout: float = 20) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: condition())


def wait_for(driver, read, expected) -> None:
    """Wait until ``read()`` gives ``expected``; AssertionError with what it gave otherwise."""
    try:
        wait_until(driver, lambda: read() == expected)
    except Exception:
        message = by_id(driver, "message").text
        raise AssertionError(f"{read()!r}, not {expected!r} (message {message!r})") from None


def wait_text(driver, element_id: str, text: str) -> None:
    wait_for(driver, lambda: by_id(driver, element_id).text, text)


def wait_clip(driver, index: int) -> None:
    body = driver.find_element("tag name", "body")
    wait_for(driver, lambda: (body.get_attribute("data-clip"), body.get_attribute("data-ready")),
             (str(index), "1"))  # fmt: skip


def press(driver, *keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(*keys).perform()


def wait_marks(driver, *expected: str) -> None:
    """Wait until the page shows the start, end and peak, then the flags that are on."""

    def shown() -> tuple[str, ...]:
        stamps = [by_id(driver, f"mark-{name}").text for name in ("start", "end", "peak")]
        pressed = [by_id(driver, f"flag-{flag}").get_attribute("aria-pressed") for flag in FLAGS]
        return (*stamps, *(f for f, on in zip(FLAGS, pressed, strict=True) if on == "true"))

    wait_for(driver, shown, expected)


@pytest.mark.slow
@pytest.mark.browser
def test_page_labels_clips_with_the_keys_and_resumes(clips, chrome, live_server) -> None:
    from selenium.webdriver.common.keys import Keys

    chrome.get(live_server(create_app(MarksStore(clips))))
    wait_clip(chrome, 0)
    assert by_id(chrome, "clip-name").text == "happy/a.mp4"
    assert by_id(chrome, "emotion").text == "happy"
    assert by_id(chrome, "progress").text == "0 / 3 labelled"
    wait_text(chrome, "frame", "0 / 20")

    press(chrome, "d", "d", "d", "s")  # start 3
    press(chrome, "d", "d", "d", "d", "d", "s")  # end 8
    press(chrome, "a", "a", "s")  # peak 6
    press(chrome, "g")
    wait_marks(chrome, "3", "8", "6", "non_correlating")
    press(chrome, "s")
    wait_text(chrome, "message", "start, end and peak are marked; W resets them")
    press(chrome, "e")
    wait_text(chrome, "message", "saved happy/a.mp4: 3 8 6 1 0 0 0 0")
    assert (clips / "happy" / "a.tsv").read_text() == "3\t8\t6\t1\t0\t0\t0\t0\n"
    assert by_id(chrome, "progress").text == "1 / 3 labelled"

    press(chrome, "q")
    wait_clip(chrome, 1)
    assert (by_id(chrome, "clip-name").text, by_id(chrome, "emotion").text) == ("sad/b.mp4", "sad")
    press(chrome, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_LEFT)
    wait_text(chrome, "frame", "2 / 20")
    press(chrome, "s", "u")
    wait_marks(chrome, "2", "–", "–", "low_occlusion")
    press(chrome, "e")  # start only: the save is refused
    wait_text(
        chrome,
        "message",
        "mark the end and peak first: S marks the start, then the end, then the peak frame",
    )
    assert "error" in by_id(chrome, "message").get_attribute("class")
    assert not (clips / "sad" / "b.tsv").exists()
    press(chrome, "q")  # unsaved marks: the first Q warns and stays
    wait_text(chrome, "message", "unsaved marks: E saves them, press the key again to leave them")
    assert chrome.find_element("tag name", "body").get_attribute("data-clip") == "1"
    press(chrome, "w")
    wait_text(chrome, "message", "marks reset")
    wait_marks(chrome, "–", "–", "–")

    chrome.find_element("css selector", "button[data-key='d']").click()  # on-screen button
    wait_text(chrome, "frame", "3 / 20")
    press(chrome, Keys.SPACE, *[Keys.ARROW_RIGHT] * 12, "s")  # start 3, end 15
    press(chrome, *[Keys.ARROW_LEFT] * 3, "s", "u", "p", "u", "x", "t", "t")  # peak 12
    wait_marks(chrome, "3", "15", "12", "heavy_occlusion", "other")
    press(chrome, Keys.ENTER)
    wait_text(chrome, "message", "saved sad/b.mp4: 3 15 12 0 0 0 1 1")
    assert (clips / "sad" / "b.tsv").read_text() == "3\t15\t12\t0\t0\t0\t1\t1\n"
    assert (clips / "marks.tsv").read_text().splitlines() == [
        HEADER,
        "happy/a.mp4\t3\t8\t6\t1\t0\t0\t0\t0\thappy",
        "sad/b.mp4\t3\t15\t12\t0\t0\t0\t1\t1\tsad",
    ]
    assert [m.marks for m in find_marks(clips / "marks.tsv", VIDEO_SUFFIXES)] == [
        Marks(3, 8, 6, non_correlating=True),
        Marks(3, 15, 12, heavy_occlusion=True, other=True),
    ]

    press(chrome, Keys.ARROW_DOWN)  # next clip: the broken one is reported, not a crash
    wait_clip(chrome, 2)
    assert "cannot be read" in by_id(chrome, "message").text
    assert by_id(chrome, "frame").text == "–"

    chrome.get(live_server(create_app(MarksStore(clips))))  # a new session
    wait_clip(chrome, 2)
    assert by_id(chrome, "progress").text == "2 / 3 labelled"
    press(chrome, Keys.ARROW_UP)
    wait_clip(chrome, 1)
    wait_marks(chrome, "3", "15", "12", "heavy_occlusion", "other")
    assert by_id(chrome, "saved-state").text == "saved"


def face_clip(path: Path, frames: int = 12) -> None:
    """A CK+ happy face on a gray background."""
    if not CKPLUS.is_dir():
        pytest.skip(f"CK+ crops not found at {CKPLUS}")
    face_file = sorted((CKPLUS / "happy").glob("*.png"))[-1]
    face = np.asarray(Image.open(face_file).convert("RGB").resize((80, 80), Image.BICUBIC))
    with VideoWriter(path, FPS) as writer:
        for _ in range(frames):
            frame = np.full((120, 160, 3), 128, np.uint8)
            frame[20:100, 40:120] = face
            writer.write(frame)


@pytest.mark.browser
def test_page_shows_the_shipped_models_hint(tmp_path, chrome, live_server) -> None:
    face_clip(tmp_path / "happy" / "face.mp4")
    chrome.get(live_server(create_app(MarksStore(tmp_path), Hints("default"))))
    wait_clip(chrome, 0)
    pattern = rf"({'|'.join(CANONICAL)}) \d+%"
    wait_until(chrome, lambda: re.fullmatch(pattern, by_id(chrome, "hint").text), timeout=60)
    assert re.fullmatch(
        r"\(\d+ of \d+ frames with a face say happy\)", by_id(chrome, "agreement").text
    )
    press(chrome, "d")
    wait_text(chrome, "frame", "1 / 12")
    assert re.fullmatch(pattern, by_id(chrome, "hint").text)
