"""Dialogs: Help > Shortcuts, File > Import dataset (with progress and cancel), and the job strip.

Owns: `ShortcutsDialog`, `ImportDialog`, `JobStrip`. May import PySide6, gui.actions, gui.keymap
and session.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QKeySequenceEdit,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from microau_gui.gui.actions import ACTION_SPECS, shortcut_rows
from microau_gui.gui.keymap import reset_keymap, save_key, show_key_hints
from microau_gui.session.annotation import digit_aus
from microau_gui.session.messages import JobDone, Progress
from microau_gui.session.session import ProjectSession

# (importer, label, frame rate of its image-folder clips: image files store none)
IMPORT_KINDS = (
    ("casme2", "CASME II coding sheet (2014 or 2019 layout)", 200.0),
    ("samm", "SAMM (MICRO_ONLY sheet)", 200.0),
    ("casme3", "CAS(ME)^3 part A", 30.0),
    ("megc", "MEGC spotting ground truth", None),
    ("csv", "MicroAU Studio CSV", None),
)


class ShortcutsDialog(QDialog):
    """Every key bound in the window, read from the window's actions: searchable, and rebindable
    per user (gui.keymap) with conflicts refused and named."""

    def __init__(self, actions: list[QAction], vocab: tuple[str, ...], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(620, 700)
        self.actions = {a.objectName(): a for a in actions if a.objectName()}
        self.search = QLineEdit()
        self.search.setPlaceholderText("search commands and keys")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Menu", "Command", "Keys"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.key_edit = QKeySequenceEdit()
        self.key_edit.setToolTip("press the new key for the selected command")
        self.set_key = QPushButton("Set key")
        self.set_key.clicked.connect(self._on_set_key_clicked)
        self.clear_key = QPushButton("Remove key")
        self.clear_key.clicked.connect(lambda: self.rebind(self._selected_name(), []))
        self.reset = QPushButton("Reset all to defaults")
        self.reset.clicked.connect(self._on_reset_clicked)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self._fill()
        mapping = ", ".join(f"{d}={code}" for d, code in digit_aus(vocab).items())
        note = QLabel(
            "<b>Marking.</b> I starts a new event at the playhead, A marks its apex, O its offset "
            "and adds it (one undo step; apex defaults to the middle frame). Shift+I / A / O move "
            "the selected event's boundary to the playhead. Esc cancels a half-marked event.<br>"
            f"<b>Digit keys</b> toggle AUs on the selected event: {mapping}. The toggled AU is "
            "the <i>focused AU</i>: Alt+A..E intensity, Alt+L / R / S (both) side. <b>C</b> codes any AU "
            "by typing, e.g. 4+L12C+R14.<br>"
            "<b>Mouse.</b> Video: wheel zooms, drag pans, double-click fits. Timeline: wheel zooms "
            "time, drag pans, click seeks, drag an event's edges or apex line to edit it "
            "(one undo step on release).")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        edit_row = QHBoxLayout()
        edit_row.addWidget(QLabel("New key"))
        edit_row.addWidget(self.key_edit, 1)
        edit_row.addWidget(self.set_key)
        edit_row.addWidget(self.clear_key)
        edit_row.addWidget(self.reset)
        layout = QVBoxLayout(self)
        layout.addWidget(self.search)
        layout.addWidget(self.table, 1)
        layout.addLayout(edit_row)
        layout.addWidget(self.message)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def _fill(self) -> None:
        names = {id(a): name for name, a in self.actions.items()}
        rows = shortcut_rows(self.actions.values(), include_unbound=True)
        self.rows = [(m, c, k) for m, c, k, _a in rows if k]
        self.table.setRowCount(len(rows))
        for r, (menu, command, keys, action) in enumerate(rows):
            for c, text in enumerate((menu, command, keys)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, names.get(id(action), ""))
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        self._filter(self.search.text())

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for r in range(self.table.rowCount()):
            row_text = " ".join(self.table.item(r, c).text() for c in range(3)).lower()
            self.table.setRowHidden(r, bool(needle) and needle not in row_text)

    def visible_commands(self) -> list[str]:
        return [self.table.item(r, 1).text() for r in range(self.table.rowCount())
                if not self.table.isRowHidden(r)]

    def _selected_name(self) -> str:
        row = self.table.currentRow()
        return self.table.item(row, 0).data(Qt.ItemDataRole.UserRole) if row >= 0 else ""

    def _on_set_key_clicked(self) -> None:
        seq = self.key_edit.keySequence()
        if not seq.isEmpty():
            self.rebind(self._selected_name(), [seq.toString(QKeySequence.SequenceFormat.PortableText)])

    def rebind(self, name: str, keys: list[str]) -> bool:
        """Bind `keys` to the action `name` and store it for this user; a key another action
        holds is refused, naming that action."""
        action = self.actions.get(name)
        if action is None:
            self.message.setText("select a command first")
            return False
        wanted = {QKeySequence(k).toString(QKeySequence.SequenceFormat.PortableText) for k in keys}
        for other_name, other in self.actions.items():
            if other_name == name:
                continue
            taken = wanted & {s.toString(QKeySequence.SequenceFormat.PortableText)
                              for s in other.shortcuts()}
            if taken:
                label = (other.property("label") or other.text()).replace("&", "")
                self.message.setText(f"<b>{', '.join(sorted(taken))}</b> is already bound to "
                                     f"'{label}': remove it there first, or choose another key.")
                return False
        action.setShortcuts([QKeySequence(k) for k in keys])
        save_key(name, sorted(wanted))
        show_key_hints([action])
        label = (action.property("label") or action.text()).replace("&", "")
        self.message.setText(f"'{label}': {', '.join(sorted(wanted)) or 'no key'} (saved for you)")
        self._fill()
        return True

    def _on_reset_clicked(self) -> None:
        reset_keymap()
        for spec in ACTION_SPECS:
            if spec.name in self.actions:
                self.actions[spec.name].setShortcuts([QKeySequence(k) for k in spec.keys])
        show_key_hints(self.actions.values())
        self.message.setText("every key is back to its default")
        self._fill()


class JobStrip(QWidget):
    """A progress bar with a Cancel button for the status bar (analysis, import)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(220)
        self.bar.setTextVisible(True)
        self.cancel = QPushButton("Cancel")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel)
        self.hide()

    def show_progress(self, progress: Progress) -> None:
        self.label.setText(progress.text)
        self.bar.setRange(0, max(progress.n_total, 0))  # 0..0 is Qt's busy indicator
        self.bar.setValue(progress.n_done)
        self.show()

    def finish(self, _finished: JobDone | None = None) -> None:
        self.hide()


class ImportDialog(QDialog):
    """Pick a coding sheet, its media root and the target project; the import runs in a worker."""

    def __init__(self, session: ProjectSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.setWindowTitle("Import dataset")
        self.resize(640, 260)
        self.kind = QComboBox()
        for kind, label, _fps in IMPORT_KINDS:
            self.kind.addItem(label, kind)
        self.fps = QDoubleSpinBox()
        self.fps.setRange(0, 1000)
        self.fps.setDecimals(1)
        self.fps.setSpecialValueText("as stored / media default")
        self.fps.setToolTip("frame rate of image-folder clips (CASME II and SAMM: 200)")
        self.kind.currentIndexChanged.connect(
            lambda i: self.fps.setValue(IMPORT_KINDS[i][2] or 0))
        self.fps.setValue(IMPORT_KINDS[0][2])
        self.sheet = self._path_row("coding sheet (.xlsx / .csv)", file=True)
        self.media_root = self._path_row("folder holding the clips", file=False)
        self.project_path = self._path_row("project file to create or extend (.maus)", file=True,
                                           save=True)
        if session.project is not None:
            self.project_path[0].setText(str(session.project.path))
        self.coder = QLineEdit()
        self.coder.setPlaceholderText("coder name stored with the events (optional)")
        form = QFormLayout()
        form.addRow("Format", self.kind)
        form.addRow("Sheet", self.sheet[1])
        form.addRow("Media root", self.media_root[1])
        form.addRow("Project", self.project_path[1])
        form.addRow("Coder", self.coder)
        form.addRow("Image-folder fps", self.fps)
        self.progress = QProgressBar()
        self.progress.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox()
        self.start_button = self.buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.start_button.clicked.connect(self._on_start_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        session.import_progressed.connect(self._on_session_import_progressed)
        session.import_finished.connect(self._on_session_import_finished)
        self._running = False

    def _path_row(self, placeholder: str, file: bool, save: bool = False):
        edit = QLineEdit()
        edit.setPlaceholderText(placeholder)
        browse = QPushButton("Browse…")

        def pick():
            if not file:
                path = QFileDialog.getExistingDirectory(self, placeholder)
            elif save:
                path, _ = QFileDialog.getSaveFileName(self, placeholder, "", "Projects (*.maus)")
            else:
                path, _ = QFileDialog.getOpenFileName(self, placeholder, "",
                                                      "Coding sheets (*.xlsx *.xls *.csv);;All (*)")
            if path:
                edit.setText(path)

        browse.clicked.connect(pick)
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        layout.addWidget(browse)
        return edit, row

    def _on_start_clicked(self) -> None:
        sheet, root, project = (Path(w[0].text().strip()) for w in
                                (self.sheet, self.media_root, self.project_path))
        if not all(w[0].text().strip() for w in (self.sheet, self.media_root, self.project_path)):
            self.status.setText("fill in the sheet, the media root and the project file")
            return
        if project.suffix != ".maus":
            project = project.with_suffix(".maus")
        self._running = self.session.attempt(self.session.import_dataset, self.kind.currentData(),
                                             sheet, root, project, self.coder.text().strip(),
                                             self.fps.value() or None)
        if self._running:
            self.start_button.setEnabled(False)
            self.progress.show()
            self.progress.setRange(0, 0)
            self.status.setText("reading the sheet …")

    def _on_cancel_clicked(self) -> None:
        if self._running:
            self.session.cancel_import()
            self.status.setText("cancelling after the current batch …")
        else:
            self.reject()

    def _on_session_import_progressed(self, progress: Progress) -> None:
        self.progress.setRange(0, max(progress.n_total, 0))
        self.progress.setValue(progress.n_done)
        self.status.setText(progress.text)

    def _on_session_import_finished(self, finished: JobDone) -> None:
        self._running = False
        self.status.setText(finished.summary)
        self.start_button.setEnabled(True)
        self.progress.hide()
        if not finished.cancelled:
            self.accept()

    def done(self, result: int) -> None:  # noqa: D401 - Qt virtual
        """Closing the dialog while importing cancels the import (it never runs unattended)."""
        if self._running:
            self.session.cancel_import()
        super().done(result)

