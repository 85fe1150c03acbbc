"""The window's look: a dark Fusion palette (video tools are dark so the frame stands out) and a
small style sheet for the HUD, banner, badges and panel titles.

Owns: `apply_style`. May import PySide6 only.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

STYLE_SHEET = """
QMainWindow::separator { background: #2a2a30; width: 4px; height: 4px; }
QDockWidget { font-weight: bold; }
QDockWidget::title { background: #26262c; padding: 4px 8px; }
QLabel#hud {
    background: rgba(0, 0, 0, 165); color: #f2f2f2; border-radius: 4px; padding: 5px 8px;
    font-family: "DejaVu Sans Mono", monospace; font-size: 12px;
}
QLabel#placeholder { color: #d8d8dc; font-size: 17px; }
QLabel#banner { padding: 6px 10px; font-weight: bold; border-radius: 0px; }
QLabel#banner[kind="demo"] { background: #5c4a12; color: #ffe9a8; }
QLabel#banner[kind="error"] { background: #6b1f1f; color: #ffd6d6; }
QLabel#badge { padding: 2px 8px; border-radius: 8px; background: #3a3a42; color: #e0e0e0;
               font-weight: bold; }
QLabel#badge[kind="cuda"] { background: #1f5f2f; color: #d6ffd9; }
QLabel#badge[kind="cpu"] { background: #2f4a6b; color: #dbe9ff; }
QLabel#paneltitle { color: #e8e8ec; padding: 2px 0 4px 0; }
QLabel#subtle { color: #9a9aa2; }
QLabel#keyhint { color: #7d7d86; font-family: "DejaVu Sans Mono", monospace; min-width: 10px; }
QLabel#mono { font-family: "DejaVu Sans Mono", monospace; }
QToolBar { spacing: 6px; padding: 3px; border-bottom: 1px solid #2a2a30; }
QToolButton:checked { background: #3d5a80; border-radius: 3px; }
QStatusBar { color: #c8c8cc; }
"""


def apply_style(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: QColor(32, 32, 36),
        QPalette.ColorRole.WindowText: QColor(230, 230, 234),
        QPalette.ColorRole.Base: QColor(24, 24, 28),
        QPalette.ColorRole.AlternateBase: QColor(36, 36, 42),
        QPalette.ColorRole.ToolTipBase: QColor(48, 48, 54),
        QPalette.ColorRole.ToolTipText: QColor(235, 235, 235),
        QPalette.ColorRole.Text: QColor(230, 230, 234),
        QPalette.ColorRole.Button: QColor(44, 44, 50),
        QPalette.ColorRole.ButtonText: QColor(230, 230, 234),
        QPalette.ColorRole.Highlight: QColor(61, 90, 128),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.PlaceholderText: QColor(130, 130, 138),
    }
    for role, colour in colours.items():
        palette.setColor(role, colour)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(110, 110, 118))
    app.setPalette(palette)
    font = QFont("DejaVu Sans", 10)
    app.setFont(font)
    app.setStyleSheet(STYLE_SHEET)
