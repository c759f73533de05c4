"""`attnfer video run` on a damaged clip: no header-only CSV left behind, and the error says
what became of the outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("av")

from typer.testing import CliRunner

from attnfer.cli.video import video_app
from attnfer.errors import DataError
from attnfer.video import VideoWriter

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


def face_clip(path: Path, frames: int = 30) -> Path:
    face = np.asarray(Image.open(EXAMPLE).convert("RGB").resize((320, 320)))
    with VideoWriter(path, 10) as writer:
        for _ in range(frames):
            writer.write(face)
    return path


@pytest.mark.parametrize("suffix", [".avi", ".mkv"])
def test_a_truncated_clip_leaves_no_header_only_csv(tmp_path: Path, suffix: str) -> None:
    whole = face_clip(tmp_path / f"whole{suffix}").read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole[: len(whole) // 2])
    table, video = tmp_path / "faces.csv", tmp_path / "out.mp4"
    run = ["run", str(cut), "--csv", str(table), "--out", str(video)]
    result = CliRunner().invoke(video_app, run)
    assert isinstance(result.exception, DataError)
    message = str(result.exception)
    assert message.startswith(f"{cut}: ") and "\n" not in message
    assert message.endswith(f"no frame was recognised, so {video} and {table} not written")
    assert not table.exists() and not video.exists()
