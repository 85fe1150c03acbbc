"""File > Import and File > Export: one menu entry per format, a file dialog, a one-line result.

Owns: `install_format_menus`, `run_import`, `run_export`. May import PySide6, session and the
window's JobStrip (gui.dialogs). The formats and what they run are session.interchange's (the
command line runs the same functions).

The file is read or written by a background job (session.interchange_job): the window stays
live, a strip in the status bar shows its progress with a Cancel button, and its end is one
line in the status bar. A refused file (damaged, wrong kind, no project open), whether refused
at once or by the job, is one line in a warning box; a cancelled or failed job leaves nothing
behind (an import rolls back, an export removes its temporary file).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QMessageBox

from microau_gui.core.errors import UserError
from microau_gui.gui.dialogs import JobStrip
from microau_gui.session.interchange import EXPORT_FORMATS, IMPORT_FORMATS, FileFormat
from microau_gui.session.messages import JobDone

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
    import_menu = QMenu("&Import", file_menu)  # mnemonics: Alt+F, I / E, then arrows
    import_menu.setObjectName("menu_import")
    export_menu = QMenu("&Export", file_menu)
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
    strip = JobStrip()
    strip.setObjectName("interchange_strip")
    strip.cancel.clicked.connect(window.interchange.cancel)
    window.statusBar().addPermanentWidget(strip)
    window.interchange.progressed.connect(strip.show_progress)
    window.interchange.finished.connect(strip.finish)
    window.interchange.finished.connect(lambda done: _on_finished(window, done))
    return import_menu, export_menu


def _on_finished(window: QMainWindow, done: JobDone) -> None:
    if done.failed:
        title = "Import" if done.summary.startswith("import") else "Export"
        QMessageBox.warning(window, title, done.summary.splitlines()[0])
    else:
        window.statusBar().showMessage(done.summary, 8000)


def _submit(window: QMainWindow, title: str, submit) -> bool:
    """Start the job; a refusal before it starts (no project, busy) is one line in a box."""
    try:
        submit()
    except UserError as err:
        QMessageBox.warning(window, title, str(err).splitlines()[0])
        return False
    return True


def run_import(window: QMainWindow, fmt: FileFormat) -> bool:
    """Ask for a file and start importing it (True: started); the dataset entry opens the
    dataset import dialog."""
    if fmt.key == "dataset":
        window.import_dialog()
        return False
    path, _ = QFileDialog.getOpenFileName(window, f"Import {fmt.label.rstrip('…')}", "",
                                          fmt.filter)
    if not path:
        return False
    return _submit(window, "Import", lambda: window.interchange.import_file(fmt.key, path))


def run_export(window: QMainWindow, fmt: FileFormat) -> bool:
    """Ask for a file name and start exporting to it (True: started)."""
    path, _ = QFileDialog.getSaveFileName(window, f"Export {fmt.label.rstrip('…')}", "",
                                          fmt.filter)
    if not path:
        return False
    if not Path(path).suffix and fmt.suffix:
        path += fmt.suffix
    return _submit(window, "Export", lambda: window.interchange.export_file(fmt.key, path))
