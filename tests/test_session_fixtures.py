"""Fixtures shared by the session and GUI tests: a real face clip on disk, a project, a session.

The clip is an image folder cut from scikit-image's public-domain astronaut photo with a small
head sway, written as PNG files named like CASME II frames (img1.png ...). Tests open it the way
a user would (a bare folder, or a project holding it). No test here; pytest collects the module
only for the fixtures the other files import.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from microau_gui.session.opening import bundled_demo_path

CLIP_FRAMES = 60
CLIP_SIZE_PX = 240  # small frames keep decoding and the model cheap


def write_face_clip(folder: Path, source_rgb: np.ndarray, n_frames: int = CLIP_FRAMES,
                    first_number: int = 1) -> Path:
    """An image folder of a face swaying by up to 3 px (frame i differs from frame i+1)."""
    folder.mkdir(parents=True, exist_ok=True)
    face = source_rgb[10:410, 60:460]  # the astronaut's head and shoulders
    for i in range(n_frames):
        dx, dy = 3 * np.sin(i / 5), 2 * np.cos(i / 7)
        warp = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
        moved = cv2.warpAffine(face, warp, (face.shape[1], face.shape[0]),
                               borderMode=cv2.BORDER_REFLECT)
        small = cv2.resize(moved, (CLIP_SIZE_PX, CLIP_SIZE_PX), interpolation=cv2.INTER_AREA)
        cv2.putText(small, str(i), (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1)
        cv2.imwrite(str(folder / f"img{first_number + i}.png"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    return folder


def read_frame(folder: Path, frame_idx: int, first_number: int = 1) -> np.ndarray:
    bgr = cv2.imread(str(folder / f"img{first_number + frame_idx}.png"))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture
def face_clip(tmp_path, astronaut_path) -> Path:
    rgb = cv2.cvtColor(cv2.imread(str(astronaut_path)), cv2.COLOR_BGR2RGB)
    return write_face_clip(tmp_path / "clips" / "EP01_01", rgb)


@pytest.fixture
def demo_copy(tmp_path) -> Path | None:
    """A private copy of the bundled demo folder (tests never edit the real one), or None."""
    demo = bundled_demo_path()
    if demo is None:
        return None
    target = tmp_path / "demo"
    shutil.copytree(demo.parent, target)
    return target / demo.name


@pytest.fixture
def session(qtbot):
    """A ProjectSession whose threads are stopped and joined at the end of the test."""
    from microau_gui.session.session import ProjectSession

    created = ProjectSession(device="cpu")
    yield created
    created.close()
    assert not any(t.running for t in created.threads), "a worker thread is still running"
