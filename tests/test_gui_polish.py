"""Issue 16 polish and issue 15 D15 in the window: one frame numbering everywhere (HUD, frame
box, ruler, lanes, titles, lists), the time ruler, readable lanes with their scale and decision
threshold, event labels that never overlap, the light theme and font scaling stored per user,
internal errors as a sentence with details, readable GDA ticks and review columns.

Real window (offscreen), real image folders with dataset numbers (img101.png ...) and a gap.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from gui_fixtures import open_in_window, press_keys, shown_window
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication
from test_session_fixtures import write_face_clip

from microau_gui.core.aus import parse_au_string
from microau_gui.core.errors import DETAILS_MARKER, split_details
from microau_gui.core.types import DECISION_THRESHOLD
from microau_gui.session.numbering import FrameLabels, Numbering, timecode

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")

FIRST = 101  # img101.png is frame_idx 0
GAP = (111, 112, 113)  # missing files: numbers 110 and 114 are neighbours


@pytest.fixture
def window(qtbot, tmp_path):
    empty = tmp_path / "no-weights"  # no model: these tests are about what is drawn
    empty.mkdir()
    yield from shown_window(qtbot, empty)


@pytest.fixture
def gap_clip(tmp_path, astronaut_path):
    """A CASME II-style folder img101.png ... img160.png without img111-113 (57 frames)."""
    rgb = cv2.cvtColor(cv2.imread(str(astronaut_path)), cv2.COLOR_BGR2RGB)
    folder = write_face_clip(tmp_path / "clips" / "EP02_01f", rgb, first_number=FIRST)
    for number in GAP:
        (folder / f"img{number}.png").unlink()
    return folder



def _hud_first_line(window) -> str:
    return window.video_view.hud.text().splitlines()[0]


# -- the formatter -------------------------------------------------------------------------------

def test_frame_labels_number_time_and_find_frames_across_a_gap():
    dataset = np.array([101, 102, 103, 107, 108], dtype=np.int64)  # 104-106 missing
    labels = FrameLabels(Numbering.DATASET, dataset, dataset, fps=200.0)
    assert labels.label(0, 3, 4) == "101–107–108"
    assert labels.frame_of(107) == 3
    assert labels.frame_of(105) in (2, 3) and labels.frame_of(104) == 2  # nearest frame
    assert labels.frame_of(10_000) == 4 and labels.frame_of(-5) == 0
    # the clock follows the numbers: a gap is a gap in time (6 frames at 200 fps = 30 ms)
    assert labels.t_s(3) == pytest.approx(0.030)
    assert labels.timecode(3) == "00:00:00.030"
    assert timecode(3723.4567) == "01:02:03.457"
    index = FrameLabels(Numbering.INDEX, np.arange(5), dataset, fps=200.0)
    assert index.label(0, 3) == "0–3" and index.timecode(3) == "00:00:00.030"


# -- one numbering everywhere ------------------------------------------------------------------

def test_dataset_numbers_show_everywhere_and_the_choice_applies_at_once(qtbot, window, gap_clip):
    open_in_window(qtbot, window, gap_clip)
    session = window.session
    project = session.project
    assert list(project.frame_numbers(session.video.id)[8:12]) == [109, 110, 114, 115]
    event = project.add_event(session.video.id, 9, 10, 12)  # numbers 110-114-116
    qtbot.waitUntil(lambda: event.id in window.timeline._event_items, timeout=5000)
    session.select_event(event.id)  # seeks to the onset
    qtbot.waitUntil(lambda: window.video_view.frame_idx == 9, timeout=5000)

    # Dataset numbers (the default, what every export writes) in every place that shows one.
    assert _hud_first_line(window).split()[:4] == ["frame", "110", "/", "160"]
    assert window.transport.frame_box.text() == "110"
    assert window.transport.total.text() == "/ 160"
    # the clock follows the numbers: frame 110 is 9 frames after 101
    assert window.transport.time.text() == timecode(9 / session.fps)
    assert "frames 110–111–116" not in window.au_panel.event_title.text()
    assert "frames 110–114–116" in window.au_panel.event_title.text()
    def tree_texts() -> list[str]:
        rows, texts = [window.project_panel.tree.topLevelItem(0)], []
        while rows:
            item = rows.pop()
            texts += [item.text(c) for c in range(item.columnCount())]
            rows += [item.child(i) for i in range(item.childCount())]
        return texts

    qtbot.waitUntil(lambda: "110–114–116" in tree_texts(), timeout=3000)  # it refreshes on a timer
    axis = window.timeline.plot.getAxis("bottom")
    assert axis.tickStrings([0, 10, 56], 1, 1) == ["101", "114", "160"]

    # Typing a number goes to that frame; one in the gap to the nearest frame that exists.
    press_keys(qtbot, window, (Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier))
    box = window.transport.frame_box
    for typed, frame_idx in (("114", 10), ("101", 0), ("112", 9)):
        box.lineEdit().selectAll()
        qtbot.keyClicks(box.lineEdit(), typed)
        press_keys(qtbot, box, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda f=frame_idx: session.frame_idx == f, timeout=3000)
        box.setFocus()

    # View > Frame numbering > 0-based index: everything follows at once, and it is kept.
    window.view.numbering_actions[Numbering.INDEX].trigger()
    session.seek(10)
    qtbot.waitUntil(lambda: window.video_view.frame_idx == 10, timeout=5000)
    assert _hud_first_line(window).split()[:4] == ["frame", "10", "/", "56"]
    assert window.transport.frame_box.text() == "10"
    assert "frames 9–10–12" in window.au_panel.event_title.text()
    qtbot.waitUntil(lambda: "9–10–12" in tree_texts(), timeout=3000)
    assert axis.tickStrings([0, 10], 1, 1) == ["0", "10"]
    # the clock still follows the dataset numbers (13 frames after the first)
    assert window.transport.time.text() == timecode(13 / session.fps)
    from microau_gui.gui.preferences import load_preferences
    assert load_preferences().numbering is Numbering.INDEX


def test_marking_reports_frames_in_the_chosen_numbering(qtbot, window, gap_clip):
    open_in_window(qtbot, window, gap_clip)
    session = window.session
    session.seek(10)
    qtbot.waitUntil(lambda: window.video_view.frame_idx == 10, timeout=5000)
    messages = []
    session.status_posted.connect(messages.append)
    press_keys(qtbot, window, Qt.Key.Key_I)
    assert "onset marked at frame 114" in messages[-1]


# -- the ruler and the lanes ---------------------------------------------------------------------

def test_the_ruler_ticks_round_numbers_and_whole_times_and_the_lanes_show_their_scale(
        qtbot, window, gap_clip):
    open_in_window(qtbot, window, gap_clip)
    timeline = window.timeline
    ruler = timeline.ruler
    frames = window.session.frames

    # Frame ticks sit on numbers that exist and are round in the numbering, not in frame_idx.
    levels = ruler.frame_axis.tickValues(0, 56, 600)
    ticks = [v for _s, values in levels for v in values]
    assert ticks and all(float(v).is_integer() for v in ticks)
    assert not {frames.number(int(v)) for v in ticks} & set(GAP)
    for spacing, values in levels[:2]:  # the labelled levels: 110, 120 ... and 105, 115 ...
        numbers = [frames.number(int(v)) for v in values]
        assert numbers and all(n % spacing == 0 for n in numbers), (spacing, numbers)
    # The time ruler writes hh:mm:ss.fff at round times of its level.
    for spacing, values in ruler.time_axis.tickValues(0, 56, 600)[:2]:
        strings = ruler.time_axis.tickStrings(values, 1, spacing)
        assert strings and all(len(s) == 12 and s[2] == s[5] == ":" and s[8] == "."
                               for s in strings)
        ms = [int(s[-3:]) + 1000 * int(s[6:8]) for s in strings]
        assert all(m % round(1000 * spacing) == 0 for m in ms), (spacing, strings)
    # the ruler is pinned above the scrolling lanes and lines up with them
    assert ruler.isVisible() and ruler.y() < timeline.scroll.y()
    lane_left = timeline.plot.vb.mapToDevice(QPointF(0, 0)).x()
    ruler_left = ruler.getPlotItem().vb.mapToDevice(QPointF(0, 0)).x()
    assert abs(lane_left - ruler_left) <= 1.5

    # Every lane is at least LANE_MIN_PX tall, whatever the dock's height.
    from microau_gui.gui.timeline_view import LANE_MIN_PX
    lane_px = timeline.plot.vb.height() / timeline.n_lanes
    assert lane_px >= LANE_MIN_PX - 1
    # The right axis is each AU lane's scale: 1, the threshold and 0 at their heights.
    right = timeline.plot.getAxis("right")
    scale = dict((round(y, 6), text) for y, text in right._tickLevels[0])
    threshold_y = float(timeline.value_y(0, DECISION_THRESHOLD))
    assert scale[round(threshold_y, 6)] == f"{DECISION_THRESHOLD:g}"
    assert scale[round(float(timeline.value_y(0, 1.0)), 6)] == "1"
    # no two scale labels closer than a third of a lane (a lane's 0 ran into the next one's 1)
    heights = sorted(scale)
    assert min(b - a for a, b in zip(heights, heights[1:])) > 1 / 3
    # ... and a dashed threshold line at exactly the height a trace at p = threshold is drawn.
    lines = [item for item in timeline._static_items
             if item.angle == 0 and item.pen.style() == Qt.PenStyle.DashLine]
    assert len(lines) == len(timeline.vocab)
    assert any(abs(line.value() - threshold_y) < 1e-9 for line in lines)


def test_labels_of_short_spans_never_overlap_or_run_past_their_span(qtbot, window, gap_clip):
    open_in_window(qtbot, window, gap_clip)
    session = window.session
    video_id = session.video.id
    aus = parse_au_string("4+7+10+12").codes
    long_event = session.project.add_event(video_id, 0, 5, 20, aus)
    for onset in (24, 26, 28):
        session.project.add_event(video_id, onset, onset, onset + 1, aus)
    timeline = window.timeline
    qtbot.waitUntil(lambda: len(timeline._event_items) == 4, timeout=5000)
    timeline.plot.setXRange(-0.5, 56.5, padding=0)
    qtbot.wait(50)

    shown = []
    for event_id, (region, _apex, label) in timeline._event_items.items():
        if not label.isVisible() or not label.textItem.toPlainText():
            assert f"event {event_id} " in region.toolTip()  # the whole text is one hover away
            continue
        box = label.mapRectToView(label.boundingRect())
        onset, offset = region.getRegion()
        assert box.left() >= onset - 1e-6 and box.right() <= offset + 1e-6, event_id
        shown.append((box.left(), box.right()))
    shown.sort()
    assert all(a[1] <= b[0] for a, b in zip(shown, shown[1:]))
    long_label = timeline._event_items[long_event.id][2]
    assert long_label.textItem.toPlainText() == f"E{long_event.id} 4+7+10+12"  # room: whole text


# -- theme and text size -----------------------------------------------------------------------

def test_light_theme_and_text_size_apply_at_once_and_are_kept_per_user(qtbot, window, gap_clip,
                                                                        monkeypatch):
    from microau_gui.gui import style
    from microau_gui.gui.preferences import load_preferences

    open_in_window(qtbot, window, gap_clip)
    app = QApplication.instance()
    window.view.theme_actions[style.Theme.LIGHT].trigger()
    assert app.palette().color(QPalette.ColorRole.Window).lightness() > 200
    background = window.timeline.plot_widget.backgroundBrush().color()
    assert background.lightness() > 200
    assert window.timeline.ruler.backgroundBrush().color().lightness() > 200
    assert window.dependency_view.layout_widget.backgroundBrush().color().lightness() > 200
    # the video keeps its dark surround so the frame stands out
    assert window.video_view.graphics.backgroundBrush().color().lightness() < 60
    assert load_preferences().theme is style.Theme.LIGHT

    normal = app.font().pointSizeF()
    press_keys(qtbot, window, (Qt.Key.Key_Plus, Qt.KeyboardModifier.ControlModifier),
          (Qt.Key.Key_Plus, Qt.KeyboardModifier.ControlModifier))
    assert app.font().pointSizeF() > normal
    assert window.timeline.plot.getAxis("left").style["tickFont"].pointSize() > 8
    assert load_preferences().font_scale > 1.0
    press_keys(qtbot, window, (Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier))
    assert app.font().pointSizeF() == normal and load_preferences().font_scale == 1.0

    # "Follow the system": the scheme Qt reports decides, and a change is followed live.
    class Hints:
        scheme = Qt.ColorScheme.Dark

        def colorScheme(self):  # noqa: N802 - Qt's name
            return self.scheme

    hints = Hints()
    monkeypatch.setattr(style.QGuiApplication, "styleHints", staticmethod(lambda: hints))
    window.view.theme_actions[style.Theme.SYSTEM].trigger()
    assert app.palette().color(QPalette.ColorRole.Window).lightness() < 60
    hints.scheme = Qt.ColorScheme.Light
    window.view._on_color_scheme_changed(hints.scheme)
    assert app.palette().color(QPalette.ColorRole.Window).lightness() > 200
    window.view.theme_actions[style.Theme.DARK].trigger()  # leave the app as other tests expect
    assert app.palette().color(QPalette.ColorRole.Window).lightness() < 60


# -- errors ----------------------------------------------------------------------------------------

def test_an_internal_error_is_a_sentence_with_the_details_behind_a_button(qtbot, window, gap_clip):
    open_in_window(qtbot, window, gap_clip)
    session = window.session

    def broken_edit(_project):
        raise AttributeError("'str' object has no attribute 'value'")

    assert not session.annotator.run_in_transaction([broken_edit], "Edit refused")
    qtbot.waitUntil(lambda: window._error_box is not None and window._error_box.isVisible(),
                    timeout=3000)
    box = window._error_box
    assert box.text().startswith("Edit refused: an internal error")
    assert "AttributeError" not in box.text() and "'str' object" not in box.text()
    assert "Traceback" in box.detailedText() and "AttributeError" in box.detailedText()
    assert "AttributeError" not in window.statusBar().currentMessage()
    # a user's mistake stays one plain line, with no details
    window.show_error("the media of EP02 is missing; relink the video")
    assert "The media of EP02 is missing; relink the video" in box.text()
    sentence, details = split_details("x" + DETAILS_MARKER + "y")
    assert (sentence, details) == ("x", "y")


def test_file_numbers_come_from_the_file_names_and_index_counts_from_zero(qtbot, tmp_path,
                                                                         astronaut_path):
    """A folder whose project numbers are not its file names (ordinal numbering, or a video
    imported with a sheet offset): "file" shows the names' numbers, "index" 0..n-1."""
    from types import SimpleNamespace

    from microau_gui.session.numbering import FrameNumbering

    rgb = cv2.cvtColor(cv2.imread(str(astronaut_path)), cv2.COLOR_BGR2RGB)
    folder = write_face_clip(tmp_path / "spNO.1" / "a" / "color", rgb, n_frames=4,
                             first_number=355)
    project = SimpleNamespace(frame_numbers=lambda _video_id: np.arange(1, 5))  # ordinal 1..4
    video = SimpleNamespace(id=1, n_frames=4, fps=30.0, path=folder)
    numbering = FrameNumbering(lambda: project)
    changes = []
    numbering.changed.connect(lambda: changes.append(numbering.labels.label(0, 3)))
    numbering.set_video(video)
    numbering.set_numbering(Numbering.FILE)
    numbering.set_numbering(Numbering.INDEX)
    assert changes == ["1–4", "355–358", "0–3"]
    assert numbering.label_in(1, 2) == "2"


def test_a_dialog_opened_in_the_light_theme_draws_its_curves_light(qtbot, tmp_path):
    """The fine-tune dialog is made after the theme was chosen: its plots follow it too."""
    from gui_fixtures import save_tiny_weights

    from microau_gui.gui import style
    from microau_gui.gui.finetune_dialog import FinetuneDialog

    weights = save_tiny_weights(tmp_path / "weights", "test-tiny", "apex+diff")
    for window in shown_window(qtbot, weights):
        window.view.set_theme(style.Theme.LIGHT)
        dialog = FinetuneDialog(window.session, window)
        qtbot.addWidget(dialog)
        import pyqtgraph as pg
        views = dialog.findChildren(pg.GraphicsView)
        assert views and all(v.backgroundBrush().color().lightness() > 200 for v in views)
        window.view.set_theme(style.Theme.DARK)
