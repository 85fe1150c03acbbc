"""Model > Fine-tune on my corrections, driven like a coder drives it, and the versions panel.

Real widgets (pytest-qt, offscreen), a real SQLite project of expert-coded synthetic clips, a
tiny open_clip parent the fixtures save, the real fine-tune (`training.finetune.run_finetune`)
in the session's worker thread, the real inference worker. Nothing here fakes a prediction or a
training step.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from test_gui_finetune_fixtures import (  # noqa: F401
    PARENT,
    ft_cache_home,
    ft_project,
    ft_synth,
    ft_weights,
    ft_window,
    open_project,
)

from microau_gui.gui.finetune_dialog import FinetuneDialog

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")

CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
TIMEOUT_MS = 180000


def _open_dialog(qtbot, window) -> FinetuneDialog:
    """Model > Fine-tune on my corrections (Ctrl+Shift+F in the main window)."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_F, CTRL_SHIFT)
    shown = [d for d in window.findChildren(FinetuneDialog) if d.isVisible()]
    assert len(shown) == 1
    return shown[0]


def _tick(list_widget, wanted: set) -> None:
    for i in range(list_widget.count()):
        item = list_widget.item(i)
        on = item.data(Qt.ItemDataRole.UserRole) in wanted
        item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)


def _analyse(qtbot, window) -> None:
    """File > Analyse video and wait until the worker has cached every frame (the menu item:
    the non-modal fine-tune dialog may hold the keyboard focus)."""
    with qtbot.waitSignal(window.session.analysis_finished, timeout=TIMEOUT_MS) as finished:
        window.actions["analyze"].trigger()
    assert not finished.args[0].cancelled
    n_frames = window.session.n_frames  # the timeline redraws its lanes shortly after the cache
    qtbot.waitUntil(lambda: all(x.size == n_frames for x, _ in _timeline_traces(window).values()),
                    timeout=10000)


def _f1(value: float | None) -> str:
    """An F1 as the dialog and the versions panel print it (the card keeps 4 decimals)."""
    return "–" if value is None else f"{round(value, 4):.3f}"


def _timeline_traces(window) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(x, y) drawn in each AU lane of the timeline (empty arrays for an empty lane)."""
    return {code: tuple(np.asarray([] if a is None else a, dtype=float) for a in item.getData())
            for code, item in window.timeline._trace_items.items()}


def _run_finetune(qtbot, window, dialog, epochs: int, holdout: set):
    """Start from the dialog; returns (JobDone, progress reports, GUI-timer ticks seen
    while the worker trained)."""
    finetune = window.session.finetune
    _tick(dialog.holdout, holdout)
    dialog.epochs.setValue(epochs)
    progress = []
    finetune.progressed.connect(progress.append)
    ticks_while_training = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks_while_training.append(1) if finetune.running else None)
    timer.start()
    with qtbot.waitSignal(finetune.finished, timeout=TIMEOUT_MS) as finished:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        # The click returned while training runs in its worker: the window is not blocked.
        assert finetune.running and dialog.pages.currentIndex() == dialog.RUN
        assert not dialog.result_box.isVisible()
    timer.stop()
    finetune.progressed.disconnect(progress.append)
    return finished.args[0], progress, len(ticks_while_training)


@pytest.mark.slow  # two analyses and a fine-tune: 20-45 s on 2 shared cores
def test_finetune_in_the_dialog_then_activate_and_roll_back(qtbot, ft_window, ft_project):
    window = ft_window
    session = window.session
    open_project(qtbot, window, ft_project)
    project = session.project
    parent = project.models.active()
    assert parent.name == PARENT
    _analyse(qtbot, window)
    parent_trace = session.trace()
    parent_lanes = _timeline_traces(window)
    assert parent_trace.frame_idx.size == session.n_frames
    assert any(x.size for x, _ in parent_lanes.values())

    dialog = _open_dialog(qtbot, window)
    assert dialog.event_count.text() == "12 events from 3 subjects selected"
    assert [dialog.holdout.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(dialog.holdout.count())] == ["01", "02", "03"]
    new_name = dialog.name.text()
    assert new_name == f"{PARENT}-ft1"
    done, progress, ticks = _run_finetune(qtbot, window, dialog, epochs=3, holdout={"03"})

    # The GUI thread kept running its event loop while the worker trained.
    assert ticks >= 3
    assert not done.cancelled and done.result is not None
    result = done.result.report
    epoch_ends = [p for p in progress if p.epoch_end]
    assert [p.epoch for p in epoch_ends] == [1, 2, 3]
    assert progress[-1].fraction >= 0.95 and dialog.progress.value() >= 950
    # Live curves: one point per epoch, the values the worker reported.
    loss_x, loss_y = dialog.curves[("loss", 0)].getData()
    assert list(loss_x) == [1, 2, 3]
    assert np.allclose(loss_y, [p.loss for p in epoch_ends])
    f1_x, f1_y = dialog.curves[("f1", 0)].getData()
    assert list(f1_x) == [1, 2, 3]
    assert np.allclose(f1_y, [p.val_f1 for p in epoch_ends])
    assert result.curves[0].losses == pytest.approx(tuple(loss_y))

    # The before/after table: one row per AU plus the mean, as the result says.
    assert dialog.result_box.isVisible()
    assert result.holdout_subjects == ("03",)
    rows = result.per_au()
    assert dialog.table.rowCount() == len(rows) + 1 == len(session.vocab) + 1
    for row, (code, before, after, support) in enumerate(rows):
        cells = [dialog.table.item(row, c).text() for c in range(5)]
        assert cells[0] == code and cells[4] == str(support)
        assert cells[1] == _f1(before) and cells[2] == _f1(after)
    mean_row = [dialog.table.item(len(rows), c).text() for c in range(3)]
    before_text, after_text = _f1(result.before.mean_f1), _f1(result.after.mean_f1)
    assert mean_row == ["mean", before_text, after_text]
    assert f"{before_text} → {after_text}" in dialog.headline.text()

    # Registered, not active yet; the versions panel lists it under its parent.
    versions = {v.name: v for v in project.models.list()}
    assert set(versions) == {PARENT, new_name}
    assert versions[new_name].parent_id == parent.id and not versions[new_name].active
    assert (versions[new_name].checkpoint / "card.json").is_file()
    rows_shown = window.versions_panel.row_texts()
    assert rows_shown[0][0] == f"● {PARENT}"
    assert rows_shown[1][0] == new_name and rows_shown[1][3] == PARENT
    assert rows_shown[1][1] == f"{after_text} · held-out 03"  # the figure says what it measures
    window.versions_panel.tree.setCurrentItem(window.versions_panel.item_for(versions[new_name].id))
    assert (f"mean F1 {before_text} → {after_text} on held-out 03"
            in window.versions_panel.details.text())
    assert session.model.card.name == PARENT  # nothing switched on its own

    # Activate: the running inference worker loads it and predicts with it (no restart).
    predictions = []
    session.prediction_made.connect(predictions.append)
    with qtbot.waitSignal(session.model_loaded, timeout=TIMEOUT_MS,
                          check_params_cb=lambda m: m.card.name == new_name):
        qtbot.mouseClick(dialog.activate_button, Qt.MouseButton.LeftButton)
    running = session.model.model_version  # the card's full version, as the store keys it
    assert running == project.models.active().version
    qtbot.waitUntil(lambda: any(p.model_version == running for p in predictions), timeout=60000)
    assert project.models.active().name == new_name
    shown = session.prediction
    assert shown.model_version == running
    bars = window.au_panel.rows
    for code, p in zip(shown.vocab, shown.probs):
        assert bars[code].bar.value == pytest.approx(float(p), abs=1e-6)
    assert window.versions_panel.row_texts()[1][0] == f"● {new_name}"
    # The new version has no cached predictions yet: the timeline lanes are empty until analysed.
    assert all(x.size == 0 for x, _ in _timeline_traces(window).values())
    _analyse(qtbot, window)
    new_trace = session.trace()
    assert new_trace.frame_idx.size == session.n_frames
    assert not np.allclose(np.nan_to_num(new_trace.probs), np.nan_to_num(parent_trace.probs))

    # Roll back in the versions panel: the parent runs again and its cached traces return.
    panel = window.versions_panel
    panel.tree.setCurrentItem(panel.item_for(parent.id))
    with qtbot.waitSignal(session.model_loaded, timeout=TIMEOUT_MS,
                          check_params_cb=lambda m: m.card.name == PARENT):
        qtbot.mouseClick(panel.activate_button, Qt.MouseButton.LeftButton)
    assert project.models.active().id == parent.id
    restored = session.trace()
    assert np.array_equal(restored.frame_idx, parent_trace.frame_idx)
    assert np.array_equal(restored.probs, parent_trace.probs, equal_nan=True)
    lanes = _timeline_traces(window)
    for code, (x, y) in parent_lanes.items():
        assert np.array_equal(lanes[code][0], x)
        assert np.array_equal(lanes[code][1], y, equal_nan=True)
    # The fine-tuned version and its cache stay, ready to roll forward again.
    assert project.predictions.probs(session.video.id, versions[new_name].id).frame_idx.size
    dialog.close()


def test_discard_deletes_the_version_and_cancel_leaves_everything_unchanged(
        qtbot, ft_window, ft_project):
    window = ft_window
    session = window.session
    open_project(qtbot, window, ft_project)
    project = session.project
    weights = ft_project.parent / "weights"
    dialog = _open_dialog(qtbot, window)

    done, _progress, _ticks = _run_finetune(qtbot, window, dialog, epochs=2, holdout={"01"})
    new_name = done.result.report.card.name
    checkpoint = done.result.report.checkpoint
    assert checkpoint.is_dir() and new_name in {v.name for v in project.models.list()}
    qtbot.mouseClick(dialog.discard_button, Qt.MouseButton.LeftButton)
    assert not checkpoint.exists()
    assert [v.name for v in project.models.list()] == [PARENT]
    assert project.models.active().name == PARENT and session.model.card.name == PARENT
    assert [row[0] for row in window.versions_panel.row_texts()] == [f"● {PARENT}"]
    assert not dialog.activate_button.isEnabled() and not dialog.discard_button.isEnabled()

    # Fine-tune again, now only on the events ticked in the list, and cancel after one epoch.
    dialog.close()
    dialog = _open_dialog(qtbot, window)
    dialog.ticked_events.setChecked(True)
    by_subject = {}
    for event, subject in session.finetune.trainable_events(("expert", "accepted"), ("micro",)):
        by_subject.setdefault(subject, []).append(event.id)
    wanted = {ids[i] for ids in by_subject.values() for i in (0, 1)}
    _tick(dialog.event_list, wanted)
    assert dialog.selected_event_ids() is not None and set(dialog.selected_event_ids()) == wanted
    assert dialog.event_count.text() == f"{len(wanted)} events from 3 subjects selected"
    before = project.dump()
    finetune = session.finetune
    _tick(dialog.holdout, set())  # leave-one-subject-out: four stages, plenty of steps to cancel in
    dialog.epochs.setValue(200)
    first_epoch = []
    finetune.progressed.connect(lambda p: first_epoch.append(p) if p.epoch_end else None)
    with qtbot.waitSignal(finetune.finished, timeout=TIMEOUT_MS) as finished:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(first_epoch), timeout=TIMEOUT_MS)
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    cancelled = finished.args[0]
    assert cancelled.cancelled and cancelled.result is None
    assert first_epoch[0].n_stages == 4 and first_epoch[0].stage_index == 0
    assert dialog.curves  # the first epoch was drawn before the cancel
    assert project.dump() == before
    assert project.models.active().name == PARENT and session.model.card.name == PARENT
    assert not weights.exists() or not any(weights.iterdir())
    assert dialog.pages.currentIndex() == dialog.SETUP
    assert "cancelled" in dialog.setup_status.text()
    assert not finetune.running and not finetune.threads

    # Closing the dialog while it trains cancels the training too.
    first_epoch.clear()
    with qtbot.waitSignal(finetune.finished, timeout=TIMEOUT_MS) as finished:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: bool(first_epoch), timeout=TIMEOUT_MS)
        dialog.close()
    assert finished.args[0].cancelled and finished.args[0].result is None
    assert project.dump() == before and session.model.card.name == PARENT
    assert not weights.exists() or not any(weights.iterdir())
