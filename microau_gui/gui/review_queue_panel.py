"""The review queue panel: spotted candidates or suggestions, ranked, walked with single keys.

Owns: `ReviewQueuePanel`. May import PySide6 and session (the ReviewController, values). Buttons
trigger the window's QActions (J next, K previous, Y accept, X reject, see gui.actions), so a
button, its menu item and its key always do the same thing; every decision goes through
`session.review`.

One queue is active at a time (the selector on top): the keys act on it. The button beside the
selector fills the active queue (Spot this video / Suggest what to review). The table lists its
items by rank (score, highest first) with their mark; clicking a row goes to that item. An empty
queue says why and what to do (e.g. "analyse the video first" when the active model version
has no cached predictions to suggest from).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QAction, QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from microau_gui.gui.candidate_lane import STATUS_COLOURS
from microau_gui.session.messages import Progress
from microau_gui.session.review import CANDIDATES, SUGGESTIONS, ItemStatus
from microau_gui.session.session import ProjectSession
from microau_gui.session.messages import JobDone

QUEUE_TITLES = {CANDIDATES: "Spotted candidates", SUGGESTIONS: "Suggestions"}
# What the candidates queue says while it is empty: never spotted, spotting now, or spotted
# (found none, cancelled or failed). "Found N" is the queue's own count line.
SPOT_IDLE, SPOT_RUNNING, SPOT_ENDED = "idle", "running", "ended"
COLUMNS = ("#", "Mark", "Frames", "Type", "Score", "Why")
WHY = len(COLUMNS) - 1
WHY_MIN_PX = 120  # narrower, a reason would wrap to a word a line: scroll sideways instead
STATUS_TEXT = {ItemStatus.PENDING: "·", ItemStatus.ACCEPTED: "✓ accepted",
               ItemStatus.REJECTED: "✗ rejected"}


class ReviewQueuePanel(QWidget):
    """Queue selector, spotting/suggestion controls with progress, the ranked table, key buttons."""

    def __init__(self, session: ProjectSession, actions: dict[str, QAction],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.review = session.review
        self.spot_state, self.spot_text = SPOT_IDLE, ""
        self.selector = QComboBox()
        for name, title in QUEUE_TITLES.items():
            self.selector.addItem(title, name)
        self.selector.activated.connect(
            lambda i: self.review.set_active(self.selector.itemData(i)))
        self.spot_button = QPushButton("Spot this video")
        self.spot_button.setToolTip(actions["spot_video"].toolTip())
        self.spot_button.clicked.connect(actions["spot_video"].trigger)
        self.suggest_button = QPushButton("Suggest what to review")
        self.suggest_button.setToolTip("rank frames and events to check from the model's cached "
                                       "predictions (Ctrl+Shift+R)")
        self.suggest_button.clicked.connect(actions["suggest"].trigger)
        top = QHBoxLayout()
        top.addWidget(self.selector, 1)
        top.addWidget(self.spot_button)
        top.addWidget(self.suggest_button)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress_label = QLabel()
        self.progress_label.setObjectName("subtle")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.review.cancel_spotting)
        self.job_row = QWidget()
        job = QHBoxLayout(self.job_row)
        job.setContentsMargins(0, 0, 0, 0)
        job.addWidget(self.progress_label)
        job.addWidget(self.progress, 1)
        job.addWidget(self.cancel_button)
        self.job_row.hide()

        self.summary = QLabel()
        self.summary.setObjectName("paneltitle")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the window's shortcuts
        self.table.horizontalHeaderItem(2).setToolTip("onset–apex–offset, in the chosen frame "
                                                      "numbering (View > Frame numbering)")
        # Never cut: the short columns fit their contents, "Why" takes the rest of the width (at
        # least WHY_MIN_PX) and wraps, and each row grows to show its whole reason.
        header = self.table.horizontalHeader()
        for column in range(WHY):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        header.sectionResized.connect(lambda *_: self._fit_why())
        self.table.setWordWrap(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.viewport().installEventFilter(self)
        self.table.cellClicked.connect(lambda row, _col: self.review.go_to(row))
        self.current_detail = QLabel()  # the current item's whole "why", which the column cuts
        self.current_detail.setWordWrap(True)
        self.current_detail.setObjectName("subtle")

        keys = QHBoxLayout()
        keys.setSpacing(3)
        self.buttons: dict[str, QToolButton] = {}
        for name in ("review_previous", "review_next", "review_accept", "review_reject"):
            button = QToolButton()
            button.setDefaultAction(actions[name])
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            keys.addWidget(button, 1)
            self.buttons[name] = button

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.job_row)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.current_detail)
        layout.addLayout(keys)

        self.review.queue_changed.connect(self._on_review_queue_changed)
        self.review.current_changed.connect(self._on_review_current_changed)
        self.review.active_changed.connect(self._on_review_active_changed)
        self.review.spotting_progressed.connect(self._on_review_spotting_progressed)
        self.review.spotting_finished.connect(self._on_review_spotting_finished)
        session.video_opened.connect(self._on_session_video_opened)
        session.numbering.changed.connect(self.refresh)
        self.refresh()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt virtual
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_why()
        return super().eventFilter(watched, event)

    def _fit_why(self) -> None:
        header = self.table.horizontalHeader()
        used = sum(header.sectionSize(c) for c in range(WHY))
        width = max(WHY_MIN_PX, self.table.viewport().width() - used)
        if header.sectionSize(WHY) != width:
            header.resizeSection(WHY, width)
            self.table.resizeRowsToContents()

    # -- review -> panel -----------------------------------------------------------------------

    def _on_review_queue_changed(self, name: str) -> None:
        if name == self.review.active:
            self.refresh()

    def _on_review_active_changed(self, name: str) -> None:
        self.selector.setCurrentIndex(self.selector.findData(name))
        self.refresh()

    def _on_review_current_changed(self, name: str, index: int) -> None:
        if name == self.review.active:
            self.refresh()
            self.table.selectRow(index)
            self.table.scrollToItem(self.table.item(index, 0))

    def _on_review_spotting_progressed(self, progress: Progress) -> None:
        self.job_row.show()
        self.spot_button.setEnabled(False)
        self.progress.setRange(0, max(progress.n_total, 0))
        self.progress.setValue(progress.n_done)
        self.progress_label.setText("spotting")
        first = self.spot_state != SPOT_RUNNING
        self.spot_state = SPOT_RUNNING
        self.spot_text = (f"Spotting this video: frame {progress.n_done} of {progress.n_total}. "
                          "The candidates appear here when it ends.")
        if first or not self.review.queue.items:
            self.refresh()

    def _on_review_spotting_finished(self, done: JobDone) -> None:
        self.job_row.hide()
        self.spot_button.setEnabled(True)
        self.spot_state = SPOT_ENDED
        # found N: the queue's own line counts them; found none, cancelled or failed: the
        # summary says which, with the floor used and how to lower it (spotting.SpotResult)
        self.spot_text = done.summary[:1].upper() + done.summary[1:] + "."
        self.refresh()

    def _on_session_video_opened(self, _video) -> None:
        self.spot_state, self.spot_text = SPOT_IDLE, ""
        self.refresh()

    def refresh(self) -> None:
        queue = self.review.queue
        self.selector.setCurrentIndex(self.selector.findData(queue.name))
        self.spot_button.setVisible(queue.name == CANDIDATES)
        self.suggest_button.setVisible(queue.name == SUGGESTIONS)
        counts = queue.counts()
        if not queue.items:
            empty = self.review.empty_text(queue.name) or ""
            if queue.name != CANDIDATES:
                self.summary.setText(empty[:1].upper() + empty[1:] + ".")
            elif self.spot_state == SPOT_IDLE:
                self.summary.setText("Not spotted yet: spot this video (Ctrl+Shift+S).")
            else:
                self.summary.setText(self.spot_text)
        else:
            self.summary.setText(
                f"{len(queue)} {QUEUE_TITLES[queue.name].lower()} · "
                f"{counts[ItemStatus.PENDING]} to decide · {counts[ItemStatus.ACCEPTED]} accepted "
                f"· {counts[ItemStatus.REJECTED]} rejected")
        self.table.setRowCount(len(queue.items))
        for row, item in enumerate(queue.items):
            status = queue.status(row)
            score = f"{item.score:.1f}" if queue.name == CANDIDATES else f"{item.score:.2f}"
            frames = self.session.numbering.label_in(item.video_id, item.onset, item.apex,
                                                     item.offset)
            cells = (str(row + 1), STATUS_TEXT[status], frames, item.kind, score,
                     item.detail)
            colour = STATUS_COLOURS[status]
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                if item.detail:
                    cell.setToolTip(item.detail)
                if column in (0, 4):
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column == 1:
                    cell.setForeground(QBrush(colour))
                elif status is ItemStatus.REJECTED:
                    cell.setForeground(QBrush(QColor(130, 130, 138)))
                self.table.setItem(row, column, cell)
        if queue.current is not None and queue.items:
            self.table.selectRow(queue.current)
            current = queue.items[queue.current]
            self.current_detail.setText(f"#{queue.current + 1}: {current.detail}"
                                        if current.detail else "")
        else:
            self.current_detail.setText("")
