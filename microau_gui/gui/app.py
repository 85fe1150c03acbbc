"""Application start-up: QApplication, the main window, the bundled demo and `--screenshot`.

Owns: `run_gui`, `open_initial`. May import PySide6, the gui modules and session.

`python main.py` opens the bundled demo project (assets/demo/demo.maus, built by
`make demo-assets`; a working copy in the user's data folder, `session.opening.demo_project_path`)
with its first event selected, at the apex; when the demo is missing the window says how to
build it.
`python main.py --screenshot OUT.png [PATH]` opens the window, waits until the first prediction
is drawn, saves the window (QWidget.grab) and exits 0; when no prediction arrives within
SCREENSHOT_TIMEOUT_S (or the model cannot load) it still saves what is on screen, prints one
line saying why, and exits 1.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from microau_gui.core.errors import UserError, internal_error_text
from microau_gui.gui.main_window import MainWindow
from microau_gui.gui.style import apply_style
from microau_gui.session.opening import demo_project_path, resolve_target
from microau_gui.session.session import ProjectSession

log = logging.getLogger(__name__)

SCREENSHOT_TIMEOUT_S = 240  # torch import + model load + first prediction on a slow 2-core CPU
SCREENSHOT_SETTLE_MS = 600  # let the overlays, the timeline and the panels paint first

DEMO_MISSING = ("The bundled demo is not built yet.\n\nRun  make demo-assets  (a small synthetic "
                "clip with coded events and a tiny demo model), then start again —\nor open your "
                "own video, image folder or project with File > Open (Ctrl+O).")


def open_initial(window: MainWindow, session: ProjectSession, path: str | None) -> None:
    """Open PATH, or the bundled demo, or show how to build the demo."""
    if path:
        session.open_path(path)
        return
    demo = demo_project_path()
    if demo is None:
        window.show_placeholder(DEMO_MISSING)
        return
    session.open_path(demo)
    if session.events:  # show the demo where something happens: its first event, at the apex
        first = session.events[0]
        session.select_event(first.id, seek=False)
        session.seek(first.apex)


class _Screenshot(QObject):
    """Saves the window once the first prediction is drawn, then quits the application."""

    def __init__(self, window: MainWindow, session: ProjectSession, out: Path, app: QApplication):
        super().__init__(window)
        self.window, self.session, self.out, self.app = window, session, out, app
        self.done = False
        session.prediction_made.connect(self._on_session_prediction_made)
        session.model_unloaded.connect(lambda why: self._finish(f"no prediction: {why}"))
        QTimer.singleShot(SCREENSHOT_TIMEOUT_S * 1000, lambda: self._finish(
            f"no prediction was drawn within {SCREENSHOT_TIMEOUT_S} s"))
        if session.video is None:
            QTimer.singleShot(1000, lambda: self._finish("no video to predict on (the demo is not "
                                                         "built: run make demo-assets)"))

    def _on_session_prediction_made(self, _prediction) -> None:
        QTimer.singleShot(SCREENSHOT_SETTLE_MS, lambda: self._finish(None))

    def _finish(self, error: str | None) -> None:
        if self.done:
            return
        self.done = True
        self.out.parent.mkdir(parents=True, exist_ok=True)
        saved = self.window.grab().save(str(self.out))
        if error is None and not saved:
            error = f"could not write {self.out}"
        if error:
            print(f"error: {error} (window saved to {self.out})" if saved else f"error: {error}",
                  file=sys.stderr)
        self.window.close()
        self.app.exit(1 if error else 0)


def run_gui(path: str | None, screenshot: str | None = None, device: str = "auto") -> int:
    """Open the window (on PATH or the demo) and run until it closes; returns the exit code."""
    if path:
        resolve_target(path)  # a wrong path is a one-line CLI error before any window opens
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("MicroAU Studio")
    apply_style(app)
    session = ProjectSession(device=device)
    window = MainWindow(session)
    try:
        open_initial(window, session, path)
    except UserError:
        session.close()
        raise
    window.show()

    def excepthook(kind, value, tb):  # a bug in a slot is shown, logged, and the app carries on
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, value, tb)))
        window.show_error("An action failed: " + internal_error_text(value.with_traceback(tb)))

    previous_hook, sys.excepthook = sys.excepthook, excepthook
    if screenshot:
        _Screenshot(window, session, Path(screenshot), app)
    elif not session.coder.name:  # asked once; File > Switch coder changes it later
        window.ask_coder()
    try:
        return app.exec()
    finally:
        sys.excepthook = previous_hook
        session.close()
