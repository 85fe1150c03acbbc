"""Comparison traces in the window: other tools' AU traces drawn in the timeline's AU lanes
beside our model's, and a panel that toggles each source and shows its values at the playhead.

Owns: `ComparisonLanes` (draws into a TimelineView's plot), `ComparisonPanel` (the toggles and
the per-AU table), `display_values`, the trace pens. May import PySide6, pyqtgraph, numpy, core
and session values. Nothing here edits the project.

What a lane shows per trace (its values are never scaled into something they are not):
a probability channel as is (py-feat; iMotions through the documented logistic), else OpenFace
intensity divided by 5 (0-5 -> the lane's height), else the 0/1 presence. Drawn dashed, one
colour per source, in the AU lanes of the model vocabulary; AUs the model has no lane for are
listed in the panel only. Masked frames are gaps.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from microau_gui.core.au import au_number
from microau_gui.session.interchange import InterchangeController

TRACE_COLOURS = (QColor(255, 255, 255), QColor(120, 220, 255), QColor(255, 170, 200),
                 QColor(200, 255, 140))
FIRST_AU_LANE = 2  # the timeline's first AU lane (gui.timeline_view)


def display_values(trace) -> tuple[str, tuple[str, ...], np.ndarray]:
    """(what it shows, AUs, (n, n_au) values in 0..1 for drawing) of a comparison trace."""
    channels = trace.channels
    if "probability" in channels:
        aus, values = trace.channel("probability")
        return "probability", aus, values
    if "intensity" in channels:
        aus, values = trace.channel("intensity")
        return "intensity / 5", aus, values / 5.0
    aus, values = trace.channel("presence")
    return "presence", aus, values


class ComparisonLanes:
    """Dashed per-source lines in the AU lanes of a TimelineView (vocabulary order)."""

    def __init__(self, timeline, controller: InterchangeController):
        self.timeline = timeline
        self.controller = controller
        self.hidden: set[str] = set()  # trace names switched off
        self.items: dict[tuple[str, str], pg.PlotDataItem] = {}  # (trace name, AU) -> line
        session = timeline.session
        # Connected after the timeline's own slots, so its lanes exist when these redraw.
        session.video_opened.connect(lambda _video: self.refresh())
        session.model_loaded.connect(lambda _loaded: self.refresh())
        controller.traces_changed.connect(self.refresh)

    def set_visible(self, name: str, visible: bool) -> None:
        (self.hidden.discard if visible else self.hidden.add)(name)
        self.refresh()

    def refresh(self) -> None:
        plot = self.timeline.plot
        for item in self.items.values():
            plot.removeItem(item)
        self.items = {}
        vocab = self.timeline.vocab
        for k, trace in enumerate(self.controller.traces()):
            if trace.name in self.hidden:
                continue
            _, aus, values = display_values(trace)
            colour = TRACE_COLOURS[k % len(TRACE_COLOURS)]
            x = trace.frame_idx.astype(np.float64)
            for column, au in enumerate(aus):
                if au not in vocab:
                    continue
                bottom = vocab.index(au) + FIRST_AU_LANE + 1
                line = pg.PlotDataItem(pen=pg.mkPen(colour, width=1.2,
                                                    style=Qt.PenStyle.DashLine))
                line.setZValue(28)  # under our model's trace (30)
                line.setClipToView(True)
                line.setDownsampling(auto=True, method="peak")
                line.setToolTip(f"{trace.tool}: {trace.name}")
                plot.addItem(line)  # before setData: clipping needs the view it lives in
                line.setData(x, bottom - 0.1 - 0.8 * np.clip(values[:, column], 0, 1),
                             connect="finite")
                self.items[(trace.name, au)] = line


class ComparisonPanel(QWidget):
    """One checkbox per comparison source and a table of their values at the playhead."""

    toggled = Signal(str, bool)  # (trace name, visible)

    def __init__(self, session, controller: InterchangeController, lanes: ComparisonLanes,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.controller = controller
        self.lanes = lanes
        self.boxes: dict[str, QCheckBox] = {}
        self.note = QLabel("No comparison traces for this video. File > Import an OpenFace, "
                           "iMotions or py-feat file to draw it beside the model.")
        self.note.setWordWrap(True)
        self.box_row = QHBoxLayout()
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addLayout(self.box_row)
        layout.addWidget(self.table, 1)
        controller.traces_changed.connect(self.rebuild)
        session.position_changed.connect(self._on_session_position_changed)
        self.rebuild()

    def rebuild(self) -> None:
        for box in self.boxes.values():
            self.box_row.removeWidget(box)
            box.deleteLater()
        self.boxes = {}
        traces = self.controller.traces()
        self.note.setVisible(not traces)
        for trace in traces:
            box = QCheckBox(f"{trace.tool}: {trace.name}")
            box.setChecked(trace.name not in self.lanes.hidden)
            box.toggled.connect(lambda on, name=trace.name: self._on_box_toggled(name, on))
            self.box_row.addWidget(box)
            self.boxes[trace.name] = box
        self._fill(self.session.frame_idx if self.session.video is not None else 0)

    def _on_box_toggled(self, name: str, on: bool) -> None:
        self.lanes.set_visible(name, on)
        self.toggled.emit(name, on)
        self._fill(self.session.frame_idx if self.session.video is not None else 0)

    def _on_session_position_changed(self, frame_idx: int) -> None:
        if self.isVisible():
            self._fill(frame_idx)

    def _fill(self, frame_idx: int) -> None:
        traces = [t for t in self.controller.traces() if t.name not in self.lanes.hidden]
        aus = sorted({au for t in traces for au in t.aus}, key=au_number)
        self.table.setColumnCount(1 + len(traces))
        self.table.setHorizontalHeaderLabels(
            ["AU", *(f"{t.name}\n{display_values(t)[0]}" for t in traces)])
        self.table.setRowCount(len(aus))
        # One binary search per trace and playhead move (frame_idx is ascending), not per cell.
        rows = []
        for trace in traces:
            i = int(np.searchsorted(trace.frame_idx, frame_idx))
            found = i < len(trace.frame_idx) and trace.frame_idx[i] == frame_idx
            rows.append(i if found else None)
        for row, au in enumerate(aus):
            self.table.setItem(row, 0, QTableWidgetItem(au))
            for col, (trace, i) in enumerate(zip(traces, rows), 1):
                self.table.setItem(row, col, QTableWidgetItem(_value_text(trace, au, i)))


def _value_text(trace, au: str, row: int | None) -> str:
    """The trace's raw values of `au` at one of its rows, in their own units; '' without a row,
    'masked' where the tool masked the frame."""
    if row is None:
        return ""
    texts = []
    for channel in trace.channels:
        key = (channel, au)
        if key in trace.values:
            value = float(trace.values[key][row])
            texts.append("masked" if math.isnan(value) else f"{channel} {value:.2f}")
    return "masked" if texts and all(t == "masked" for t in texts) else \
        ", ".join(t for t in texts if t != "masked")
