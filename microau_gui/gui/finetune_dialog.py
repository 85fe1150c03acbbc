"""Model > Fine-tune on my corrections: choose, train in the background, compare, keep or discard.

Owns: `FinetuneDialog` and its look (`EPOCH_PENS`, `FINAL_PEN`, `BLOCK_CHOICES`,
`INDICATOR_STYLE`). May import PySide6, pyqtgraph and session (the session's `finetune`
controller and its values); never torch (the training runs in the session's worker).

Two pages in one non-modal dialog, so the coder keeps working in the window meanwhile:
1. Setup: which events (the coder's own and/or accepted predictions; micro and/or macro; all of
   them or only the ones ticked in the event list), which subjects are held out (none ticked:
   leave-one-subject-out), epochs, and how many last backbone blocks train (0: the heads only,
   fast, from the token cache).
2. Run: a progress bar with the current step and Cancel, and live curves of the mean training
   loss and the held-out F1 per epoch, one line per training stage (fold). When it ends the
   progress row gives way to the before/after per-AU F1 table on the held-out subjects, under
   the curves, with Activate (the running model becomes the new version, no restart) and
   Discard (the new version is deleted; the active model is unchanged). Closing without
   choosing keeps it as an inactive version.
Cancel, or closing the dialog while it trains, stops the training: the active model and the
project are unchanged and the dialog returns to the setup page.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from microau_gui.core.errors import UserError
from microau_gui.gui import style
from microau_gui.gui.figures import figure_scope
from microau_gui.session.messages import JobDone
from microau_gui.session.session import ProjectSession

# One colour per training stage (fold); the final all-subjects stage is drawn white.
EPOCH_PENS = (QColor(90, 160, 255), QColor(255, 170, 40), QColor(70, 200, 110),
              QColor(230, 90, 200), QColor(120, 220, 230), QColor(240, 220, 80))
FINAL_PEN = QColor(235, 235, 240)
# The dark palette draws unticked check boxes of item views dark on dark: outline them.
INDICATOR_STYLE = """
QListWidget::indicator, QCheckBox::indicator { width: 12px; height: 12px; border-radius: 2px;
    border: 1px solid #8a8a94; background: #2c2c33; }
QRadioButton::indicator { width: 12px; height: 12px; border-radius: 7px;
    border: 1px solid #8a8a94; background: #2c2c33; }
QListWidget::indicator:checked, QCheckBox::indicator:checked, QRadioButton::indicator:checked {
    background: #4a86d8; border: 1px solid #a8c8ff; }
QListWidget::indicator:disabled, QCheckBox::indicator:disabled { border-color: #55555c; }
QListWidget::indicator:checked:disabled { background: #36527a; }
"""
TABLE_ROW_PX = 22
BLOCK_CHOICES = (("0 — heads only (fast, cached backbone tokens)", 0), ("last 1 block", 1),
                 ("last 2 blocks", 2), ("last 4 blocks", 4), ("the whole backbone", -1))


def _f1(value: float | None) -> str:
    """Three decimals of the value as the model card stores it (4), so the table, the card and
    the versions panel never differ in the last digit."""
    return "–" if value is None else f"{round(value, 4):.3f}"


class EpochAxis(pg.AxisItem):
    """An epoch axis: ticks on whole epochs only (1, 2, 3 ...), never 1.5."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 - pyqtgraph virtual
        levels = []
        for spacing, values in super().tickValues(minVal, maxVal, size):
            whole = [v for v in values if spacing >= 1 and float(v).is_integer()]
            if whole:
                levels.append((spacing, whole))
        return levels or [(1.0, [float(v) for v in range(int(minVal) + 1, int(maxVal) + 1)])]


class FinetuneDialog(QDialog):
    """Setup, then live training curves and the before/after table with Activate / Discard."""

    SETUP, RUN = 0, 1  # pages

    def __init__(self, session: ProjectSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.finetune = session.finetune
        self.done_result: JobDone | None = None
        self.decided = False
        self.curves: dict[tuple[str, int], pg.PlotDataItem] = {}  # (kind, stage) -> curve
        self.points: dict[tuple[str, int], list[tuple[int, float]]] = {}
        model = session.model
        self.setWindowTitle("Fine-tune on my corrections — "
                            + (model.model_version if model is not None else "no model"))
        self.setStyleSheet(INDICATOR_STYLE)
        self.resize(940, 800)
        self.pages = QStackedWidget()
        self.pages.addWidget(self._setup_page())
        self.pages.addWidget(self._run_page())
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        self.finetune.progressed.connect(self._on_finetune_progressed)
        self.finetune.finished.connect(self._on_finetune_finished)
        self._refresh_events()
        style.restyle_plots(self)  # the curves follow the theme chosen before it opened

    # -- 1. setup ------------------------------------------------------------------------------

    def _setup_page(self) -> QWidget:
        page = QWidget()
        model = self.session.model
        intro = QLabel(
            f"Fine-tune <b>{model.model_version if model else '(no model)'}</b> on this project's "
            "coded events. Training reads a snapshot of the events taken when you press Start; "
            "the model in use stays as it is until you activate the new version.")
        intro.setWordWrap(True)
        self.use_expert = QCheckBox("the coder's own events")
        self.use_accepted = QCheckBox("accepted predictions")
        self.use_micro = QCheckBox("micro-expressions")
        self.use_macro = QCheckBox("macro-expressions")
        for box in (self.use_expert, self.use_accepted, self.use_micro):
            box.setChecked(True)
        sources = QHBoxLayout()
        for box in (self.use_expert, self.use_accepted, self.use_micro, self.use_macro):
            box.toggled.connect(self._refresh_events)
            sources.addWidget(box)
        sources.addStretch(1)
        self.all_events = QRadioButton("all of them")
        self.ticked_events = QRadioButton("only the events ticked below")
        self.all_events.setChecked(True)
        self.all_events.toggled.connect(self._on_scope_toggled)
        scope = QHBoxLayout()
        scope.addWidget(self.all_events)
        scope.addWidget(self.ticked_events)
        scope.addStretch(1)
        self.event_list = QListWidget()
        self.event_list.setMinimumHeight(110)
        self.event_list.setEnabled(False)
        self.event_list.itemChanged.connect(lambda _item: self._refresh_subjects())
        self.event_count = QLabel()
        self.event_count.setObjectName("subtle")
        self.holdout = QListWidget()
        holdout_note = QLabel("The before/after scores are measured on the ticked subjects. None "
                              "ticked: leave-one-subject-out (one fold per subject), then a "
                              "final model trained on every subject.")
        holdout_note.setObjectName("subtle")
        holdout_note.setWordWrap(True)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 500)
        self.epochs.setValue(20)
        self.blocks = QComboBox()
        for text, value in BLOCK_CHOICES:
            self.blocks.addItem(text, value)
        self.name = QLineEdit(self.finetune.default_name())
        self.name.setToolTip("the new version's name; its checkpoint goes to the project's "
                             "weights/ folder")
        events_box = QVBoxLayout()
        events_box.addWidget(self.event_list, 1)
        events_box.addWidget(self.event_count)
        holdout_box = QVBoxLayout()
        holdout_box.addWidget(self.holdout)
        holdout_box.addWidget(holdout_note)
        form = QGridLayout()  # a grid, so only the event list row takes the spare height
        rows = (("Events", sources), ("Use", scope), ("", events_box),
                ("&Held-out subjects", holdout_box), ("E&pochs", self.epochs),
                ("&Backbone blocks to train", self.blocks), ("&New version", self.name))
        # mnemonics (Alt+H, Alt+P, Alt+B, Alt+N) put the keys on a field: set up by keys only
        buddies = {"&Held-out subjects": self.holdout}
        for row, (text, field) in enumerate(rows):
            tall = field in (events_box, holdout_box)
            label = QLabel(text)
            buddy = buddies.get(text, field)
            if isinstance(buddy, QWidget):
                label.setBuddy(buddy)
            form.addWidget(label, row, 0, Qt.AlignmentFlag.AlignLeft | (
                Qt.AlignmentFlag.AlignTop if tall else Qt.AlignmentFlag.AlignVCenter))
            (form.addLayout if isinstance(field, QLayout) else form.addWidget)(field, row, 1)
        form.setRowStretch(2, 1)
        form.setColumnStretch(1, 1)
        self.setup_status = QLabel()
        self.setup_status.setWordWrap(True)
        self.start_button = QPushButton("&Start fine-tuning")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.setup_status, 1)
        buttons.addWidget(close)
        buttons.addWidget(self.start_button)
        layout = QVBoxLayout(page)
        layout.addWidget(intro)
        layout.addLayout(form, 1)
        layout.addLayout(buttons)
        return page

    def _selection(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        sources = tuple(s for s, box in (("expert", self.use_expert),
                                         ("accepted", self.use_accepted)) if box.isChecked())
        kinds = tuple(k for k, box in (("micro", self.use_micro), ("macro", self.use_macro))
                      if box.isChecked())
        return sources, kinds

    def selected_event_ids(self) -> tuple[int, ...] | None:
        """The ticked events, or None when all events of the chosen sources and types train."""
        if self.all_events.isChecked():
            return None
        return tuple(self.event_list.item(i).data(Qt.ItemDataRole.UserRole)
                     for i in range(self.event_list.count())
                     if self.event_list.item(i).checkState() == Qt.CheckState.Checked)

    def _on_scope_toggled(self) -> None:
        self.event_list.setEnabled(self.ticked_events.isChecked())
        self._refresh_subjects()

    def _refresh_events(self) -> None:
        """Refill the event list for the chosen sources and types, keeping the ticks."""
        ticked = set(self.selected_event_ids() or ()) if self.event_list.count() else None
        self.event_list.blockSignals(True)
        self.event_list.clear()
        for event, subject in self.finetune.trainable_events(*self._selection()):
            frames = self.session.numbering.label_in(event.video_id, event.onset, event.offset)
            item = QListWidgetItem(f"{subject} · event {event.id} · frames {frames}"
                                   f" · AU {event.aus_text or '–'} · "
                                   f"{event.source}")
            item.setData(Qt.ItemDataRole.UserRole, event.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            on = ticked is None or event.id in ticked
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.event_list.addItem(item)
        self.event_list.blockSignals(False)
        self._refresh_subjects()

    def _refresh_subjects(self) -> None:
        ticked = set(self.held_out())
        counts = self.finetune.subjects(*self._selection(), self.selected_event_ids())
        self.holdout.clear()
        for subject, n in counts.items():
            item = QListWidgetItem(f"{subject}  ({n} events)")
            item.setData(Qt.ItemDataRole.UserRole, subject)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if subject in ticked
                               else Qt.CheckState.Unchecked)
            self.holdout.addItem(item)
        rows_px = self.holdout.sizeHintForRow(0) * min(max(len(counts), 1), 6) if counts else 20
        self.holdout.setFixedHeight(rows_px + 2 * self.holdout.frameWidth() + 4)
        total = sum(counts.values())
        self.event_count.setText(f"{total} events from {len(counts)} subjects selected")
        self.start_button.setEnabled(total > 0 and self.session.model is not None)

    def held_out(self) -> list[str]:
        return [self.holdout.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.holdout.count())
                if self.holdout.item(i).checkState() == Qt.CheckState.Checked]

    def start(self) -> None:
        sources, kinds = self._selection()
        try:
            self.finetune.start(sources=sources, expression_types=kinds,
                                event_ids=self.selected_event_ids(),
                                holdout=tuple(self.held_out()), epochs=self.epochs.value(),
                                train_blocks=self.blocks.currentData(), name=self.name.text())
        except UserError as err:
            self.setup_status.setText(f"<span style='color:#ff9a9a'>{err}</span>")
            return
        self.setup_status.setText("")
        self._clear_curves()
        self.done_result = None
        self.decided = False
        self.result_box.hide()
        self.progress_row.show()
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.message.setText("preparing the training pairs …")
        self.pages.setCurrentIndex(self.RUN)

    # -- 2. run: progress, curves, then the result ---------------------------------------------

    def _run_page(self) -> QWidget:
        page = QWidget()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("%p%")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("stop training; the active model and the project stay as "
                                      "they are")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.progress_row = QWidget()
        row = QVBoxLayout(self.progress_row)
        row.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.cancel_button)
        row.addLayout(bar)
        row.addWidget(self.message)
        self.loss_plot = self._plot("mean training loss per epoch", "loss")
        self.loss_plot.getPlotItem().addLegend(offset=(-8, 8), labelTextSize="8pt")
        self.f1_plot = self._plot("held-out mean F1 per epoch (colours as on the left)", "F1")
        self.f1_plot.setYRange(0, 1.05, padding=0)
        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.f1_plot)
        layout = QVBoxLayout(page)
        layout.addWidget(self.progress_row)
        layout.addLayout(plots, 2)
        self.result_box = self._result_box()
        self.result_box.hide()
        layout.addWidget(self.result_box, 3)
        return page

    def _plot(self, title: str, label: str) -> pg.PlotWidget:
        widget = pg.PlotWidget(background=QColor(24, 24, 28),
                               axisItems={"bottom": EpochAxis(orientation="bottom")})
        widget.setMinimumHeight(180)
        plot = widget.getPlotItem()
        plot.setTitle(title, color="#d8d8dc", size="10pt")
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.getAxis("bottom").setLabel("epoch")
        plot.getAxis("left").setLabel(label)
        plot.getAxis("left").enableAutoSIPrefix(False)  # a loss of 0.2 reads 0.2, not 200 x 0.001
        return widget

    def _clear_curves(self) -> None:
        for (kind, _stage), curve in self.curves.items():
            plot = (self.loss_plot if kind == "loss" else self.f1_plot).getPlotItem()
            plot.removeItem(curve)
            if plot.legend is not None:
                plot.legend.removeItem(curve)
        self.curves.clear()
        self.points.clear()

    def _on_finetune_progressed(self, progress) -> None:
        self.progress.setValue(int(round(1000 * progress.fraction)))
        self.message.setText(progress.message)
        if not progress.epoch_end:
            return
        self._add_point("loss", progress, progress.loss)
        if progress.val_f1 is not None:
            self._add_point("f1", progress, progress.val_f1)

    def _add_point(self, kind: str, progress, value: float) -> None:
        key = (kind, progress.stage_index)
        points = self.points.setdefault(key, [])
        points.append((progress.epoch, float(value)))
        curve = self.curves.get(key)
        if curve is None:
            final = progress.stage.startswith("final")
            colour = FINAL_PEN if final else EPOCH_PENS[progress.stage_index % len(EPOCH_PENS)]
            plot = (self.loss_plot if kind == "loss" else self.f1_plot).getPlotItem()
            curve = plot.plot(pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5,
                              symbolBrush=colour, symbolPen=None,
                              name=progress.stage if kind == "loss" else None)
            self.curves[key] = curve
        curve.setData([p[0] for p in points], [p[1] for p in points])

    def _on_cancel_clicked(self) -> None:
        self.finetune.cancel()
        self.message.setText("cancelling after the current step …")
        self.cancel_button.setEnabled(False)

    def _result_box(self) -> QWidget:
        box = QWidget()
        self.headline = QLabel()
        self.headline.setFont(QFont("DejaVu Sans", 12, QFont.Weight.Bold))
        self.headline.setWordWrap(True)
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setObjectName("subtle")
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["AU", "F1 before", "F1 after", "change", "support"])
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(TABLE_ROW_PX)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.activate_button = QPushButton("&Activate")
        self.activate_button.setToolTip("run the new version now (the current one stays "
                                        "selectable: roll back any time)")
        self.activate_button.clicked.connect(self._on_activate_clicked)
        self.activate_button.setDefault(True)
        self.discard_button = QPushButton("&Discard")
        self.discard_button.setToolTip("delete the new version; the active model is unchanged")
        self.discard_button.clicked.connect(self._on_discard_clicked)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        self.result_status = QLabel()
        self.result_status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.result_status, 1)
        buttons.addWidget(self.discard_button)
        buttons.addWidget(self.activate_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.headline)
        layout.addWidget(self.details)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        return box

    def _on_finetune_finished(self, done: JobDone) -> None:
        self.done_result = done
        if done.result is None:
            self.pages.setCurrentIndex(self.SETUP)
            self.setup_status.setText(done.summary)
            self.cancel_button.setEnabled(True)
            self.name.setText(self.finetune.default_name())
            self._refresh_events()
            return
        result = done.result.report
        self.progress_row.hide()
        self.result_box.show()
        before, after = result.before.mean_f1, result.after.mean_f1
        short, long = figure_scope(result.card.metrics)
        self.headline.setText(f"{result.card.name}: mean F1 {_f1(before)} → {_f1(after)} "
                              f"({round(after, 4) - round(before, 4):+.3f}), {short}")
        self.headline.setToolTip(long)
        if result.protocol == "holdout":
            how = (f"Held out: {', '.join(result.holdout_subjects)}; the new version never saw "
                   "them.")
        else:
            how = ("Leave-one-subject-out over " + ", ".join(result.holdout_subjects) + ": "
                   "'after' pools each fold's model on its left-out subject; the saved version "
                   "was then trained on every subject.")
        notes = [how, f"Measured {long}.", f"{result.n_pairs} of {result.n_events} events used, "
                      f"{result.seconds:.1f} s."]
        if result.parent_seen_subjects:
            notes.append("The parent was trained on " + ", ".join(result.parent_seen_subjects)
                         + ": its 'before' there is optimistic.")
        if result.skipped:
            notes.append(f"{len(result.skipped)} events could not be used (e.g. event "
                         f"{result.skipped[0][0]}: {result.skipped[0][1]}).")
        if result.out_of_vocab:
            notes.append("Coded AUs the model does not predict: " + ", ".join(
                f"{code} ({n})" for code, n in result.out_of_vocab.items()) + ".")
        self.details.setText(" ".join(notes))
        rows = result.per_au()
        self.table.setRowCount(len(rows) + 1)
        # Every AU visible without scrolling: the table is what the coder decides on.
        self.table.setMinimumHeight(self.table.horizontalHeader().height()
                                    + TABLE_ROW_PX * (len(rows) + 1) + 2 * self.table.frameWidth())
        for row, (code, f1_before, f1_after, support) in enumerate(rows):
            change = (None if f1_before is None or f1_after is None
                      else round(f1_after, 4) - round(f1_before, 4))
            self._set_row(row, code, f1_before, f1_after, change, str(support))
        self._set_row(len(rows), "mean", before, after, round(after, 4) - round(before, 4), "")
        bold = QFont()
        bold.setBold(True)
        for column in range(5):
            self.table.item(len(rows), column).setFont(bold)
        self.activate_button.setEnabled(True)
        self.discard_button.setEnabled(True)
        self.result_status.setText("")

    def _set_row(self, row: int, code: str, before, after, change, support: str) -> None:
        cells = (code, _f1(before), _f1(after),
                 "–" if change is None else f"{change:+.3f}", support)
        for column, text in enumerate(cells):
            cell = QTableWidgetItem(text)
            cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            if column == 3 and change is not None and abs(change) >= 0.0005:
                cell.setForeground(QBrush(QColor(110, 220, 130) if change > 0
                                          else QColor(255, 120, 120)))
            self.table.setItem(row, column, cell)

    def _on_activate_clicked(self) -> None:
        if self.session.attempt(self.finetune.activate, self.done_result):
            self.decided = True
            self.activate_button.setEnabled(False)
            self.discard_button.setEnabled(False)
            self.result_status.setText(f"loading {self.done_result.result.report.card.name} …; the "
                                       "previous version stays in Model versions (roll back)")

    def _on_discard_clicked(self) -> None:
        if self.session.attempt(self.finetune.discard, self.done_result):
            self.decided = True
            self.activate_button.setEnabled(False)
            self.discard_button.setEnabled(False)
            self.result_status.setText(f"{self.done_result.result.report.card.name} discarded")

    def done(self, result: int) -> None:  # noqa: D401 - Qt virtual
        """Closing while training cancels it; closing undecided keeps an inactive version."""
        if self.finetune.running:
            self.finetune.cancel()
        elif self.done_result is not None and self.done_result.result is not None \
                and not self.decided:
            self.session.status_posted.emit(
                f"{self.done_result.result.report.card.name} kept as an inactive version: activate it "
                "in Model > Model versions")
        super().done(result)
