"""The window's views read like a coder reads them: the dependency view (GDA beside the project's
AU co-occurrence), the stabilised face crop, zoom and pan of the video view, and the HUD.

Real widgets (pytest-qt, offscreen), real SQLite projects and real image folders. Where the
model is not the point, the prediction is a FramePrediction built here with known values and
handed to the session's `prediction_made` signal, the way the session hands over the worker's
answer; the HUD test runs the real model (the bundled demo checkpoint, or a tiny random one).
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QApplication
from gui_fixtures import demo_or_tiny_weights, shown_window
from test_session_fixtures import CLIP_FRAMES, CLIP_SIZE_PX, read_frame, write_face_clip

from microau_gui.core.aus import AUCode
from microau_gui.core.types import FramePrediction
from microau_gui.inference.speed import SPEED_MODES
from microau_gui.gui import app as gui_app
from microau_gui.gui.crop_view import CROP_DISPLAY_PX, FaceCropView
from microau_gui.media import write_video
from microau_gui.media.proxy import find_proxy
from microau_gui.session import annotation
from microau_gui.session.messages import FrameLoaded
from microau_gui.session.numbering import timecode

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")


@pytest.fixture
def face_clip(tmp_path, astronaut_path) -> Path:
    """The swaying astronaut clip of test_session_fixtures (60 frames of 240 px)."""
    rgb = cv2.cvtColor(cv2.imread(str(astronaut_path)), cv2.COLOR_BGR2RGB)
    return write_face_clip(tmp_path / "clips" / "EP01_01", rgb)


@pytest.fixture(scope="module")
def model_weights(tmp_path_factory) -> Path:
    """weights/ with the demo model, or a folder holding a freshly saved tiny random model."""
    return demo_or_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture
def window(qtbot, tmp_path):
    """The window with no model at all (an empty weights folder): nothing but what is shown."""
    empty = tmp_path / "no-weights"
    empty.mkdir()
    yield from shown_window(qtbot, empty)


@pytest.fixture
def model_window(qtbot, model_weights):
    yield from shown_window(qtbot, model_weights)


def _open(qtbot, window, path) -> None:
    with qtbot.waitSignal(window.session.frame_loaded, timeout=15000):
        gui_app.open_initial(window, window.session, str(path))
    qtbot.waitUntil(lambda: window.video_view.frame_idx == window.session.frame_idx, timeout=5000)


def _row_stochastic(n: int, seed: int) -> np.ndarray:
    """An asymmetric (n, n) attention matrix whose rows sum to 1, with one clear peak per row."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, n)).astype(np.float32)
    logits[np.arange(n), (np.arange(n) * 5 + 3) % n] += 3.0  # off-diagonal, so rows != columns
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)  # (n, n)


def _prediction(frame_idx: int, vocab, **fields) -> FramePrediction:
    return FramePrediction(frame_idx=frame_idx, reference_idx=max(0, frame_idx - 2),
                           model_version="test-values", vocab=tuple(vocab), face_found=True,
                           **fields)


def _send_mouse(widget, kind, pos: QPointF, button, buttons) -> None:
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def _hover(qtbot, graphics_view, scene_pos: QPointF) -> None:
    """A real mouse move over a pyqtgraph view at a scene position."""
    pos = QPointF(graphics_view.mapFromScene(scene_pos))
    _send_mouse(graphics_view.viewport(), QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton,
                Qt.MouseButton.NoButton)
    qtbot.wait(15)  # pyqtgraph drops mouse moves closer than 10 ms apart


# -- 1. dependency view ------------------------------------------------------------------------

def _decode_viridis(rgba: np.ndarray) -> np.ndarray:
    """(n, n, 4) colours back to (n, n) values in [0, 1] through the viridis table."""
    lut = np.asarray(pg.colormap.get("viridis").getLookupTable(nPts=256, alpha=False), float)
    rgb = rgba[..., :3].reshape(-1, 1, 3).astype(float)
    index = np.argmin(((rgb - lut[None]) ** 2).sum(axis=2), axis=1)  # nearest table entry
    return (index / 255.0).reshape(rgba.shape[:2])


def test_dependency_view_shows_the_frame_gda_and_the_project_cooccurrence(qtbot, window,
                                                                          face_clip):
    _open(qtbot, window, face_clip)
    session, view = window.session, window.dependency_view
    vocab = session.vocab
    n = len(vocab)
    assert "no prediction" in view.gda.plot.titleLabel.text

    gda = _row_stochastic(n, seed=1)
    session.prediction_made.emit(_prediction(0, vocab, probs=np.full(n, 0.2, np.float32),
                                             gda=gda))
    assert np.array_equal(view.gda.matrix, gda)
    # The picture: each cell's colour is its value on the viridis scale up to the matrix's max.
    image = view.gda.image.image
    assert image.shape == (n, n, 4)
    shown = _decode_viridis(image) * gda.max()
    np.testing.assert_allclose(shown, gda, atol=1.5 * gda.max() / 255)
    # frame_idx 0 is img1.png: the title names the dataset's number (issue 15 D15)
    assert f"frame 1 (max {gda.max():.2f})" in view.gda.plot.titleLabel.text
    # Cell (row i, column j) sits at row i, column j and is named by the vocabulary.
    i, j = 2, (2 * 5 + 3) % n
    assert gda[i, j] > gda[j, i]  # asymmetric: a transposed picture would read differently
    _hover(qtbot, view.layout_widget, view.gda.plot.vb.mapViewToScene(QPointF(j + 0.5, i + 0.5)))
    assert view.hover.text() == f"GDA: {vocab[i]} attends to {vocab[j]}: {gda[i, j]:.3f}"

    # The project's events: AU1+AU2, AU1, AU12+AU6, AU12, AU12+AU6+AU1.
    project, video_id = session.project, session.video.id
    for onset, numbers in ((2, (1, 2)), (10, (1,)), (20, (12, 6)), (30, (12,)), (40, (12, 6, 1))):
        project.add_event(video_id, onset, onset + 2, onset + 4, tuple(AUCode(k) for k in numbers))
    qtbot.waitUntil(lambda: "5 events" in view.cooc.plot.titleLabel.text, timeout=5000)
    cond = view.cooc.matrix
    at = {code: k for k, code in enumerate(vocab)}
    assert cond[at["AU1"], at["AU2"]] == pytest.approx(1 / 3)  # AU1 in 3 events, with AU2 in 1
    assert cond[at["AU2"], at["AU1"]] == pytest.approx(1.0)
    assert cond[at["AU12"], at["AU6"]] == pytest.approx(2 / 3)
    assert cond[at["AU6"], at["AU12"]] == pytest.approx(1.0)
    assert cond[at["AU1"], at["AU12"]] == pytest.approx(1 / 3)
    assert cond[at["AU12"], at["AU2"]] == pytest.approx(0.0)
    assert np.isnan(cond[at["AU4"]]).all()  # never coded: a grey row, not zeros
    expected, _support = annotation.cooccurrence(project.events(), vocab)
    np.testing.assert_array_equal(cond, expected)
    grey = view.cooc.image.image[at["AU4"]]
    assert (grey == (60, 60, 66, 255)).all()
    _hover(qtbot, view.layout_widget,
           view.cooc.plot.vb.mapViewToScene(QPointF(at["AU6"] + 0.5, at["AU12"] + 0.5)))
    assert view.hover.text() == "P(AU6 | AU12) = 0.667"

    # A coder's edit through the session recounts the panel.
    session.select_event(project.events()[1].id)  # the AU1-only event
    session.toggle_au("AU2")
    qtbot.waitUntil(lambda: view.cooc.matrix[at["AU1"], at["AU2"]] == pytest.approx(2 / 3),
                    timeout=5000)

    # A frame without a prediction empties the GDA again.
    session.prediction_cleared.emit()
    assert np.isnan(view.gda.matrix).all()
    assert "no prediction" in view.gda.plot.titleLabel.text


# -- 2. face-crop view -------------------------------------------------------------------------

def test_face_crop_shows_the_aligned_crop_with_its_heatmap_and_says_when_no_face(
        qtbot, face_clip):
    view = FaceCropView()
    qtbot.addWidget(view)
    view.resize(300, 330)
    view.show()
    qtbot.waitExposed(view)
    rgb = read_frame(face_clip, 4)
    view.crop_size_px = 64  # the model's input side
    view.set_frame(FrameLoaded(1, 1, 4, rgb, 4 / 30, 0.0))
    vocab = ("AU1", "AU4", "AU12")
    grid = np.full((3, 8, 8), 1 / 64, np.float32)  # (n_au, g, g) PTA, rows sum to 1
    grid[0, 1, 6] = grid[1, 6, 1] = grid[2, 4, 4] = 0.5
    # Crop px (0..64) -> image px: scale 4 from (40, 30), so the 256 px display samples the
    # image one to one from (40, 30): the crop is exactly rgb[30:286, 40:296] where it exists.
    crop_to_img = np.array([[4.0, 0.0, 40.0], [0.0, 4.0, 30.0]])
    view.set_prediction(_prediction(4, vocab, pta_grid=grid, crop_to_img=crop_to_img))

    assert view.crop_item.isVisible() and view.heat_item.isVisible()
    crop = view.crop_item.image
    assert crop.shape == (CROP_DISPLAY_PX, CROP_DISPLAY_PX, 3)
    inside = CLIP_SIZE_PX - 40, CLIP_SIZE_PX - 30  # the image ends before the crop does
    np.testing.assert_array_equal(crop[:inside[1], :inside[0]], rgb[30:, 40:])
    assert crop[inside[1] + 2:, :].max() == 0  # outside the frame: black, not smeared

    def heat_peak() -> tuple[int, int]:
        alpha = view.heat_item.image[..., 3].astype(float)  # (256, 256)
        assert view.heat_item.image.shape == (CROP_DISPLAY_PX, CROP_DISPLAY_PX, 4)
        y, x = np.unravel_index(np.argmax(alpha), alpha.shape)
        return int(y * 8 // CROP_DISPLAY_PX), int(x * 8 // CROP_DISPLAY_PX)  # patch row, col

    assert heat_peak() in {(1, 6), (6, 1), (4, 4)}  # max over AUs: one of the three peaks
    view.set_style(True, 0.55, "AU4")
    assert heat_peak() == (6, 1)
    view.set_style(True, 0.55, "AU1")
    assert heat_peak() == (1, 6)
    assert view.caption.text().startswith("aligned crop, frame 4 vs ref 2")
    assert "AU1" in view.caption.text() and "8×8" in view.caption.text()
    view.set_style(False, 0.55, "AU1")
    assert view.crop_item.isVisible() and not view.heat_item.isVisible()

    view.set_prediction(FramePrediction(4, 2, "test-values", vocab, face_found=False))
    assert not view.crop_item.isVisible() and not view.heat_item.isVisible()
    assert "no face" in view.caption.text()


# -- 3. zoom and pan ---------------------------------------------------------------------------

def _covers_frame(box, size_px: int) -> bool:
    (x0, x1), (y0, y1) = box.viewRange()
    return x0 <= 0 and y0 <= 0 and x1 >= size_px and y1 >= size_px


def test_zoom_keys_drag_pan_and_fit_restore_the_whole_frame(qtbot, window, face_clip):
    _open(qtbot, window, face_clip)
    box = window.video_view.view_box
    assert _covers_frame(box, CLIP_SIZE_PX)  # a newly opened video is fitted
    (fx0, fx1), (fy0, fy1) = box.viewRange()
    assert min(fx1 - fx0, fy1 - fy0) <= CLIP_SIZE_PX * 1.05  # ... tightly

    qtbot.keyClick(window, "+")
    (x0, x1), (y0, y1) = box.viewRange()
    assert (x1 - x0) == pytest.approx((fx1 - fx0) / 1.25, rel=1e-3)
    assert (y1 - y0) == pytest.approx((fy1 - fy0) / 1.25, rel=1e-3)
    assert not _covers_frame(box, CLIP_SIZE_PX)
    qtbot.keyClick(window, "+")
    assert (box.viewRange()[0][1] - box.viewRange()[0][0]) == pytest.approx(
        (fx1 - fx0) / 1.25 ** 2, rel=1e-3)

    # Drag the picture 60 px to the right: the view moves left by 60 px worth of image.
    (x0, x1), (y0, y1) = box.viewRange()
    view = window.video_view.graphics
    image_px_per_screen_px = (x1 - x0) / box.width()
    centre = QPointF(view.mapFromScene(box.mapViewToScene(QPointF((x0 + x1) / 2, (y0 + y1) / 2))))
    viewport = view.viewport()
    _send_mouse(viewport, QEvent.Type.MouseMove, centre, Qt.MouseButton.NoButton,
                Qt.MouseButton.NoButton)
    _send_mouse(viewport, QEvent.Type.MouseButtonPress, centre, Qt.MouseButton.LeftButton,
                Qt.MouseButton.LeftButton)
    for step in range(1, 7):
        qtbot.wait(15)  # pyqtgraph drops mouse moves closer than 10 ms apart
        _send_mouse(viewport, QEvent.Type.MouseMove, centre + QPointF(10 * step, 0),
                    Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton)
    _send_mouse(viewport, QEvent.Type.MouseButtonRelease, centre + QPointF(60, 0),
                Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)
    (px0, px1), (py0, py1) = box.viewRange()
    assert px1 - px0 == pytest.approx(x1 - x0, rel=1e-3)  # panning keeps the zoom
    assert x0 - px0 == pytest.approx(60 * image_px_per_screen_px, rel=0.1)
    assert py0 == pytest.approx(y0, abs=1e-6)

    qtbot.keyClick(window, "f")
    (x0, x1), (y0, y1) = box.viewRange()
    assert _covers_frame(box, CLIP_SIZE_PX)
    assert (x1 - x0, y1 - y0) == pytest.approx((fx1 - fx0, fy1 - fy0), rel=1e-3)

    qtbot.keyClick(window, "-")  # zoom out shows more than the frame
    assert box.viewRange()[0][1] - box.viewRange()[0][0] == pytest.approx((fx1 - fx0) / 0.8,
                                                                         rel=1e-3)


def _viewport_image(window) -> np.ndarray:
    """What the viewport shows of the frame, resampled to the frame's pixel grid (RGB)."""
    view, box = window.video_view.graphics, window.video_view.view_box
    top_left = view.mapFromScene(box.mapViewToScene(QPointF(0, 0)))
    bottom_right = view.mapFromScene(box.mapViewToScene(QPointF(CLIP_SIZE_PX, CLIP_SIZE_PX)))
    shot = view.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    rgb = np.frombuffer(shot.constBits(), np.uint8).reshape(shot.height(), shot.bytesPerLine())
    rgb = rgb[:, :shot.width() * 3].reshape(shot.height(), shot.width(), 3)
    ratio = shot.width() / view.viewport().width()  # device pixels per widget pixel
    x0, y0 = int(top_left.x() * ratio), int(top_left.y() * ratio)
    x1, y1 = int(bottom_right.x() * ratio), int(bottom_right.y() * ratio)
    return cv2.resize(rgb[y0:y1, x0:x1], (CLIP_SIZE_PX, CLIP_SIZE_PX), interpolation=cv2.INTER_AREA)


def test_a_decoded_frame_is_painted_before_seek_returns(qtbot, window, face_clip):
    _open(qtbot, window, face_clip)
    session = window.session
    painted = []
    window.video_view.frame_painted.connect(lambda loaded: painted.append(loaded.frame_idx))
    with qtbot.waitSignal(window.video_view.frame_painted, timeout=10000):
        session.seek(30)
    assert painted[-1] == 30
    # Once the loader has read ahead, a step forward is painted inside seek() itself.
    qtbot.waitUntil(lambda: (session.media.video_id, 32) in session.playhead.decoded, timeout=10000)
    for frame_idx in (31, 32):
        session.seek(frame_idx)
        assert painted[-1] == frame_idx
        # The frame number the clip writer drew in the top-left corner tells the frames apart.
        shown = _viewport_image(window)[:20, :40].astype(np.int16)
        error = {k: np.abs(shown - read_frame(face_clip, k)[:20, :40]).mean()
                 for k in (frame_idx - 1, frame_idx)}
        assert error[frame_idx] < 0.75 * error[frame_idx - 1]  # the new frame, not the one before


# -- 4. the HUD --------------------------------------------------------------------------------

def test_hud_shows_frame_time_fps_reference_and_model_version(qtbot, model_window, face_clip,
                                                              model_weights):
    window, session = model_window, model_window.session
    with qtbot.waitSignal(session.prediction_made, timeout=180000):
        gui_app.open_initial(window, session, str(face_clip))
    hud = window.video_view.hud
    fps = session.video.fps
    assert fps > 0
    model_names = {p.name for p in model_weights.iterdir() if p.is_dir()}
    assert session.model.card.name in model_names

    def lines() -> list[str]:
        return hud.text().splitlines()

    # The clip's files are img1.png ... img60.png: the HUD shows those numbers (dataset
    # numbering, the default) and the time as hh:mm:ss.fff.
    first = lines()
    assert first[0].split() == ["frame", "1", "/", str(CLIP_FRAMES), "00:00:00.000",
                                f"{fps:g}", "fps"]
    assert first[1].startswith("ref 1 (sliding)")
    assert first[2].startswith(f"model {session.model.model_version} · CPU {session.model.speed_mode}")
    assert session.model.speed_mode in SPEED_MODES
    assert first[3] == "prediction ✓"
    assert hud.isVisible() and hud.width() > 0

    # The real stabilised crop of the same prediction, at the model's input size.
    crop_view = window.crop_view
    assert crop_view.crop_size_px == session.model.card.image_size
    assert crop_view.crop_item.isVisible()
    assert crop_view.crop_item.image.shape == (CROP_DISPLAY_PX, CROP_DISPLAY_PX, 3)
    assert crop_view.crop_item.image.std() > 10  # a face, not a blank square
    assert crop_view.caption.text().startswith("aligned crop, frame 1 vs ref 1")

    for _ in range(7):
        qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.video_view.frame_idx == 7, timeout=10000)
    now = lines()
    assert now[0].split()[:5] == ["frame", "8", "/", str(CLIP_FRAMES), timecode(7 / fps)]
    assert now[1].startswith(f"ref {session.reference_idx(7) + 1} (sliding)")

    window.use_fixed_reference()  # fix the reference at frame 7, then move on
    session.seek(12)
    qtbot.waitUntil(lambda: window.video_view.frame_idx == 12, timeout=10000)
    now = lines()
    assert now[0].split()[1] == "13"
    assert now[1] == "ref 8 (fixed)"
    h, m, sec = now[0].split()[4].split(":")
    assert math.isclose(3600 * int(h) + 60 * int(m) + float(sec), 12 / fps, abs_tol=5e-4)


def test_hud_without_a_video_or_a_model_says_so(qtbot, window, face_clip):
    assert window.video_view.hud.text() == "no video open"
    _open(qtbot, window, face_clip)
    text = window.video_view.hud.text()
    assert text.splitlines()[0].startswith(f"frame 1 / {CLIP_FRAMES}")
    assert "model: none (see banner)" in text



# -- 5. the seek-proxy strip -------------------------------------------------------------------

def _long_gop_clip(path: Path, face_clip: Path, n_frames: int, gop: int) -> Path:
    frames = [read_frame(face_clip, k % CLIP_FRAMES) for k in range(n_frames)]
    write_video(path, frames, 30.0, codec="h264", gop=gop)
    return path


def test_the_seek_proxy_build_shows_progress_and_can_be_cancelled(qtbot, window, face_clip,
                                                                   tmp_path, proxies_in_tmp):
    strip, session = window.proxy_strip, window.session
    seen_visible = []
    session.proxies.progressed.connect(lambda _p: seen_visible.append(strip.isVisible()))
    video = _long_gop_clip(tmp_path / "long.mp4", face_clip, n_frames=90, gop=80)
    with qtbot.waitSignal(session.proxies.finished, timeout=60000) as blocker:
        gui_app.open_initial(window, session, str(video))
    assert blocker.args[0].result.built and seen_visible and all(seen_visible)
    assert not strip.isVisible()  # gone once the proxy is ready

    longer = _long_gop_clip(tmp_path / "longer.mp4", face_clip, n_frames=900, gop=450)
    seen_visible.clear()
    session.open_path(longer)
    qtbot.waitUntil(lambda: bool(seen_visible), timeout=30000)
    with qtbot.waitSignal(session.proxies.finished, timeout=10000) as blocker:
        qtbot.mouseClick(strip.cancel, Qt.MouseButton.LeftButton)
    assert blocker.args[0].result.proxy is None and not strip.isVisible()
    assert find_proxy(longer) is None and not session.proxies.running
