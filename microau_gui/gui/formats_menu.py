"""File > Import and File > Export: one menu entry per format, a file dialog, a one-line result.

Owns: `install_format_menus`, `run_import`, `run_export`. May import PySide6 and session. The
formats and what they run are session.interchange's (the command line runs the same functions).
A refused file (damaged, wrong kind, no project open) is one line in a warning box; nothing is
left half-written (every writer renames a finished temporary file into place).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox

from microau_gui.core.errors import UserError
from microau_gui.session.interchange import EXPORT_FORMATS, IMPORT_FORMATS, FileFormat

# `window` is the main window (gui.main_window.MainWindow, which imports this module: named by
# its Qt base here so the two never import each other).


def _file_menu(window: QMainWindow) -> QMenu:
    for action in window.menuBar().actions():
        if action.menu() is not None and action.text().replace("&", "") == "File":
            return action.menu()
    return window.menuBar().addMenu("File")


def install_format_menus(window: QMainWindow) -> tuple[QMenu, QMenu]:
    """Add Import and Export submenus to the File menu (before Quit); returns them."""
    file_menu = _file_menu(window)
    quit_action = next((a for a in file_menu.actions() if a.text().replace("&", "") == "Quit"),
                       None)
    import_menu = QMenu("Import", file_menu)
    import_menu.setObjectName("menu_import")
    export_menu = QMenu("Export", file_menu)
    export_menu.setObjectName("menu_export")
    for fmt in IMPORT_FORMATS:
        action = QAction(fmt.label, import_menu)
        action.setObjectName(f"import_{fmt.key}")
        action.triggered.connect(lambda _=False, f=fmt: run_import(window, f))
        import_menu.addAction(action)
    for fmt in EXPORT_FORMATS:
        action = QAction(fmt.label, export_menu)
        action.setObjectName(f"export_{fmt.key}")
        action.triggered.connect(lambda _=False, f=fmt: run_export(window, f))
        export_menu.addAction(action)
    file_menu.insertMenu(quit_action, import_menu)
    file_menu.insertMenu(quit_action, export_menu)
    file_menu.insertSeparator(quit_action)
    return import_menu, export_menu


def _report(window: QMainWindow, title: str, run) -> str | None:
    try:
        summary = run()
    except UserError as err:
        QMessageBox.warning(window, title, str(err).splitlines()[0])
        return None
    window.statusBar().showMessage(summary, 8000)
    return summary


def run_import(window: QMainWindow, fmt: FileFormat) -> str | None:
    """Ask for a file and import it; the dataset entry opens the dataset import dialog."""
    if fmt.key == "dataset":
        window.import_dialog()
        return None
    path, _ = QFileDialog.getOpenFileName(window, f"Import {fmt.label.rstrip('…')}", "",
                                          fmt.filter)
    if not path:
        return None
    return _report(window, "Import", lambda: window.interchange.import_file(fmt.key, path))


def run_export(window: QMainWindow, fmt: FileFormat) -> str | None:
    """Ask for a file name and export to it."""
    path, _ = QFileDialog.getSaveFileName(window, f"Export {fmt.label.rstrip('…')}", "",
                                          fmt.filter)
    if not path:
        return None
    if not Path(path).suffix and fmt.suffix:
        path += fmt.suffix
    return _report(window, "Export", lambda: window.interchange.export_file(fmt.key, path))
