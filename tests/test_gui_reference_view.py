"""The reference view (issue 16): the frame on screen against the reference frame the model
compares it with, as a difference, side by side or blended, optionally motion-magnified.

The picture functions are checked on known frames; the view in the real window is checked to
show the session's reference frame (the pipeline's policy, not one of its own) for real frames.
"""

from __future__ import annotations

import numpy as np
import pytest
from gui_fixtures import demo_or_tiny_weights, shown_window
from test_session_fixtures import face_clip, read_frame  # noqa: F401

from microau_gui.gui import app as gui_app
from microau_gui.gui import overlays
from microau_gui.gui.reference_images import compose, magnify

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")


def _frames() -> tuple[np.ndarray, np.ndarray]:
    """A textured reference and the same picture with a bright square 10 grey levels up."""
    rng = np.random.default_rng(0)
    ref = rng.integers(60, 190, size=(64, 64, 3), dtype=np.uint8)
    cur = ref.copy()
    cur[20:30, 20:30] += 10
    return cur, ref


def test_the_difference_is_mid_grey_where_nothing_moved_and_the_change_elsewhere():
    cur, ref = _frames()
    diff = compose(cur, ref, "difference")
    assert diff.dtype == np.uint8 and diff.shape == ref.shape
    assert (diff[20:30, 20:30] == 138).all()
    outside = np.ones(ref.shape[:2], bool)
    outside[20:30, 20:30] = False
    assert (diff[outside] == 128).all()
    # Eulerian x3: the change times three; the frame itself at gain 1 is unchanged.
    assert (compose(cur, ref, "difference", "eulerian", 3)[20:30, 20:30] == 158).all()
    np.testing.assert_array_equal(magnify(cur, ref, "eulerian", 1), cur)


def test_side_by_side_and_blend_hold_both_frames():
    cur, ref = _frames()
    side = compose(cur, ref, "side")
    assert side.shape == (64, 64 * 2 + 2, 3)
    np.testing.assert_array_equal(side[:, :64], ref)
    np.testing.assert_array_equal(side[:, 66:], cur)
    blend = compose(cur, ref, "blend")
    np.testing.assert_array_equal(blend[20:30, 20:30], ref[20:30, 20:30] + 5)


def test_flow_magnification_moves_an_edge_gain_times_further():
    ref = np.zeros((96, 96, 3), np.uint8)
    ys, xs = np.mgrid[0:96, 0:96]
    blob = np.exp(-((xs - 44.0) ** 2 + (ys - 48.0) ** 2) / (2 * 6.0 ** 2))
    ref[...] = (40 + 180 * blob)[..., None].astype(np.uint8)
    cur = np.roll(ref, 1, axis=1)  # moved one pixel right

    def centre_x(image: np.ndarray) -> float:
        weight = image[..., 0].astype(np.float64) - 40
        return float((weight * xs).sum() / weight.sum())

    assert centre_x(cur) - centre_x(ref) == pytest.approx(1.0, abs=0.05)
    moved = centre_x(magnify(cur, ref, "flow", 4)) - centre_x(ref)
    assert moved == pytest.approx(4.0, abs=1.0), moved
    moved_eulerian = centre_x(magnify(cur, ref, "eulerian", 4)) - centre_x(ref)
    assert moved_eulerian > 2.0  # linear magnification also moves it, within the blob's scale


@pytest.fixture
def window(qtbot, tmp_path):
    yield from shown_window(qtbot, demo_or_tiny_weights(tmp_path / "weights"))


def test_the_reference_view_shows_the_sessions_reference_frame(qtbot, window, face_clip):
    session = window.session
    with qtbot.waitSignal(session.prediction_made, timeout=180000):
        gui_app.open_initial(window, session, str(face_clip))
    window.show_panel("reference")
    view = window.reference_view
    qtbot.waitUntil(lambda: view.isVisible(), timeout=5000)
    session.seek(20)
    qtbot.waitUntil(lambda: session.prediction is not None and session.prediction.frame_idx == 20,
                    timeout=120000)
    expected_ref = session.reference_idx(20)  # the pipeline's sliding policy, via the session
    assert expected_ref != 20
    qtbot.waitUntil(lambda: view.image is not None and view.reference_idx == expected_ref,
                    timeout=10000)
    pred = session.prediction
    crop_px = session.crop_size_px()
    cur = overlays.aligned_crop(read_frame(face_clip, 20), pred.crop_to_img, crop_px, 256)
    ref = overlays.aligned_crop(read_frame(face_clip, expected_ref), pred.crop_to_img, crop_px, 256)

    # Default: the difference, Eulerian x5.
    assert view.mode.currentData() == "difference" and view.gain.value() == 5
    np.testing.assert_array_equal(view.image, compose(cur, ref, "difference", "eulerian", 5))
    assert f"reference {session.frames.label(expected_ref)} " in view.caption.text()
    view.magnifier.setCurrentIndex(view.magnifier.findData("off"))
    view.mode.setCurrentIndex(view.mode.findData("side"))
    np.testing.assert_array_equal(view.image[:, :256], ref)
    np.testing.assert_array_equal(view.image[:, 258:], cur)
    assert not np.array_equal(cur, ref)  # the clip sways: the two frames differ

    # A fixed reference (R) is the one shown, decoded in the background when not yet decoded.
    session.set_reference_policy("fixed", fixed_idx=55)
    session.seek(3)
    qtbot.waitUntil(lambda: view.reference_idx == 55 and view.image is not None
                    and view._frame_idx == 3, timeout=10000)
    assert session.reference_idx(3) == 55
