"""The inter-coder agreement view: two coders (or a coder and the model), per-AU kappa, event F1,
timing errors, CSV export.

Owns: `AgreementPanel`. May import PySide6, pyqtgraph and session (`session.agreement`); the
figures are computed in the session's agreement worker (`spotting.agreement.compare_coders`) and
only shown here. Export writes `spotting.agreement.write_agreement_csv` of the report on screen.
"""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from microau_gui.core.au import au_info
from microau_gui.core.errors import UserError
from microau_gui.core.types import DECISION_THRESHOLD
from microau_gui.session.agreement import AgreementReport, AgreementSource, fmt, write_report_csv
from microau_gui.session.session import ProjectSession

AU_COLUMNS = ("AU", "Cohen's κ", "Observed", "Frames A", "Frames B", "Frames")


class AgreementPanel(QWidget):
    """Choose A and B, Compare, read the figures, export them."""

    def __init__(self, session: ProjectSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.agreement = session.agreement
        self.report: AgreementReport | None = None
        self.sources: list[AgreementSource] = []
        self.coder_a = QComboBox()
        self.coder_b = QComboBox()
        for box in (self.coder_a, self.coder_b):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(10)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.05, 0.95)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(DECISION_THRESHOLD)
        self.threshold.setToolTip("model events: frames whose AU probability reaches this")
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Compare (Enter in this panel)")
        self.compare_button.clicked.connect(self.compare)

        self.export_button = QPushButton("Export CSV…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._on_export_clicked)
        choose = QHBoxLayout()
        choose.addWidget(QLabel("Coder A"))
        choose.addWidget(self.coder_a, 1)
        choose.addWidget(QLabel("versus B"))
        choose.addWidget(self.coder_b, 1)
        choose_more = QHBoxLayout()  # a second row: the dock fits between 1280 px side columns
        choose_more.addWidget(QLabel("model threshold"))
        choose_more.addWidget(self.threshold)
        choose_more.addStretch(1)
        choose_more.addWidget(self.compare_button)
        choose_more.addWidget(self.export_button)

        self.status = QLabel("Choose two coders (or a coder and the model) and press Compare.")
        self.status.setObjectName("subtle")
        self.status.setWordWrap(True)
        self.figures: dict[str, QLabel] = {}
        grid = QGridLayout()
        for column, (key, title) in enumerate((("mean_kappa", "mean κ (frames)"),
                                               ("event_f1", "event F1 (IoU ≥ 0.5)"),
                                               ("onset", "onset |error|"), ("apex", "apex |error|"),
                                               ("offset", "offset |error|"))):
            value = QLabel("–")
            value.setFont(QFont("DejaVu Sans", 17, QFont.Weight.Bold))
            value.setAlignment(Qt.AlignmentFlag.AlignCenter)
            caption = QLabel(title)
            caption.setObjectName("subtle")
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(value, 0, column)
            grid.addWidget(caption, 1, column)
            self.figures[key] = value
        self.events_text = QLabel()
        self.events_text.setWordWrap(True)

        self.table = QTableWidget(0, len(AU_COLUMNS))
        self.table.setHorizontalHeaderLabels(AU_COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        # Columns as wide as their contents (never cut), scrolled when the dock is narrow.
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.plot_widget = pg.PlotWidget(background=QColor(24, 24, 28))
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setYRange(-0.2, 1.0, padding=0.05)
        self.plot.getAxis("left").setLabel("κ")
        self.plot.addItem(pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(QColor(120, 120, 128))))
        self.plot.addItem(pg.InfiniteLine(pos=0.6, angle=0, pen=pg.mkPen(
            QColor(90, 170, 110), style=Qt.PenStyle.DashLine)))  # "substantial" (Landis & Koch)
        self._bars: pg.BarGraphItem | None = None
        body = QHBoxLayout()
        body.addWidget(self.table, 3)
        body.addWidget(self.plot_widget, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(choose)
        layout.addLayout(choose_more)
        layout.addWidget(self.status)
        layout.addLayout(grid)
        layout.addWidget(self.events_text)
        layout.addLayout(body, 1)

        self.agreement.computed.connect(self._on_agreement_computed)
        self.agreement.failed.connect(self._on_agreement_failed)
        session.project_opened.connect(lambda _p: self.refresh_sources())
        session.project_closed.connect(self.refresh_sources)
        session.events_changed.connect(self.refresh_sources)
        session.models_changed.connect(self.refresh_sources)
        session.review.queue_changed.connect(lambda _name: self.refresh_sources())
        self.refresh_sources()

    def refresh_sources(self) -> None:
        """Fill both selectors, keeping the current choices when they still exist."""
        keep = [box.currentData() for box in (self.coder_a, self.coder_b)]
        self.sources = self.agreement.sources()
        coders = [s for s in self.sources if s.kind == "coder"]
        for box, wanted, fallback in ((self.coder_a, keep[0], 0), (self.coder_b, keep[1], 1)):
            box.blockSignals(True)
            box.clear()
            for source in self.sources:
                box.addItem(source.label, source)
            index = box.findData(wanted) if wanted is not None else -1
            if index < 0:
                # A defaults to the first coder; B to the second coder, else the first model.
                others = coders[fallback:] + [s for s in self.sources if s.kind != "coder"]
                choice = (coders[:1] if box is self.coder_a else others[:1] or self.sources[:1])
                index = box.findData(choice[0]) if choice else -1
            box.setCurrentIndex(max(index, 0))
            box.blockSignals(False)
        self.compare_button.setEnabled(len(self.sources) >= 2)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt virtual
        """By keys: Ctrl+Shift+K puts the keys on coder A, Up/Down choose, Tab goes to B, and
        Enter compares (Space on the button is the window's play key); the selectors pass
        Enter on to here."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.compare()
            event.accept()
            return
        super().keyPressEvent(event)

    def compare(self) -> None:
        source_a, source_b = self.coder_a.currentData(), self.coder_b.currentData()
        if source_a is None or source_b is None:
            self.status.setText("this project has fewer than two coders or models to compare")
            return
        if self.session.attempt(self.agreement.compute, source_a, source_b,
                                self.threshold.value()):
            self.status.setText(f"comparing {source_a.label} with {source_b.label} …")

    def _on_agreement_failed(self, message: str) -> None:
        self.status.setText(message)

    def _on_agreement_computed(self, report: AgreementReport) -> None:
        self.report = report
        result = report.result
        ev, tm = result.events, result.timing
        self.figures["mean_kappa"].setText(fmt(result.mean_kappa))
        self.figures["event_f1"].setText(fmt(ev.f1))
        for key in ("onset", "apex", "offset"):
            value = getattr(tm, key)
            self.figures[key].setText("n/a" if math.isnan(value) else f"{value:.2f} fr")
        videos = ", ".join(report.video_names[:6]) + (" …" if len(report.video_names) > 6 else "")
        status = (f"{report.source_a.label} (A) versus {report.source_b.label} (B) on "
                  f"{len(report.video_names)} video(s) both cover: {videos}")
        if report.n_left_out:
            status += f"; {report.n_left_out} video(s) only one of them covers were left out"
        if report.source_b.kind == "model" or report.source_a.kind == "model":
            status += f"; model events: AU probability ≥ {report.threshold:.2f}"
        self.status.setText(status)
        self.events_text.setText(
            f"Events: A {result.n_events_a}, B {result.n_events_b}; matched {ev.tp} (IoU ≥ 0.5), "
            f"A only {ev.fn}, B only {ev.fp} — precision {fmt(ev.precision)}, recall "
            f"{fmt(ev.recall)}. Timing errors are mean absolute frames over {tm.n_matched} "
            f"matched events (apex over {tm.n_apex}).")
        self.table.setRowCount(len(result.per_au))
        for row, k in enumerate(result.per_au):
            cells = (k.au, fmt(k.kappa), fmt(k.observed), str(k.frames_a), str(k.frames_b),
                     str(k.n_frames))
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, column, cell)
        self._draw_bars(result.per_au)
        self.export_button.setEnabled(True)
        if not result.per_au:
            self.events_text.setText(self.events_text.text() + " No κ: one side codes no AUs "
                                     "(spotted candidates): events and timing only.")

    def _draw_bars(self, per_au) -> None:
        if self._bars is not None:
            self.plot.removeItem(self._bars)
            self._bars = None
        if not per_au:
            return
        heights = [0.0 if math.isnan(k.kappa) else k.kappa for k in per_au]
        brushes = [QColor(*au_info(k.au).colour) for k in per_au]
        self._bars = pg.BarGraphItem(x=list(range(len(per_au))), height=heights, width=0.7,
                                     brushes=brushes, pen=None)
        self.plot.addItem(self._bars)
        self.plot.getAxis("bottom").setTicks([[(i, k.au) for i, k in enumerate(per_au)], []])
        self.plot.setXRange(-0.6, len(per_au) - 0.4, padding=0)

    def export_csv(self, path: str) -> None:
        """Write the report on screen as CSV (`session.agreement.write_report_csv`)."""
        if self.report is None:
            raise UserError("compare two sources first")
        write_report_csv(self.report, path)
        self.status.setText(f"wrote {path}")

    def _on_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export agreement", "agreement.csv",
                                              "CSV (*.csv)")
        if path:
            self.session.attempt(self.export_csv, path)
