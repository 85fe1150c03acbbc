"""The review window driven like a coder drives it: keys, the timeline mouse, menus and dialogs.

Real widgets (pytest-qt, offscreen), real SQLite projects, real image files and worker threads.
The offscreen platform warns "does not support propagateSizeHints()" for every QMainWindow; that
one message is ignored, any other Qt warning fails the test.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QAction, QMouseEvent
from PySide6.QtWidgets import QApplication, QMessageBox
from gui_fixtures import annotation_tables, open_in_window, shown_window
from test_session_fixtures import demo_copy, face_clip, read_frame  # noqa: F401

from microau_gui.gui import app as gui_app
from microau_gui.gui.actions import shortcut_rows

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")


@pytest.fixture
def window(qtbot):
    yield from shown_window(qtbot)


def _key(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(window, key, modifier)


def test_keys_mark_an_event_toggle_aus_and_undo_redo_restore_the_store(qtbot, window, demo_copy,
                                                                       face_clip):
    open_in_window(qtbot, window, demo_copy or face_clip)
    session = window.session
    project = session.project
    before = annotation_tables(project)
    n_events = len(project.events())
    start = session.frame_idx
    for _ in range(3):
        _key(qtbot, window, Qt.Key.Key_Right)
    assert session.frame_idx == start + 3
    _key(qtbot, window, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    _key(qtbot, window, Qt.Key.Key_Left)
    onset = start + 12
    assert session.frame_idx == onset
    _key(qtbot, window, Qt.Key.Key_I)
    for _ in range(2):
        _key(qtbot, window, Qt.Key.Key_Right)
    _key(qtbot, window, Qt.Key.Key_A)
    for _ in range(3):
        _key(qtbot, window, Qt.Key.Key_Right)
    _key(qtbot, window, Qt.Key.Key_O)
    assert len(project.events()) == n_events + 1
    event = session.selected_event
    assert (event.onset, event.apex, event.offset) == (onset, onset + 2, onset + 5)
    first, ninth = session.vocab[0], session.vocab[8]
    _key(qtbot, window, Qt.Key.Key_1)
    _key(qtbot, window, Qt.Key.Key_9)
    coded = {f"AU{a.number}" for a in project.event(event.id).aus}
    assert coded == {first, ninth}
    assert window.au_panel.rows[first].toggle.isChecked()  # the panel shows the coding
    assert "Set AUs" in window.actions["undo"].text()  # Edit > Undo names the command
    after = annotation_tables(project)

    for _ in range(3):
        _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert annotation_tables(project) == before
    assert not window.actions["undo"].isEnabled()
    for _ in range(3):
        _key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
             | Qt.KeyboardModifier.ShiftModifier)
    assert annotation_tables(project) == after


def test_shortcuts_dialog_lists_every_bound_key(qtbot, window):
    dialog = window.show_shortcuts()
    qtbot.addWidget(dialog)
    bound = [a for a in window.findChildren(QAction) if a.shortcuts()]
    assert len(bound) >= 30
    listed = {(dialog.table.item(r, 1).text(), dialog.table.item(r, 2).text())
              for r in range(dialog.table.rowCount()) if dialog.table.item(r, 2).text()}
    assert listed == {(command, keys) for _menu, command, keys in shortcut_rows(bound)}
    keys = " ".join(k for _c, k in listed)
    for required in ("Space", "Left", "Shift+Left", "I", "A", "O", "Ctrl+Z", "Ctrl+Shift+Z", "[",
                     "]", "L", "N", "P", "1", "0"):
        assert required in keys.replace(",", " ").split(), required
    dialog.close()


def _drag(qtbot, widget, start: QPointF, end: QPointF, steps: int = 6) -> None:
    """A real left-button drag on a widget (hover, press, several moves, release), paced like a
    hand: pyqtgraph ignores mouse moves closer than 10 ms apart."""
    def send(kind, pos, buttons):
        button = (Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove
                  else Qt.MouseButton.LeftButton)
        event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons,
                            Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, event)
        qtbot.wait(20)

    # pyqtgraph hands a drag to the item that accepted it while hovered: hover first.
    send(QEvent.Type.MouseMove, start - QPointF(1, 0), Qt.MouseButton.NoButton)
    send(QEvent.Type.MouseMove, start, Qt.MouseButton.NoButton)
    send(QEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton)
    for i in range(1, steps + 1):
        pos = start + (end - start) * (i / steps)
        send(QEvent.Type.MouseMove, pos, Qt.MouseButton.LeftButton)
    send(QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)


def test_dragging_an_event_edge_previews_live_and_is_one_undo_step(qtbot, window, face_clip):
    open_in_window(qtbot, window, face_clip)
    session = window.session
    event = session.project.add_event(session.video.id, 10, 14, 20)
    qtbot.waitUntil(lambda: event.id in window.timeline._event_items, timeout=5000)
    timeline = window.timeline
    timeline.plot.setXRange(-0.5, 59.5, padding=0)
    qtbot.wait(50)
    view = timeline.plot_widget
    box = timeline.plot.vb

    def to_widget(x_frame: float, y_lane: float) -> QPointF:
        scene = box.mapViewToScene(QPointF(x_frame, y_lane))
        return QPointF(view.mapFromScene(scene))

    previews = []
    timeline.span_previewed.connect(lambda *args: previews.append(args))
    before = annotation_tables(session.project)
    _drag(qtbot, view.viewport(), to_widget(20.5, 0.5), to_widget(30.5, 0.5))
    qtbot.waitUntil(lambda: session.project.event(event.id).offset != 20, timeout=3000)
    assert len(previews) > 1  # the span followed the mouse while dragging
    assert session.project.event(event.id).offset == 30
    assert session.undo_stack.count() == 1  # ... and the release made ONE edit
    session.undo_stack.undo()
    assert annotation_tables(session.project) == before


def test_a_worker_failure_shows_a_message_and_the_window_keeps_working(qtbot, window, face_clip):
    open_in_window(qtbot, window, face_clip)
    (face_clip / "img21.png").write_bytes(b"not an image")  # frame_idx 20
    window.session.seek(20)
    qtbot.waitUntil(lambda: window._error_box is not None and window._error_box.isVisible(),
                    timeout=10000)
    assert "frame 20" in window._error_box.text()
    window._error_box.done(QMessageBox.StandardButton.Ok)
    # (the action, not the key: which window the offscreen platform activates after a message
    # box closes is not what this test is about)
    with qtbot.waitSignal(window.session.frame_loaded, timeout=10000):
        window.actions["forward1"].trigger()
    assert window.video_view.frame_idx == 21


def test_without_a_built_demo_the_window_says_how_to_build_it(qtbot, window, monkeypatch):
    monkeypatch.setattr(gui_app, "demo_project_path", lambda: None)
    gui_app.open_initial(window, window.session, None)
    assert window.video_view.placeholder.isVisible()
    assert "make demo-assets" in window.video_view.placeholder.text()


def test_the_browser_filters_and_opens_events(qtbot, window, face_clip):
    open_in_window(qtbot, window, face_clip)
    session = window.session
    from microau_gui.core.aus import AUCode

    session.project.add_event(session.video.id, 5, 7, 9, (AUCode(4),), emotion="disgust")
    target = session.project.add_event(session.video.id, 30, 33, 36, (AUCode(12),),
                                       emotion="happiness")
    qtbot.waitUntil(lambda: "2 events" in window.project_panel.title.text(), timeout=5000)
    window.project_panel.filter.setText("happiness")
    visible = [item for item in window.project_panel._items()
               if item.data(0, Qt.ItemDataRole.UserRole) == "event" and not item.isHidden()]
    assert [item.data(0, Qt.ItemDataRole.UserRole + 1) for item in visible] == [target.id]
    window.project_panel._on_tree_item_clicked(visible[0], 0)
    qtbot.waitUntil(lambda: session.selected_event is not None
                    and session.selected_event.id == target.id, timeout=5000)
    qtbot.waitUntil(lambda: window.video_view.frame_idx == 30, timeout=5000)


def test_the_demo_opens_on_its_first_event_at_the_apex(qtbot, window, demo_copy, monkeypatch):
    if demo_copy is None:
        pytest.skip("the bundled demo is not built (make demo-assets)")
    monkeypatch.setattr(gui_app, "demo_project_path", lambda: demo_copy)
    with qtbot.waitSignal(window.session.frame_loaded, timeout=15000):
        gui_app.open_initial(window, window.session, None)
    first = window.session.events[0]
    assert window.session.selected_event.id == first.id
    qtbot.waitUntil(lambda: window.video_view.frame_idx == first.apex, timeout=10000)
    assert "Event" in window.au_panel.event_title.text()
