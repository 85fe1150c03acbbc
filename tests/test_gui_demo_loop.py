"""The README's loop on the bundled demo, in the window: fine-tune -> activate -> roll back from
the Model versions panel (issue 16 items 2 and 3).

The demo project is a copy in a temporary folder, so the checkpoint path stored for demo-tiny
(relative to the committed assets/demo/) no longer resolves, exactly as in the user's working
copy of the demo: roll-back must find the checkpoint the way the toolbar does. Real window, real
fine-tune in the worker thread, real inference worker.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from gui_fixtures import shown_window
from test_session_fixtures import demo_copy  # noqa: F401

from microau_gui.gui.finetune_dialog import FinetuneDialog

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")

TIMEOUT_MS = 240000


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield from shown_window(qtbot)


@pytest.mark.slow  # a one-epoch fine-tune and two model loads on the demo: about 30-60 s
def test_demo_finetune_activate_and_roll_back_in_the_versions_panel(qtbot, window, demo_copy):
    if demo_copy is None:
        pytest.skip("the bundled demo is not built (make demo-assets)")
    session = window.session
    with qtbot.waitSignal(session.model_loaded, timeout=TIMEOUT_MS):
        session.open_path(demo_copy)
    project = session.project
    parent = project.models.active()
    assert not parent.checkpoint.exists()  # the stored path does not resolve from the copy
    panel = window.versions_panel
    assert panel.row_texts()[0][1] == "1.000 · training data"  # its own training subjects

    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    (dialog,) = [d for d in window.findChildren(FinetuneDialog) if d.isVisible()]
    for i in range(dialog.holdout.count()):
        item = dialog.holdout.item(i)
        item.setCheckState(Qt.CheckState.Checked if item.data(Qt.ItemDataRole.UserRole) == "03"
                           else Qt.CheckState.Unchecked)
    dialog.epochs.setValue(1)
    with qtbot.waitSignal(session.finetune.finished, timeout=TIMEOUT_MS) as finished:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    tuned = finished.args[0].result  # JobDone -> Tuned (the registered FinetuneResult)
    assert tuned is not None, finished.args[0]
    result = tuned.report
    child = next(v for v in project.models.list() if v.name == result.card.name)

    # Item 3: the dialog and the panel give the same before -> after, and say on what.
    before = f"{round(result.before.mean_f1, 4):.3f}"
    after = f"{round(result.after.mean_f1, 4):.3f}"
    assert f"{before} → {after}" in dialog.headline.text()
    assert "held-out 03" in dialog.headline.text()
    child_row = next(r for r in panel.row_texts() if r[0].endswith(child.name))
    assert child_row[1] == f"{after} · held-out 03"
    panel.tree.setCurrentItem(panel.item_for(child.id))
    assert f"mean F1 {before} → {after} on held-out 03" in panel.details.text()

    # Activate the child from the dialog, then roll back to demo-tiny from the panel.
    with qtbot.waitSignal(session.model_loaded, timeout=TIMEOUT_MS,
                          check_params_cb=lambda m: m.card.name == child.name):
        qtbot.mouseClick(dialog.activate_button, Qt.MouseButton.LeftButton)
    dialog.close()
    panel.tree.setCurrentItem(panel.item_for(parent.id))
    with qtbot.waitSignal(session.model_loaded, timeout=TIMEOUT_MS,
                          check_params_cb=lambda m: m.card.name == parent.name):
        qtbot.mouseClick(panel.activate_button, Qt.MouseButton.LeftButton)
    assert project.models.active().id == parent.id
    assert "missing" not in window.statusBar().currentMessage()
