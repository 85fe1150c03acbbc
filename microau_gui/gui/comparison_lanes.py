"""Comparison traces in the window: other tools' AU traces drawn in the timeline's AU lanes
beside our model's, and the AU panel's header that toggles each source.

Owns: `ComparisonLanes` (draws into a TimelineView's plot), `ComparisonSources` (the per-source
toggles in the AU panel's header, and the sources' values per AU at a frame, which the AU panel
writes beside each AU row), `display_values`, the trace pens. May import PySide6, pyqtgraph,
numpy, core and session values. Nothing here edits the project.

What a lane shows per trace (its values are never scaled into something they are not):
a probability channel as is (py-feat; iMotions through the documented logistic), else OpenFace
intensity divided by 5 (0-5 -> the lane's height), else the 0/1 presence. Drawn dashed, one
colour per source, in the AU lanes of the model vocabulary; AUs the model has no lane for are
listed in the AU panel only. Masked frames are gaps. The AU panel writes the same value in the
source's units ("0.63", "2.3/5", "on"), in the source's colour, with every channel of the
source in its tooltip.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QWidget

from microau_gui.core.au import au_number
from microau_gui.gui import style
from microau_gui.session.interchange import InterchangeController

# One colour per source, in the order of the video's traces: on the dark theme's plots and on
# the light theme's (the first is the theme's text colour, the rest stay apart from the AU colours
# of the model's own traces by being dashed).
TRACE_COLOURS = {
    "dark": (QColor(255, 255, 255), QColor(120, 220, 255), QColor(255, 170, 200),
             QColor(200, 255, 140)),
    "light": (QColor(30, 30, 36), QColor(0, 110, 180), QColor(190, 30, 110), QColor(60, 130, 20)),
}
# The channel an AU row shows, the lanes' order (an AU missing there falls back to the next).
SHORT_CHANNELS = ("probability", "intensity", "presence", "evidence")


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
        self.blind = False  # blind coding mode: no other tool's output either
        self.items: dict[tuple[str, str], pg.PlotDataItem] = {}  # (trace name, AU) -> line
        session = timeline.session
        # Connected after the timeline's own slots, so its lanes exist when these redraw.
        session.video_opened.connect(lambda _video: self.refresh())
        session.model_loaded.connect(lambda _loaded: self.refresh())
        controller.traces_changed.connect(self.refresh)
        # A coder tier shown or hidden moves the AU lanes.
        timeline.lanes_changed.connect(self.refresh)

    def set_visible(self, name: str, visible: bool) -> None:
        (self.hidden.discard if visible else self.hidden.add)(name)
        self.refresh()

    def refresh(self) -> None:
        plot = self.timeline.plot
        for item in self.items.values():
            plot.removeItem(item)
        self.items = {}
        if self.blind:
            return
        vocab = self.timeline.vocab
        for k, trace in enumerate(self.controller.traces()):
            if trace.name in self.hidden:
                continue
            _, aus, values = display_values(trace)
            colour = trace_colour(k)
            x = trace.frame_idx.astype(np.float64)
            for column, au in enumerate(aus):
                if au not in vocab:
                    continue
                line = pg.PlotDataItem(pen=pg.mkPen(colour, width=1.2,
                                                    style=Qt.PenStyle.DashLine))
                line.setZValue(28)  # under our model's trace (30)
                line.setClipToView(True)
                line.setDownsampling(auto=True, method="peak")
                line.setToolTip(f"{trace.tool}: {trace.name}")
                plot.addItem(line)  # before setData: clipping needs the view it lives in
                line.setData(x, self.timeline.value_y(vocab.index(au),
                                                      np.clip(values[:, column], 0, 1)),
                             connect="finite")
                self.items[(trace.name, au)] = line


class ComparisonSources(QWidget):
    """The AU panel's comparison header: one checkbox per source of the open video, in the
    colour of its dashed lanes, and the sources' values per AU at a frame (`at`)."""

    changed = Signal()  # a source was switched on or off, or the video's sources changed

    def __init__(self, controller: InterchangeController, lanes: ComparisonLanes,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.lanes = lanes
        self.boxes: dict[str, QCheckBox] = {}
        self._recolouring = False
        self.box_row = QHBoxLayout(self)
        self.box_row.setContentsMargins(0, 0, 0, 0)
        title = QLabel("Compare:")
        title.setToolTip("other tools' AU output (File > Import): dashed in the timeline, "
                         "and its value at the playhead beside each AU")
        self.box_row.addWidget(title)
        self.box_row.addStretch(1)
        controller.traces_changed.connect(self.rebuild)
        self.rebuild()

    def rebuild(self) -> None:
        for box in self.boxes.values():
            self.box_row.removeWidget(box)
            box.deleteLater()
        self.boxes = {}
        traces = self.controller.traces()
        for k, trace in enumerate(traces):
            box = QCheckBox(f"{trace.tool}: {trace.name}")
            box.setStyleSheet(f"color: {_colour(k)};")
            box.setToolTip(f"{trace.file}: {', '.join(trace.channels)} of {len(trace.aus)} AUs; "
                           f"shown as {display_values(trace)[0]}")
            box.setChecked(trace.name not in self.lanes.hidden)
            box.toggled.connect(lambda on, name=trace.name: self._on_box_toggled(name, on))
            self.box_row.insertWidget(self.box_row.count() - 1, box)
            self.boxes[trace.name] = box
        self.setVisible(bool(traces))
        self.changed.emit()

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt virtual
        super().changeEvent(event)
        # The theme changed (gui.view_menu sets the application palette): recolour the boxes
        # and the dashed lanes, which are drawn in the theme's trace colours.
        if event.type() == QEvent.Type.PaletteChange and not self._recolouring:
            self._recolouring = True
            try:
                self.rebuild()
                self.lanes.refresh()
            finally:
                self._recolouring = False

    def _on_box_toggled(self, name: str, on: bool) -> None:
        self.lanes.set_visible(name, on)
        self.changed.emit()

    def at(self, frame_idx: int) -> dict[str, list[tuple[str, str, str]]]:
        """AU -> [(colour, short value, full text)] of the sources switched on, at a frame."""
        out: dict[str, list[tuple[str, str, str]]] = {}
        for k, trace in enumerate(self.controller.traces()):
            if trace.name in self.lanes.hidden:
                continue
            # One binary search per trace and frame (frame_idx is ascending), not per AU.
            i = int(np.searchsorted(trace.frame_idx, frame_idx))
            row = i if i < len(trace.frame_idx) and trace.frame_idx[i] == frame_idx else None
            for au in trace.aus:
                channel = next(c for c in SHORT_CHANNELS if (c, au) in trace.values)
                short = "" if row is None else _short(channel, float(trace.values[(channel, au)][row]))
                full = f"{trace.tool} {trace.name}: {_value_text(trace, au, row) or 'no row'}"
                out.setdefault(au, []).append((_colour(k), short, full))
        return dict(sorted(out.items(), key=lambda item: au_number(item[0])))


def trace_colour(k: int) -> QColor:
    """The colour of the video's k-th comparison source under the current theme."""
    colours = TRACE_COLOURS["light" if style.current().name == "light" else "dark"]
    return colours[k % len(colours)]


def _colour(k: int) -> str:
    return trace_colour(k).name()


def _short(channel: str, value: float) -> str:
    """A channel's value in few characters, in its own units."""
    if math.isnan(value):
        return "–"
    if channel == "presence":
        return "on" if value >= 0.5 else "off"
    if channel == "intensity":
        return f"{value:.1f}/5"
    return f"{value:.2f}"


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
