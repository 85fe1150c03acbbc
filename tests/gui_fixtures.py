"""Helpers the GUI test modules share: a shown main window that is closed and checked for
leaked worker threads, a weights folder holding a model the window can load, and key presses
as a coder types them (`press_keys`, `mark_event`).

Not a test module (pytest collects `test_*.py` only); fixtures stay in the test files, which
call these so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def shown_window(qtbot, weights: Path | None = None) -> Iterator:
    """Yield a shown `MainWindow` on a fresh CPU `ProjectSession` (`weights`: its weights folder,
    None = the installation's); on teardown close it and check every worker thread stopped."""
    from microau_gui.gui.main_window import MainWindow
    from microau_gui.session.session import ProjectSession

    session = ProjectSession(device="cpu", weights=weights)
    win = MainWindow(session)
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()
    qtbot.waitExposed(win)
    yield win
    win.close()
    assert not any(t.running for t in session.threads), "a worker thread is still running"


def open_in_window(qtbot, window, path) -> None:
    """Open `path` as the command line would, and wait until its first frame is on screen."""
    from microau_gui.gui import app as gui_app

    with qtbot.waitSignal(window.session.frame_loaded, timeout=15000):
        gui_app.open_initial(window, window.session, str(path))
    qtbot.waitUntil(lambda: window.video_view.frame_idx == window.session.frame_idx, timeout=5000)


def demo_or_tiny_weights(folder: Path, input_mode: str = "apex+diff") -> Path:
    """weights/ with the demo model when it is built, else `folder` holding a freshly saved tiny
    random model (`folder / "test-tiny"`)."""
    from microau_gui.core.paths import weights_dir
    from microau_gui.session.opening import bundled_demo_path

    if bundled_demo_path() is not None and any(weights_dir().iterdir()):
        return weights_dir()
    return save_tiny_weights(folder, "test-tiny", input_mode)


def save_tiny_weights(folder: Path, name: str, input_mode: str) -> Path:
    """`folder` holding one freshly initialised tiny checkpoint `name` (seeded, eval mode)."""
    import torch

    from microau_gui.model.checkpoint import save_checkpoint
    from microau_gui.model.config import MicroAUConfig
    from microau_gui.model.network import MicroAUCLIP

    torch.manual_seed(0)
    save_checkpoint(MicroAUCLIP(MicroAUConfig.tiny(input_mode=input_mode)).eval(), folder / name)
    return folder


def annotation_tables(project) -> dict:
    """Every table of `project.dump()` an annotation edit can touch. Left out: the model version
    the session registers when its model finishes loading and that model's cached predictions
    (both may arrive at any moment), project_meta, and review_candidates (where the review
    queue keeps the coder's marks: not undoable state)."""
    return {table: rows for table, rows in project.dump().items()
            if table not in ("model_versions", "predictions", "project_meta", "review_candidates")}


def press_keys(qtbot, target, *keys) -> None:
    """Each key pressed on `target`: a `Qt.Key`, or a (key, modifiers) pair."""
    from PySide6.QtCore import Qt

    for key in keys:
        key, modifier = key if isinstance(key, tuple) else (key, Qt.KeyboardModifier.NoModifier)
        qtbot.keyClick(target, key, modifier)


def mark_event(qtbot, window, steps: int = 2) -> int:
    """I, `steps` frames right, A, `steps` right, O: a new event, selected; returns its id."""
    from PySide6.QtCore import Qt

    right = Qt.Key.Key_Right
    press_keys(qtbot, window, Qt.Key.Key_I, *[right] * steps, Qt.Key.Key_A, *[right] * steps,
               Qt.Key.Key_O)
    return window.session.selected_event.id
