"""`python main.py info MEDIA` on a video, an image folder and bad paths (run as a user would)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from microau_gui.media import write_image_sequence, write_video

MAIN = Path(__file__).resolve().parents[1] / "main.py"


def run_main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAIN), *map(str, args)], capture_output=True, text=True, timeout=120)


def frames(n: int) -> list[np.ndarray]:
    return [np.random.default_rng(k).integers(0, 255, (48, 64, 3), dtype=np.uint8) for k in range(n)]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("info")
    video = folder / "interview.mp4"
    write_video(video, frames(50), 25, codec="h264", gop=40)
    vfr = folder / "phone.mp4"
    write_video(vfr, frames(30), 30, codec="h264", gop=10,
                times_s=[k / 30 + (0.05 if k > 15 else 0.0) for k in range(30)])
    clip = folder / "sub01" / "EP02_01f"
    write_image_sequence(clip, frames(12), pattern="img{n}.jpg", first_number=46)
    return {"video": video, "vfr": vfr, "clip": clip}


def test_info_on_a_video(media):
    out = run_main("info", media["video"])
    assert out.returncode == 0, out.stderr
    assert "frames:    50 (numbered 0-49)" in out.stdout
    assert "fps:       25" in out.stdout
    assert "size:      64 x 48 px" in out.stdout
    assert "variable frame rate: no" in out.stdout
    out = run_main("info", media["vfr"], "--json")
    info = json.loads(out.stdout)
    assert info["is_vfr"] is True and info["n_frames"] == 30 and info["kind"] == "video"


def test_info_on_an_image_folder(media):
    out = run_main("info", media["clip"])
    assert out.returncode == 0, out.stderr
    assert "image sequence (jpeg)" in out.stdout
    assert "frames:    12 (numbered 46-57)" in out.stdout
    assert "nominal" in out.stdout  # image files store no frame rate, and info says so
    info = json.loads(run_main("info", media["clip"], "--fps", "200", "--json").stdout)
    assert info["fps"] == 200.0 and info["fps_is_nominal"] is False and info["is_vfr"] is False
    assert (info["width"], info["height"]) == (64, 48)


def test_info_bad_paths_give_one_line_and_nonzero_exit(media, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"definitely not an mp4" * 10)
    for path in (tmp_path / "nope.mp4", junk, media["clip"].parent):
        out = run_main("info", path)
        assert out.returncode == 2
        assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
        assert "Traceback" not in out.stderr
