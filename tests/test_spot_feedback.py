"""Spotting says what happened (issue 16 item 4): running with progress, found N, found none with
the floor used and how to lower it, and a clip too short for the baseline window is named as
such instead of silently finding nothing (the bundled demo's AU14 event).

Real spotter (MediaPipe, flow) on real image folders; the real window for the panel states.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from gui_fixtures import shown_window
from test_session_fixtures import demo_copy  # noqa: F401

from microau_gui.core.errors import UserError
from microau_gui.spotting.spotter import spot_media

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")


def test_a_clip_shorter_than_the_baseline_window_is_named_not_silently_empty(tmp_path,
                                                                           astronaut_path):
    folder = tmp_path / "short"
    folder.mkdir()
    face = cv2.imread(str(astronaut_path))[10:410, 60:460]
    for i in range(142):  # the demo clip's length, at CASME II's 200 fps: k = 100 frames
        cv2.imwrite(str(folder / f"img{i + 1}.jpg"), face)
    with pytest.raises(UserError, match=r"142 frames is too short to spot.*at least 201 frames"):
        spot_media(folder, fps=200.0)


def test_found_none_names_the_floor_and_how_to_lower_it(tmp_path, astronaut_path):
    folder = tmp_path / "still"
    folder.mkdir()
    face = cv2.resize(cv2.imread(str(astronaut_path))[10:410, 60:460], (160, 160))
    rng = np.random.default_rng(0)
    for i in range(40):  # a still face at 30 fps (k = 15): nothing moves but sensor noise
        noisy = np.clip(face + rng.normal(0, 1.0, face.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"img{i + 1}.png"), noisy)
    result = spot_media(folder, fps=30.0)
    assert result.candidates == ()
    assert result.floor_z >= 6.0
    assert f"floor of {result.floor_z:.1f} noise units" in result.summary
    assert "--min-z" in result.summary


@pytest.fixture
def window(qtbot):
    yield from shown_window(qtbot)


def test_the_queue_says_running_then_why_the_demo_clip_gives_nothing(qtbot, window, demo_copy):
    if demo_copy is None:
        pytest.skip("the bundled demo is not built (make demo-assets)")
    session = window.session
    with qtbot.waitSignal(session.frame_loaded, timeout=15000):
        session.open_path(demo_copy)
    panel = window.review_panel
    assert panel.summary.text().startswith("Not spotted yet")
    seen_while_running = []
    session.review.spotting_progressed.connect(
        lambda _p: seen_while_running.append(panel.summary.text()))
    with qtbot.waitSignal(session.review.spotting_finished, timeout=60000):
        window.actions["spot_video"].trigger()
    assert seen_while_running and seen_while_running[0].startswith("Spotting this video: frame 0")
    assert "too short to spot" in panel.summary.text()
    assert "at least 201 frames" in panel.summary.text()
