"""Application start-up: QApplication, the main window, `--screenshot`.

Owns: `run_gui`. Placeholder window until the review GUI lands.
"""

from __future__ import annotations

import sys


def run_gui(path: str | None, screenshot: str | None = None, device: str = "auto") -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = QLabel("MicroAU Studio")
    window.setWindowTitle("MicroAU Studio")
    window.resize(800, 600)
    window.show()
    if screenshot:
        QTimer.singleShot(500, lambda: (window.grab().save(screenshot), app.quit()))
    return app.exec()
