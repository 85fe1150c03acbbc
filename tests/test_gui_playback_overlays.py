"""Reading the model while playing (issue 16): overlays, AU bars, face crop and GDA view stay on
screen during playback, cached frames draw their own prediction, others keep the last one faded
and say so; the default heatmap follows the AU under the mouse or the focused AU.

Real window, real worker, real model (the demo checkpoint when built, else a tiny random one).
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtTest import QTest
from gui_fixtures import demo_or_tiny_weights, shown_window
from test_session_fixtures import face_clip  # noqa: F401

from microau_gui.gui import app as gui_app
from microau_gui.gui import overlays

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")


@pytest.fixture
def window(qtbot, tmp_path):
    yield from shown_window(qtbot, demo_or_tiny_weights(tmp_path / "weights"))


def _open_and_wait_for_prediction(qtbot, window, path) -> None:
    with qtbot.waitSignal(window.session.prediction_made, timeout=180000):
        gui_app.open_initial(window, window.session, str(path))
    qtbot.waitUntil(lambda: window.video_view.prediction is not None, timeout=5000)


def _what_is_missing(window) -> list[str]:
    """The views that show nothing of the model for the frame on screen."""
    view, crop, gda = window.video_view, window.crop_view, window.dependency_view.gda
    missing = []
    if view.prediction is None or not view.heatmap_item.isVisible() or view.heatmap_item.image is None:
        missing.append("video heatmap")
    if not any(item.isVisible() for item in view._region_items.values()):
        missing.append("regions")
    if any(row.bar.value is None for row in window.au_panel.rows.values()):
        missing.append("AU bars")
    if not crop.crop_item.isVisible() or crop.crop_item.image is None:
        missing.append("face crop")
    if gda.matrix is None or np.isnan(gda.matrix).all():
        missing.append("GDA")
    session = window.session
    shown = session.displayed_frame_idx
    if f"ref {session.frames.label(session.reference_idx(shown))} " not in view.hud.text():
        missing.append("the HUD's reference of the frame on screen")
    if view.faded and not (view.stale_note.isVisible()
                           and f"frame {window.session.frames.label(view.frame_idx)} has"
                           in view.stale_note.text()):
        missing.append("the note saying the overlays are an earlier frame's")
    return missing


def test_overlays_bars_crop_and_gda_stay_while_playing_slowly_in_a_loop(qtbot, window, face_clip):
    _open_and_wait_for_prediction(qtbot, window, face_clip)
    session = window.session
    with qtbot.waitSignal(session.analysis_finished, timeout=300000) as done:
        session.analyze_video()  # every frame now has a cached prediction
    assert not done.args[0].cancelled

    empty, frames, own = [], [], []
    session.frame_loaded.connect(lambda loaded: frames.append(loaded.frame_idx))
    # Connected after the model slot: whether the frame's own prediction was drawn with it.
    with_frame = []
    session.playhead.frame_loaded.connect(lambda loaded: with_frame.append(
        session.prediction is not None and session.prediction.frame_idx == loaded.frame_idx))
    session.prediction_made.connect(
        lambda p: own.append(p.frame_idx) if p.frame_idx == session.displayed_frame_idx else None)
    # Look at the views every few ms while it plays: at no moment may one be empty.
    sampler = QTimer()
    sampler.timeout.connect(lambda: empty.append((session.displayed_frame_idx,
                                                  _what_is_missing(window))))
    sampler.start(7)
    session.set_speed(1 / 8)
    session.playhead.set_loop((5, 12))
    session.seek(5)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert session.playing
    qtbot.waitUntil(lambda: len(frames) >= 16, timeout=60000)  # past the loop's turn at 12
    session.pause()
    sampler.stop()

    assert len(empty) > 50  # the sampler ran throughout
    assert max(frames) == 12 and frames.count(12) >= 1 and frames[-1] < 12  # it looped back
    assert [(f, m) for f, m in empty if m] == []
    # Cached frames draw their own prediction while playing (read ahead, drawn with the frame),
    # not just the last paused one.
    assert len(set(own) & set(frames)) >= 3, (own, frames)
    # ... most of them at once with the frame: the cached predictions of the frames due next
    # were read ahead (no thread hop after the frame is shown).
    assert sum(with_frame[2:]) >= len(with_frame[2:]) // 2, with_frame


def test_a_frame_without_its_prediction_keeps_the_last_one_faded_and_says_so(qtbot, window,
                                                                              face_clip):
    _open_and_wait_for_prediction(qtbot, window, face_clip)
    session, view = window.session, window.video_view
    first = view.prediction.frame_idx
    seen = []
    session.prediction_kept.connect(lambda p: seen.append((p.frame_idx, view.faded,
                                                           _what_is_missing(window))))
    with qtbot.waitSignal(session.prediction_made, timeout=120000):
        session.seek(first + 7)  # not predicted yet: its frame shows before its prediction
    assert seen and seen[0][0] == first and seen[0][1], seen
    assert seen[0][2] == [], seen  # every view still showed the model, faded, and said so
    assert view.prediction.frame_idx == first + 7 and not view.faded
    assert not view.stale_note.isVisible()
    assert "frame" in window.crop_view.caption.text()


def test_the_hud_names_the_reference_of_the_frame_on_screen_not_of_the_playhead(qtbot, window,
                                                                                 face_clip):
    _open_and_wait_for_prediction(qtbot, window, face_clip)
    session, hud = window.session, window.video_view.hud
    seen = []
    # Connected after the window's slot: the HUD as drawn while the playhead (40) runs ahead of
    # the frame on screen, as it does during playback.
    session.position_changed.connect(lambda _f: seen.append((session.displayed_frame_idx,
                                                             hud.text())))
    with qtbot.waitSignal(session.frame_loaded, timeout=15000):
        session.seek(40)
    shown, text = seen[0]
    assert shown != 40
    label = session.frames.label
    assert f"frame {label(shown)} " in text
    assert f"ref {label(session.reference_idx(shown))} " in text, text
    assert session.reference_idx(shown) != session.reference_idx(40)


def test_the_default_heatmap_follows_the_focused_au_and_the_au_under_the_mouse(qtbot, window,
                                                                               face_clip):
    _open_and_wait_for_prediction(qtbot, window, face_clip)
    view, pred = window.video_view, window.video_view.prediction
    assert window.overlay_bar.heatmap_au.currentText().startswith("AU under mouse")

    def drawn_alpha() -> np.ndarray:
        return view.heatmap_item.image[..., 3].astype(np.float32)

    def expected_alpha(code: str | None) -> np.ndarray:
        index = None if code is None else pred.vocab.index(code)
        heat = overlays.select_heatmap(pred.heatmaps, index)
        heat = overlays.smooth_heatmap(heat, heat.shape[1] / pred.pta_grid.shape[-1])
        return overlays.heatmap_rgba(heat, 0.55)[..., 3].astype(np.float32)

    # Nothing focused, nothing hovered: the frame's most probable AU, not the max over AUs.
    top = pred.vocab[int(np.argmax(pred.probs))]
    np.testing.assert_array_equal(drawn_alpha(), expected_alpha(top))
    assert not np.array_equal(drawn_alpha(), expected_alpha(None))

    # The focused AU of the AU panel (Alt+Down moves it) becomes the heatmap's AU.
    other = next(code for code in pred.vocab if code != top)
    while window.au_panel.focused_code != other:
        window.au_panel.move_focus(1)
    assert view.overlays.heatmap_au == other
    np.testing.assert_array_equal(drawn_alpha(), expected_alpha(other))
    assert window.crop_view.heatmap_au == other

    # The AU region under the mouse wins over the focused one.
    key, polygon = next((k, p) for k, p in pred.regions_img.items()
                        if overlays.region_au(k) not in (other,))
    centre = np.asarray(polygon, dtype=np.float64).reshape(-1, 2).mean(axis=0)
    at = view.graphics.mapFromScene(view.view_box.mapViewToScene(QPointF(*centre)))
    with qtbot.waitSignal(view.au_hovered, timeout=2000):
        QTest.mouseMove(view.graphics.viewport(), QPoint(at.x(), at.y()))
    hovered = view.hovered_au
    assert hovered is not None and view.overlays.heatmap_au == hovered
    np.testing.assert_array_equal(drawn_alpha(), expected_alpha(hovered))

    # "max over AUs" stays a choice.
    window.overlay_bar.heatmap_au.setCurrentIndex(window.overlay_bar.heatmap_au.findData("max"))
    assert view.overlays.heatmap_au is None
    np.testing.assert_array_equal(drawn_alpha(), expected_alpha(None))


def test_the_heatmap_grid_is_smoothed_without_moving_its_peak():
    heat = np.zeros((70, 70), np.uint8)
    heat[30:40, 10:20] = 255  # one 10 px patch: hard steps of 255 at its edges
    heat[30:40, 20:30] = 120
    smooth = overlays.smooth_heatmap(heat, cell_px=10)
    assert np.unravel_index(np.argmax(smooth), smooth.shape)[1] in range(10, 20)
    assert smooth.max() == 255
    steps = np.abs(np.diff(smooth.astype(int), axis=1)).max()
    assert steps < 60, steps  # was 255 between neighbouring pixels
