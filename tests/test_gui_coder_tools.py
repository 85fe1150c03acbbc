"""The coder's tools of issue 16 in the real window, driven by keys: blind coding mode, per-coder
tiers, per-AU onset/apex/offset with intensity on the spans, the event table, and the A-B loop,
reverse play and jog/shuttle keys.

Real widgets (pytest-qt, offscreen), a real project on a real image-folder clip, real keys.
Setting up a second coder's events goes through the store (that is what an import does).
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from gui_fixtures import mark_event, open_in_window, press_keys, shown_window
from test_session_fixtures import face_clip  # noqa: F401

from microau_gui.core.aus import parse_au_string
from microau_gui.gui.keymap import conflicts
from microau_gui.session.playback import playback_position

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support (propagateSizeHints|raise)")

ALT = Qt.KeyboardModifier.AltModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def window(qtbot):
    yield from shown_window(qtbot)




def _opened(qtbot, window, face_clip, coder="ann"):
    window.session.coder.set_name(coder)
    open_in_window(qtbot, window, face_clip)
    return window.session.project


def test_blind_mode_hides_the_model_and_other_coders_and_records_blind_events(qtbot, window,
                                                                              face_clip):
    project = _opened(qtbot, window, face_clip)
    video = window.session.video
    project.add_event(video.id, 1, 2, 3, parse_au_string("12").codes, coder="bob")
    qtbot.waitUntil(lambda: window.timeline.coder_tiers == ("bob",))
    seen = mark_event(qtbot, window)
    press_keys(qtbot, window, (Qt.Key.Key_B, CTRL | SHIFT))
    assert window.session.coder.blind and window.actions["blind"].isChecked()
    assert "BLIND" in window.blind_label.text()
    assert window.timeline.coder_tiers == ()  # the other coder's tier is gone
    assert all(not item.isVisible() for item in window.timeline._trace_items.values())
    assert all(not row.bar.isVisible() for row in window.au_panel.rows.values())
    for name in ("review", "dependencies", "crop"):
        assert window.docks[name].isHidden(), name
    for name in ("review_accept", "spot_video", "suggest", "heatmap"):
        assert not window.actions[name].isEnabled(), name
    assert not window.video_view.overlays.heatmap and window.actions["heatmap"].isChecked()
    assert all(e.coder == "ann" for e in window.session.events
               if e.id in window.event_table.shown_event_ids())
    press_keys(qtbot, window, Qt.Key.Key_Right, Qt.Key.Key_Right)
    blind = mark_event(qtbot, window)
    press_keys(qtbot, window, (Qt.Key.Key_B, CTRL | SHIFT))
    assert not window.session.coder.blind and window.blind_label.text() == ""
    assert window.timeline.coder_tiers == ("bob",)
    assert not window.docks["dependencies"].isHidden()
    assert window.actions["review_accept"].isEnabled() and window.video_view.overlays.heatmap
    press_keys(qtbot, window, Qt.Key.Key_Right, Qt.Key.Key_Right)
    after = mark_event(qtbot, window)
    assert [project.event(i).blind for i in (seen, blind, after)] == [False, True, False]


def test_each_coder_has_a_tier_that_can_be_hidden(qtbot, window, face_clip):
    project = _opened(qtbot, window, face_clip)
    video = window.session.video
    own = mark_event(qtbot, window)
    bob = project.add_event(video.id, 1, 2, 3, parse_au_string("12").codes, coder="bob")
    cat = project.add_event(video.id, 4, 5, 6, parse_au_string("4").codes, coder="cat")
    timeline = window.timeline
    qtbot.waitUntil(lambda: timeline.coder_tiers == ("bob", "cat"))
    # As in ELAN, the tiers are grouped on top: yours first, then the other coders', then the
    # spotted candidates, then every AU lane (a tier under the AU lanes scrolls out of view).
    assert (timeline.tier_lane("ann"), timeline.tier_lane("bob"), timeline.tier_lane("cat")) \
        == (0, 1, 2)
    assert timeline.candidate_lane_y == 3 == timeline.candidate_lane.lane
    assert timeline.first_au_lane == 4 and timeline.n_lanes == 4 + len(timeline.vocab)
    labels = dict(timeline.plot.getAxis("left")._tickLevels[0])
    assert [labels[y + 0.5] for y in range(5)] == [
        "events: ann", "coder: bob", "coder: cat", "spotted", timeline.vocab[0]]
    label_y = {i: timeline._event_items[i][2].pos().y() for i in (own, bob.id, cat.id)}
    assert label_y == {own: 0.5, bob.id: 1.5, cat.id: 2.5}
    au4 = timeline.vocab.index("AU4")

    def cat_au4_lane():
        (_rect, lane, text, _timed), = timeline._span_items[cat.id]
        return lane, text.pos().y()

    assert cat_au4_lane() == (4 + au4, 4 + au4 + 0.5)
    assert 4 < float(timeline.value_y(0, 1.0)) < float(timeline.value_y(0, 0.0)) < 5
    menu = window._coder_tiers_menu
    bob_action = next(a for a in menu.actions() if a.objectName() == "tier_bob")
    bob_action.trigger()  # unchecked: the tier goes, cat's and every lane under it move up
    assert timeline.coder_tiers == ("cat",) and bob.id not in timeline._event_items
    assert timeline.tier_lane("cat") == 1 and timeline._event_items[cat.id][2].pos().y() == 1.5
    assert timeline.candidate_lane.lane == 2 and timeline.first_au_lane == 3
    assert cat_au4_lane() == (3 + au4, 3 + au4 + 0.5)  # cat's AU4 stays on the AU4 lane
    labels = dict(timeline.plot.getAxis("left")._tickLevels[0])
    assert labels[3 + au4 + 0.5] == "AU4" and labels[1.5] == "coder: cat"
    assert 3 < float(timeline.value_y(0, 1.0)) < 4  # the model's traces follow
    bob_action.trigger()
    assert timeline.coder_tiers == ("bob", "cat") and bob.id in timeline._event_items
    assert timeline.first_au_lane == 4 and cat_au4_lane() == (4 + au4, 4 + au4 + 0.5)


def test_an_au_timed_by_key_gets_its_own_span_labelled_with_side_and_intensity(qtbot, window,
                                                                               face_clip):
    project = _opened(qtbot, window, face_clip)
    press_keys(qtbot, window, *[Qt.Key.Key_Right] * 3)
    event_id = mark_event(qtbot, window, steps=3)  # frames 3-6-9
    ninth = window.session.vocab[8]
    number = int(ninth[2:])
    press_keys(qtbot, window, Qt.Key.Key_9, (Qt.Key.Key_R, ALT), (Qt.Key.Key_C, ALT))
    # the AU's own onset at 5 and offset at 7, by key, from the playhead
    press_keys(qtbot, window, *[Qt.Key.Key_Left] * 4, (Qt.Key.Key_I, ALT | SHIFT),
          *[Qt.Key.Key_Right] * 2, (Qt.Key.Key_O, ALT | SHIFT))
    event = project.event(event_id)
    assert (event.onset, event.offset) == (3, 9)
    assert event.au_span(number) == (5, 6, 7)
    (rect, lane, text, timed), = window.timeline._span_items[event_id]
    assert timed and lane == window.timeline.au_lane(8)
    assert (rect.rect().left(), rect.rect().width()) == (4.5, 3)
    assert text.toPlainText() == f"R{number}C"
    # frames 5-6-7 are img6-img8: the title names them in the dataset's numbers
    assert "AU12 6–7–8" in window.au_panel.event_title.text() or ninth != "AU12"
    press_keys(qtbot, window, (Qt.Key.Key_Z, CTRL))  # undo: the offset of the AU goes back
    assert project.event(event_id).au_span(number) == (5, 6, 9)
    press_keys(qtbot, window, (Qt.Key.Key_Backspace, ALT | SHIFT))
    assert project.event(event_id).au_spans == ()


def test_the_event_table_sorts_edits_jumps_and_deletes_several_rows_as_one_step(qtbot, window,
                                                                                face_clip):
    project = _opened(qtbot, window, face_clip)
    first = mark_event(qtbot, window)  # 0-2-4
    press_keys(qtbot, window, Qt.Key.Key_Right, Qt.Key.Key_Right)
    second = mark_event(qtbot, window)  # 6-8-10
    press_keys(qtbot, window, Qt.Key.Key_Right, Qt.Key.Key_Right)
    third = mark_event(qtbot, window)  # 12-14-16
    press_keys(qtbot, window, (Qt.Key.Key_T, CTRL))
    panel = window.event_table
    table = panel.table
    assert table.hasFocus() and window.docks["events"].isVisible()
    header = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    # the AUs second, so a narrow dock still shows them
    assert header[:7] == ["event", "AUs", "onset", "apex", "offset", "frames", "ms"]
    column = {name: header.index(name) for name in header}
    fps = window.session.fps
    row = panel.shown_event_ids().index(first)
    assert table.item(row, column["ms"]).data(Qt.ItemDataRole.EditRole) == round(1000 * 5 / fps)
    table.sortByColumn(column["onset"], Qt.SortOrder.DescendingOrder)
    assert panel.shown_event_ids() == [third, second, first]
    # edit the offset of the first row (event `third`) by keys: F2, type, Enter
    table.setCurrentCell(0, column["offset"])
    press_keys(qtbot, table, Qt.Key.Key_F2)
    editor = table.focusWidget()
    editor.selectAll()
    frames = window.session.frames  # the table shows and takes the dataset's numbers
    qtbot.keyClicks(editor, str(frames.number(18)))
    press_keys(qtbot, editor, Qt.Key.Key_Return)  # the delegate commits on the next event-loop turn
    qtbot.waitUntil(lambda: project.event(third).offset == 18)
    assert window.session.undo_stack.undoText() == f"Move offset of event {third}"
    # a refused edit (apex before onset) changes nothing and the cell shows the stored value
    table.setCurrentCell(panel.shown_event_ids().index(third), column["apex"])
    press_keys(qtbot, table, Qt.Key.Key_F2)
    editor = table.focusWidget()
    editor.selectAll()
    qtbot.keyClicks(editor, str(frames.number(1)))
    press_keys(qtbot, editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: table.state() != table.State.EditingState)
    qtbot.wait(50)
    assert project.event(third).apex == 14
    assert table.item(panel.shown_event_ids().index(third), column["apex"]).data(
        Qt.ItemDataRole.EditRole) == frames.number(14)
    box = window._error_box  # the refusal, in words; Esc closes it and the keys come back
    assert box is not None and "apex" in box.text()
    press_keys(qtbot, box, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window._error_box is None)
    window.activateWindow()
    # AUs typed into the table
    table.setCurrentCell(panel.shown_event_ids().index(second), column["AUs"])
    press_keys(qtbot, table, Qt.Key.Key_F2)
    editor = table.focusWidget()
    editor.selectAll()
    long_aus = "1+2+4+5+6+7+9+10+L12C+R14B+15+17+20+23+24+25+26"
    qtbot.keyClicks(editor, long_aus)
    press_keys(qtbot, editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: project.event(second).aus_text == long_aus)
    # a long AU string is elided in its column, which stays within a narrow (300 px) dock, and
    # its tooltip has the whole of it
    cell = table.item(panel.shown_event_ids().index(second), column["AUs"])
    assert cell.toolTip() == long_aus
    assert table.textElideMode() == Qt.TextElideMode.ElideRight
    width = QFontMetrics(table.font()).horizontalAdvance(long_aus)
    assert table.columnWidth(column["AUs"]) < width
    assert table.columnViewportPosition(column["AUs"]) + table.columnWidth(column["AUs"]) < 300
    # Enter jumps to the row's event
    table.setFocus()
    table.setCurrentCell(panel.shown_event_ids().index(second), 0)
    press_keys(qtbot, table, Qt.Key.Key_Return)
    assert window.session.selected_event.id == second and window.session.frame_idx == 6
    # select two rows, Delete: one undo step brings both back
    table.setFocus()
    table.clearSelection()
    rows = sorted(panel.shown_event_ids().index(i) for i in (first, third))
    for r in rows:
        table.selectionModel().select(
            table.model().index(r, 0),
            table.selectionModel().SelectionFlag.Select | table.selectionModel().SelectionFlag.Rows)
    assert sorted(panel.selected_event_ids()) == sorted([first, third])
    press_keys(qtbot, table, Qt.Key.Key_Delete)
    assert [e.id for e in project.events()] == [second]
    assert window.session.undo_stack.undoText() == "Delete 2 events"
    press_keys(qtbot, window, (Qt.Key.Key_Z, CTRL))
    assert sorted(e.id for e in project.events()) == sorted([first, second, third])


def test_reverse_play_runs_backwards_and_stops_on_the_first_frame():
    assert playback_position(0.1, 50, 100.0, 1.0, 200, reverse=True) == (40, False)
    assert playback_position(1.0, 50, 100.0, 1.0, 200, reverse=True) == (0, True)
    assert playback_position(0.1, 50, 100.0, 1.0, 200) == (60, False)


def test_a_b_loop_of_any_range_and_the_shuttlepress_keys(qtbot, window, face_clip):
    _opened(qtbot, window, face_clip)
    session = window.session
    assert conflicts(window.actions.values()) == {}
    press_keys(qtbot, window, *[Qt.Key.Key_Right] * 3, (Qt.Key.Key_BracketLeft, CTRL),
          *[Qt.Key.Key_Right] * 5, (Qt.Key.Key_BracketRight, CTRL))
    assert session.loop_range == (3, 8)
    press_keys(qtbot, window, Qt.Key.Key_L)  # no event is selected: L loops over A-B
    assert session.looping and session.playhead.clock.loop == (3, 8)
    press_keys(qtbot, window, (Qt.Key.Key_L, CTRL | SHIFT))
    assert session.loop_range is None and not session.looping
    # shuttle: Shift+J plays backwards, again faster; Shift+K stops; Shift+L forwards
    press_keys(qtbot, window, *[Qt.Key.Key_Right] * 5)
    start = session.frame_idx
    speed = session.speed
    press_keys(qtbot, window, (Qt.Key.Key_J, SHIFT))
    assert session.playing and session.playhead.clock.reverse
    qtbot.waitUntil(lambda: session.frame_idx < start, timeout=5000)
    press_keys(qtbot, window, (Qt.Key.Key_J, SHIFT))
    assert session.speed > speed and session.playhead.clock.reverse
    press_keys(qtbot, window, (Qt.Key.Key_K, SHIFT))
    assert not session.playing
    press_keys(qtbot, window, (Qt.Key.Key_L, SHIFT))
    assert session.playing and not session.playhead.clock.reverse
    press_keys(qtbot, window, (Qt.Key.Key_K, SHIFT))
    assert not session.playing
