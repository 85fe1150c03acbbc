"""Predictions through the inference worker, drawn in the window: real Predictor, real model.

The model is the bundled demo checkpoint when `make demo-assets` has built it; otherwise a tiny
Micro-AU CLIP with random weights saved by the model layer into the test's own weights folder
(its probabilities mean nothing, but it runs the real inference path end to end: landmarks,
alignment, PTA heatmaps, GDA). Nothing here fakes a prediction.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QDialog, QLabel
from gui_fixtures import demo_or_tiny_weights, shown_window
from test_session_fixtures import demo_copy, face_clip  # noqa: F401

from microau_gui.gui import app as gui_app

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def weights(tmp_path) -> Path:
    """weights/ with the demo model, or a folder holding a freshly saved tiny random model."""
    return demo_or_tiny_weights(tmp_path / "weights")


@pytest.fixture
def window(qtbot, weights):
    yield from shown_window(qtbot, weights)


def _open_and_wait_for_prediction(qtbot, window, path) -> None:
    with qtbot.waitSignal(window.session.prediction_made, timeout=180000):
        gui_app.open_initial(window, window.session, str(path))
    qtbot.waitUntil(lambda: window.video_view.prediction is not None, timeout=5000)


def _pixels(widget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    width, height = image.width(), image.height()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return buffer.reshape(height, image.bytesPerLine())[:, :width * 3].reshape(height, width, 3).copy()


def test_predictions_arrive_through_the_worker_and_the_heatmap_toggle_changes_the_view(
        qtbot, window, demo_copy, face_clip):
    _open_and_wait_for_prediction(qtbot, window, demo_copy or face_clip)
    session, view = window.session, window.video_view
    prediction = view.prediction
    assert prediction.frame_idx == view.frame_idx == session.displayed_frame_idx
    assert prediction.model_version == session.model.model_version
    assert prediction.face_found, "the real face in the clip was not found"
    assert view.heatmap_item.isVisible()
    assert any(item.isVisible() for item in view._region_items.values())
    bars = [row.bar.value for row in window.au_panel.rows.values()]
    assert all(value is not None for value in bars[:len(session.vocab)])
    window.actions["regions"].setChecked(False)  # compare the heatmap alone
    window.sync_overlays()
    qtbot.wait(50)
    with_heatmap = _pixels(view)
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert not window.actions["heatmap"].isChecked() and not view.heatmap_item.isVisible()
    qtbot.wait(50)
    without_heatmap = _pixels(view)
    changed = np.abs(with_heatmap.astype(int) - without_heatmap.astype(int)).sum(axis=2) > 30
    assert changed.mean() > 0.005, "toggling the heatmap did not change the picture"
    qtbot.keyClick(window, Qt.Key.Key_H)
    qtbot.wait(50)
    assert np.array_equal(_pixels(view), with_heatmap)


def test_fast_scrubbing_ends_on_the_last_frame_with_its_own_prediction(qtbot, window, face_clip):
    _open_and_wait_for_prediction(qtbot, window, face_clip)
    session, view = window.session, window.video_view
    shown_with_wrong_frame = []

    def check(prediction):
        if prediction.frame_idx != session.displayed_frame_idx:
            shown_with_wrong_frame.append(prediction.frame_idx)

    session.prediction_made.connect(check)
    rng = np.random.default_rng(1)
    targets = [int(f) for f in rng.integers(0, session.n_frames, size=100)]
    for frame_idx in targets:
        session.seek(frame_idx)
        qtbot.wait(2)
    last = targets[-1]
    qtbot.waitUntil(lambda: view.prediction is not None and view.prediction.frame_idx == last,
                    timeout=120000)
    assert view.frame_idx == last == session.displayed_frame_idx
    assert view.prediction.reference_idx == session.reference_idx(last)
    assert not shown_with_wrong_frame
    qtbot.wait(300)  # a stale answer still in flight must not replace it
    assert view.prediction.frame_idx == last


def test_the_model_banner_and_card_tell_what_the_model_is(qtbot, window, demo_copy, face_clip):
    _open_and_wait_for_prediction(qtbot, window, demo_copy or face_clip)
    model = window.session.model
    if model.is_demo:
        assert "DEMO MODEL" in window.banner.text() and window.banner.isVisible()
        assert "python main.py train" in window.banner.full_text
    if not model.pretrained_loaded:
        assert "no pretrained backbone" in window.banner.full_text.lower()
        assert "NO PRETRAINED BACKBONE" in window.windowTitle()
    assert window.model_bar.device.text() == "CPU"
    versions = [c.version for c in window.model_bar.choices]
    assert model.model_version in versions
    window.show_model_card()
    qtbot.waitUntil(lambda: any(d.isVisible() and "Model card" in d.windowTitle()
                                for d in window.findChildren(QDialog)), timeout=2000)
    if model.is_demo:  # its per-AU figures say they are on its own training data (issue 16)
        (card,) = [d for d in window.findChildren(QDialog) if "Model card" in d.windowTitle()]
        assert any("own training data" in label.text() for label in card.findChildren(QLabel))


@pytest.mark.slow
def test_screenshot_command_saves_the_window_after_the_first_prediction(tmp_path, face_clip,
                                                                        weights):
    from microau_gui.inference.checkpoints import list_checkpoints
    from microau_gui.session.opening import ensure_video, open_or_create_project

    project_path = tmp_path / "shot.maus"
    [checkpoint, *_] = list_checkpoints(weights)
    with open_or_create_project(project_path) as project:  # the project names its model
        ensure_video(project, face_clip)
        project.models.add(checkpoint.name, checkpoint.path, checkpoint.card.vocab,
                           activate=True)
    out = tmp_path / "shot.png"
    done = subprocess.run([sys.executable, str(REPO / "main.py"), "--screenshot", str(out),
                           str(project_path)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.stat().st_size > 50_000
    image = QImage(str(out))
    # The window opens at 1600x1000, or at the screen's size when that is smaller, and never below
    # its minimum size (at most 1280x720, asserted in test_gui_layout). The offscreen platform's
    # screen is smaller than 1600x1000, so the image lies between the two.
    assert 900 <= image.width() <= 1600 and 400 <= image.height() <= 1000, image.size()

    missing = subprocess.run([sys.executable, str(REPO / "main.py"), "--screenshot", str(out),
                              str(tmp_path / "nowhere.mp4")], capture_output=True, text=True,
                             timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "does not exist" in missing.stderr

def test_analysis_runs_in_the_background_fills_the_timeline_and_can_be_cancelled(qtbot, window,
                                                                                 face_clip):
    _open_and_wait_for_prediction(qtbot, window, face_clip)
    session = window.session
    progress = []
    session.analysis_progressed.connect(progress.append)
    with qtbot.waitSignal(session.analysis_finished, timeout=300000) as finished:
        qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: window.job_strip.isVisible(), timeout=60000)
        with qtbot.waitSignal(session.frame_loaded, timeout=10000):  # the window still steps
            qtbot.keyClick(window, Qt.Key.Key_Right)
    assert not finished.args[0].cancelled
    assert progress[-1].n_done == progress[-1].n_total == session.n_frames
    trace = window.timeline._trace_items[session.vocab[0]]
    qtbot.waitUntil(lambda: len(trace.getData()[0]) == session.n_frames, timeout=5000)
    assert not window.job_strip.isVisible()

    with qtbot.waitSignal(session.analysis_finished, timeout=60000) as cancelled:
        session.analyze_video()
        qtbot.waitUntil(lambda: window.job_strip.isVisible(), timeout=60000)
        window.job_strip.cancel.click()
    assert cancelled.args[0].cancelled
