"""Review > Suggest what to review, and walking the suggestions with single keys.

Real widgets (pytest-qt, offscreen), a real SQLite project of expert-coded synthetic clips, a
tiny open_clip model analysing the open video through the real inference worker (its cached
predictions are what `inference.suggest.suggest_for_project` ranks). Nothing is faked.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from test_gui_finetune_fixtures import (  # noqa: F401
    ft_cache_home,
    ft_project,
    ft_synth,
    ft_weights,
    ft_window,
    open_project,
)

from microau_gui.core.au import au_number
from microau_gui.gui.actions import shortcut_rows
from microau_gui.inference.suggest import suggest_for_project
from microau_gui.session.review import SUGGESTIONS, ItemStatus

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")

CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


def _key(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    qtbot.keyClick(window, key, modifier)


def _events(project) -> list:
    return [(e.id, e.video_id, e.onset, e.apex, e.offset, e.aus_text, e.source)
            for e in project.events()]


def test_suggestions_fill_the_queue_from_cached_predictions_and_keys_walk_it(
        qtbot, ft_window, ft_project):
    window = ft_window
    session = window.session
    review = session.review
    panel = window.review_panel
    open_project(qtbot, window, ft_project)
    project = session.project
    # Listed in Help > Shortcuts, from the same action table as the menu.
    assert ("Review", "Suggest what to review (from the model's predictions)",
            "Ctrl+Shift+R") in shortcut_rows(window.actions.values())

    # Nothing analysed yet: the queue is empty and says what to do. Suggesting runs as a
    # background job (session.jobs); the queue fills when it ends.
    with qtbot.waitSignal(review.suggestions_finished, timeout=60000):
        _key(qtbot, window, Qt.Key.Key_R, CTRL_SHIFT)
    assert review.active == SUGGESTIONS and len(review.queue) == 0
    assert "analyse the video first" in panel.summary.text()
    assert panel.suggest_button.isVisible() and not panel.spot_button.isVisible()

    with qtbot.waitSignal(session.analysis_finished, timeout=180000):
        window.actions["analyze"].trigger()
    video = session.video
    with qtbot.waitSignal(review.suggestions_finished, timeout=60000):
        _key(qtbot, window, Qt.Key.Key_R, CTRL_SHIFT)
    expected = suggest_for_project(project, session.model.model_version_id)
    queue = review.queue
    assert len(queue) == len(expected) >= 3
    assert [(i.video_id, i.apex, i.au, i.kind) for i in queue.items] == [
        (s.video_id, s.frame_idx, s.au, s.kind) for s in expected]
    assert panel.table.rowCount() == len(queue)
    assert panel.table.item(0, 5).text() == expected[0].reason
    # No reason is cut (issue 16): the "Why" column lies inside the table, wrapped, and every
    # row is tall enough for its whole wrapped reason.
    table = panel.table
    window.resize(1600, 1000)
    window.show_panel("review")
    window.resizeDocks([window.docks["review"]], [520], Qt.Orientation.Horizontal)
    qtbot.waitUntil(lambda: table.columnViewportPosition(5) + table.columnWidth(5)
                    <= table.viewport().width() + 1, timeout=3000)
    metrics = table.fontMetrics()
    for row in range(table.rowCount()):
        wrapped = metrics.boundingRect(0, 0, table.columnWidth(5) - 8, 10_000,
                                       int(Qt.TextFlag.TextWordWrap), table.item(row, 5).text())
        assert table.rowHeight(row) >= wrapped.height(), row
    assert panel.summary.text().startswith(f"{len(queue)} suggestions")
    # The queue starts on the most urgent suggestion, with the playhead on its frame.
    assert queue.current == 0 and session.frame_idx == queue.items[0].apex

    # J / K walk the ranking.
    _key(qtbot, window, Qt.Key.Key_J)
    assert queue.current == 1 and session.frame_idx == queue.items[1].apex
    _key(qtbot, window, Qt.Key.Key_K)
    assert queue.current == 0 and session.frame_idx == queue.items[0].apex

    # X rejects without touching the project and moves to the next undecided item.
    before = _events(project)
    _key(qtbot, window, Qt.Key.Key_X)
    assert queue.status(0) is ItemStatus.REJECTED and queue.current == 1
    assert _events(project) == before
    assert panel.table.item(0, 1).text() == "✗ rejected"

    # Y on a suggestion about a coded event: the event is selected when shown, and Y marks it
    # reviewed (the event as the coder left it) and moves on.
    on_event = next(i for i, item in enumerate(queue.items)
                    if item.event_id is not None and queue.status(i) is ItemStatus.PENDING)
    review.go_to(on_event)
    item = queue.items[on_event]
    assert session.selected_event is not None and session.selected_event.id == item.event_id
    _key(qtbot, window, Qt.Key.Key_Y)
    assert queue.status(on_event) is ItemStatus.ACCEPTED
    assert _events(project) == before
    assert queue.current != on_event

    # Y on a suggestion outside every coded event: a new accepted event over the model's firing,
    # with the suggested AU, one undo step.
    outside = next(i for i, item in enumerate(queue.items)
                   if item.event_id is None and queue.status(i) is ItemStatus.PENDING)
    review.go_to(outside)
    item = queue.items[outside]
    assert session.selected_event is None
    _key(qtbot, window, Qt.Key.Key_Y)
    qtbot.waitUntil(lambda: queue.status(outside) is ItemStatus.ACCEPTED, timeout=60000)
    added = project.event(queue.accepted[outside])
    assert (added.video_id, added.onset, added.apex, added.offset) == (
        video.id, item.onset, item.apex, item.offset)
    assert added.source == "accepted"
    assert au_number(item.au) in {code.number for code in added.aus}
    assert session.selected_event.id == added.id
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _events(project) == before
    assert queue.status(outside) is ItemStatus.PENDING
