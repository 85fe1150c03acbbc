"""The event table: every event of the open video in a sortable, editable table.

Owns: `EventTablePanel`, `COLUMNS`. May import PySide6, core and session; every edit is a
`ProjectSession` call, i.e. an undoable store command (one undo step per edited cell, one for a
multi-row delete).

Columns (issue 16, what ELAN's and BORIS's event lists show): event id, AUs (FACS string with
side and intensity), onset, apex, offset, duration in frames and in ms, emotion, coder, source,
blind. The AUs come second, so a narrow dock still shows them; a string longer than its column
is elided ("4+L12C+…") and its tooltip has the whole of it. Onset, apex, offset, AUs and emotion
are edited in place (double-click or F2); a value the store refuses (apex before onset, an AU
string the parser cannot read) is reported on the status line and the cell shows the stored
value again. Enter jumps to the row's event (selects it and seeks its onset); Delete removes
every selected row (the window routes its Delete key here while the table has the keys).
Clicking a header sorts by it (numbers as numbers). In blind coding mode only the current
coder's events are listed.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from microau_gui.core.aus import parse_au_string
from microau_gui.session.session import ProjectSession

COLUMNS = ("event", "AUs", "onset", "apex", "offset", "frames", "ms", "emotion", "coder",
           "source", "blind")
EDITABLE = ("onset", "apex", "offset", "AUs", "emotion")
AUS_WIDTH_TEXT = "R12C+L14B+25+26"  # the AUs column's starting width; longer strings are elided


class EventTablePanel(QWidget):
    """Events of the open video, one row each."""

    def __init__(self, session: ProjectSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self._filling = False
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("event_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                   | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.verticalHeader().hide()
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setWordWrap(False)  # a long AU string is elided on one line, not wrapped
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # A fixed starting width the user can drag: sized to its contents, one long string would
        # push every other column out of a narrow dock.
        aus = COLUMNS.index("AUs")
        header.setSectionResizeMode(aus, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(
            aus, QFontMetrics(self.table.font()).horizontalAdvance(AUS_WIDTH_TEXT) + 12)
        header.setStretchLastSection(True)
        self.table.itemChanged.connect(self._on_table_item_changed)
        self.table.activated.connect(self._on_table_activated)
        hint = QLabel("Enter: go to the event · F2: edit the cell · Delete: delete the selected "
                      "rows · click a header to sort")
        hint.setObjectName("keyhint")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table, 1)
        layout.addWidget(hint)
        session.events_changed.connect(self.refresh)
        session.video_opened.connect(lambda _v: self.refresh())
        session.coder.blind_changed.connect(lambda _on: self.refresh())
        session.coder.changed.connect(lambda _name: self.refresh())
        session.numbering.changed.connect(self.refresh)
        self.refresh()

    def event_id_of_row(self, row: int) -> int:
        return int(self.table.item(row, 0).data(Qt.ItemDataRole.EditRole))

    def shown_event_ids(self) -> list[int]:
        """Event ids in the table's current (sorted) row order."""
        return [self.event_id_of_row(row) for row in range(self.table.rowCount())]

    def selected_event_ids(self) -> list[int]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.event_id_of_row(row) for row in rows]

    def refresh(self) -> None:
        events = self.session.events
        if self.session.coder.blind:
            events = [e for e in events if e.coder == self.session.coder.name]
        fps = self.session.fps or 0.0
        frames = self.session.frames  # onset / apex / offset in the chosen numbering
        self._filling = True
        self.table.setSortingEnabled(False)  # filling a sorted table moves rows under our feet
        self.table.setRowCount(len(events))
        for row, event in enumerate(events):
            ms = round(1000 * event.n_frames / fps) if fps > 0 else ""
            values = (event.id, event.aus_text, frames.number(event.onset),
                      frames.number(event.apex), frames.number(event.offset), event.n_frames, ms,
                      event.emotion or "", event.coder, event.source,
                      "yes" if event.blind else "")
            for column, value in enumerate(values):
                item = QTableWidgetItem()
                item.setData(Qt.ItemDataRole.EditRole, value)  # ints sort as numbers
                if COLUMNS[column] == "AUs" and value:
                    item.setToolTip(value)  # the whole string, however narrow the column
                flags = item.flags() & ~Qt.ItemFlag.ItemIsEditable
                if COLUMNS[column] in EDITABLE and self.session.editable:
                    flags |= Qt.ItemFlag.ItemIsEditable
                item.setFlags(flags)
                self.table.setItem(row, column, item)
        self.table.setSortingEnabled(True)
        self._filling = False

    def _on_table_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling:
            return
        column = COLUMNS[item.column()]
        event_id = self.event_id_of_row(item.row())
        text = str(item.data(Qt.ItemDataRole.EditRole)).strip()
        if column in ("onset", "apex", "offset"):
            try:
                # a typed number in the chosen numbering (one in a gap: the nearest frame)
                fields = {column: self.session.frames.frame_of(int(text))}
            except ValueError:
                self.session.status_posted.emit(f"{column} must be a frame number, not {text!r}")
                self.refresh()
                return
        elif column == "AUs":
            parsed = parse_au_string(text)
            if not parsed.ok:
                problems = "; ".join(f"'{token}': {why}" for token, why in parsed.unparsed)
                self.session.status_posted.emit(f"AUs not changed: {problems}")
                self.refresh()
                return
            fields = {"aus": parsed.codes}
        else:
            fields = {"emotion": text or None}
        if not self.session.edit_event(event_id, **fields):
            self.refresh()  # refused (reported by the session): show the stored value again

    def _on_table_activated(self, index) -> None:
        self.session.select_event(self.event_id_of_row(index.row()))

    def delete_selected(self) -> bool:
        """Delete every selected row's event (one undo step); False when none is selected."""
        ids = self.selected_event_ids()
        return bool(ids) and self.session.delete_events(ids)
