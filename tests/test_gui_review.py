"""The spotting review queue driven like a coder drives it: spot in a worker, walk the ranked
candidates with single keys, accept one into an event with the model's AUs, reject, undo.

Real widgets (pytest-qt, offscreen), a real synthetic interview (H.264, real faces), the real
spotter in its worker thread, the real model through the inference worker, a real SQLite project.
"""

from __future__ import annotations

import pytest
from gui_fixtures import annotation_tables
from PySide6.QtCore import Qt
from test_gui_review_fixtures import (  # noqa: F401
    interview,
    interview_master,
    open_and_wait_for_model,
    review_weights,
    review_window,
)

from microau_gui.session.review import CANDIDATES, ItemStatus
from microau_gui.session.session import ProjectSession

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")

CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


def _spot(qtbot, window) -> tuple:
    """Ctrl+Shift+S, wait for the worker; returns (JobDone whose result is Spotted, progress reports seen)."""
    review = window.session.review
    progress = []
    review.spotting_progressed.connect(progress.append)
    with qtbot.waitSignal(review.spotting_finished, timeout=180000) as finished:
        qtbot.keyClick(window, Qt.Key.Key_S, CTRL_SHIFT)
        assert review.spotting  # the pass runs in its worker: the key returned at once
    return finished.args[0], progress


def test_spotted_candidates_are_ranked_accepted_with_the_model_aus_and_rejected(
        qtbot, review_window, interview, interview_master):
    window = review_window
    session = window.session
    open_and_wait_for_model(qtbot, window, interview)
    done, progress = _spot(qtbot, window)
    assert not done.cancelled
    assert progress and progress[-1].n_total == session.n_frames
    review = session.review
    queue = review.queue
    assert review.active == CANDIDATES and len(queue) == len(done.result.candidates) >= 2
    # The synthetic interview's micro-expressions are among the candidates.
    truth = [(s.onset, s.offset) for s in interview_master.samples]
    assert any(abs(i.onset - on) <= 6 and abs(i.offset - off) <= 6
               for i in queue.items for on, off in truth)
    # Ranked by score, highest first, in the queue and in the panel's table.
    scores = [item.score for item in queue.items]
    assert scores == sorted(scores, reverse=True)
    table = window.review_panel.table
    assert table.rowCount() == len(queue)
    assert [float(table.item(r, 4).text()) for r in range(table.rowCount())] == [
        round(s, 1) for s in scores]
    # The timeline's candidate lane draws every candidate over its frames.
    lane = window.timeline.candidate_lane
    assert sorted(lane.rects) == list(range(len(queue)))
    for index, rect in lane.rects.items():
        item = queue.items[index]
        assert rect.rect().left() == item.onset - 0.5
        assert rect.rect().width() == item.offset - item.onset + 1

    # The queue starts on the best candidate, at its apex, where the model predicts.
    top = queue.items[0]
    assert queue.current == 0
    qtbot.waitUntil(lambda: session.prediction is not None
                    and session.prediction.frame_idx == top.apex, timeout=60000)
    prediction = session.prediction
    expected = {code for code, p in zip(prediction.vocab, prediction.probs) if p >= 0.5}
    assert expected, "the model sees no AU at the apex: the test cannot tell AUs were taken"
    project = session.project
    before = annotation_tables(project)
    steps = session.undo_stack.count()
    qtbot.keyClick(window, Qt.Key.Key_Y)
    [event] = project.events()
    assert (event.onset, event.apex, event.offset) == (top.onset, top.apex, top.offset)
    assert {f"AU{a.number}" for a in event.aus} == expected
    assert event.source == "accepted" and event.model_version_id == session.model.model_version_id
    assert session.undo_stack.count() == steps + 1  # ONE undo step
    assert session.selected_event.id == event.id  # selected: its AUs are edited with the keys
    assert queue.status(0) is ItemStatus.ACCEPTED
    assert "accepted" in table.item(0, 1).text()
    # The accepted event is editable like any other: digit key 1 toggles the first AU.
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert ({f"AU{a.number}" for a in project.event(event.id).aus}
            == expected ^ {session.vocab[0]})
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert annotation_tables(project) == before  # undo removed the accepted event
    assert queue.status(0) is ItemStatus.PENDING

    # X rejects the current candidate and the queue moves on to the next one.
    qtbot.keyClick(window, Qt.Key.Key_X)
    assert queue.status(0) is ItemStatus.REJECTED and queue.current == 1
    assert session.frame_idx == queue.items[1].apex
    assert project.events() == []
    # K goes back, J forward, whatever the marks.
    qtbot.keyClick(window, Qt.Key.Key_K)
    assert queue.current == 0 and session.frame_idx == top.apex
    qtbot.keyClick(window, Qt.Key.Key_J)
    assert queue.current == 1


def test_the_queue_and_its_marks_are_kept_in_the_project(qtbot, review_window, interview,
                                                         review_weights):
    window = review_window
    session = window.session
    open_and_wait_for_model(qtbot, window, interview)
    done, _ = _spot(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_X)
    ranked = session.review.queue.items
    project_path = session.project.path
    window.close()

    reopened = ProjectSession(device="cpu", weights=review_weights)
    try:
        reopened.open_path(project_path)
        queue = reopened.review.queues[CANDIDATES]
        assert queue.items == ranked and len(queue) == len(done.result.candidates)
        assert queue.status(0) is ItemStatus.REJECTED and queue.status(1) is ItemStatus.PENDING
    finally:
        reopened.close()
    assert not any(t.running for t in reopened.threads)


def test_spotting_can_be_cancelled_and_leaves_the_queue_as_it_was(qtbot, review_window,
                                                                  interview):
    window = review_window
    session = window.session
    open_and_wait_for_model(qtbot, window, interview)
    review = session.review
    with qtbot.waitSignal(review.spotting_finished, timeout=60000) as finished:
        window.actions["spot_video"].trigger()
        qtbot.waitUntil(lambda: window.review_panel.job_row.isVisible(), timeout=30000)
        window.review_panel.cancel_button.click()
    assert finished.args[0].cancelled
    assert len(review.queue) == 0 and not review.spotting
    assert not window.review_panel.job_row.isVisible()
    assert window.review_panel.spot_button.isEnabled()
