"""The timeline's ruler: frame numbers in the coder's numbering and an hh:mm:ss.fff time scale.

Owns: `FrameAxis`, `TimeAxis`, `RulerView`. May import PySide6, pyqtgraph, numpy and session
values (session.numbering.FrameLabels), gui.style.

Both axes live in a thin plot of their own above the lanes, x-linked to them, so the ruler stays
in view while the lanes scroll (ELAN keeps its time ruler pinned the same way). The x coordinate
is frame_idx, as in the lanes; the axes choose their ticks where the *labels* are round: every
10th (or 5th, 100th...) frame number, and whole seconds, tenths or milliseconds of the clock.
A number that falls in a gap of the numbering gets no tick.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from microau_gui.gui import style
from microau_gui.session.numbering import FrameLabels, timecode

RULER_HEIGHT_PX = 52
AXIS_WIDTH_PX = 64  # the lanes' left axis width, so both plots' x axes line up
SCALE_WIDTH_PX = 30  # the lanes' right axis (the value scale)


class _LabelledAxis(pg.AxisItem):
    """An x axis whose ticks are chosen in some other unit (`_to_unit`) and mapped back."""

    def __init__(self, labels, orientation: str):
        super().__init__(orientation=orientation)
        self._labels = labels  # () -> FrameLabels of the open video
        self.setStyle(autoExpandTextSpace=False)

    def _unit_of_idx(self, labels: FrameLabels) -> np.ndarray:  # (n_frames,) increasing
        raise NotImplementedError

    def tickValues(self, minVal, maxVal, size):  # noqa: N802,N803 - pyqtgraph virtual
        labels: FrameLabels = self._labels()
        if labels.n_frames < 2:
            return super().tickValues(minVal, maxVal, size)
        unit = self._unit_of_idx(labels).astype(np.float64)  # (n_frames,)
        index = np.arange(unit.size, dtype=np.float64)
        low, high = np.interp([minVal, maxVal], index, unit)
        levels = []
        for spacing, values in super().tickValues(low, high, size):
            values = np.asarray(values, dtype=np.float64)
            frame_idx = np.interp(values, unit, index, left=np.nan, right=np.nan)
            keep = np.isfinite(frame_idx) & self._exists(values, unit)
            levels.append((spacing, frame_idx[keep].tolist()))
        return levels

    def _exists(self, values: np.ndarray, unit: np.ndarray) -> np.ndarray:
        return np.ones(values.shape, dtype=bool)


class FrameAxis(_LabelledAxis):
    """Frame numbers, under the chosen numbering; ticks only on numbers that exist."""

    def __init__(self, labels, orientation: str = "bottom"):
        super().__init__(labels, orientation)

    def _unit_of_idx(self, labels: FrameLabels) -> np.ndarray:
        return labels.shown

    def _exists(self, values: np.ndarray, unit: np.ndarray) -> np.ndarray:
        rounded = np.round(values)
        return (np.abs(values - rounded) < 1e-6) & np.isin(rounded, unit)

    def tickValues(self, minVal, maxVal, size):  # noqa: N802,N803 - pyqtgraph virtual
        # Whole frames only: a tick between two frames names no frame.
        return [(max(spacing, 1.0), values) for spacing, values
                in super().tickValues(minVal, maxVal, size) if spacing >= 1 or not values]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph virtual
        labels: FrameLabels = self._labels()
        return [str(labels.number(int(round(v)))) for v in values]


class TimeAxis(_LabelledAxis):
    """The clock, hh:mm:ss.fff, from the dataset numbers (gaps are gaps in time)."""

    def __init__(self, labels, orientation: str = "top"):
        super().__init__(labels, orientation)
        self.setTickDensity(0.6)  # "00:00:01.250" is wide: fewer ticks than plain numbers

    def _unit_of_idx(self, labels: FrameLabels) -> np.ndarray:
        return (labels.dataset - labels.dataset[0]) / max(labels.fps, 1e-9)

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph virtual
        labels: FrameLabels = self._labels()
        return [labels.timecode(v) if labels.n_frames else timecode(v) for v in values]


class RulerView(pg.PlotWidget):
    """The pinned ruler above the lanes: time on top, frame numbers below."""

    def __init__(self, labels, lanes: pg.PlotItem, right_px: int, parent: QWidget | None = None):
        """`right_px`: what lies right of the lanes' plot area (their scale and scroll bar)."""
        self.frame_axis = FrameAxis(labels, "bottom")
        self.time_axis = TimeAxis(labels, "top")
        super().__init__(parent, axisItems={"bottom": self.frame_axis, "top": self.time_axis})
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.showAxis("top")
        plot.showAxis("left")
        plot.getAxis("left").setWidth(AXIS_WIDTH_PX)
        plot.getAxis("left").setTicks([[], []])
        plot.getAxis("left").setStyle(showValues=False)
        plot.getAxis("left").setPen(pg.mkPen(None))
        plot.showAxis("right")
        plot.getAxis("right").setStyle(showValues=False)
        plot.getAxis("right").setWidth(right_px)
        plot.getAxis("right").setPen(pg.mkPen(None))
        plot.setMouseEnabled(x=True, y=False)
        plot.setXLink(lanes)
        plot.getViewBox().setYRange(0, 1, padding=0)
        self.setFixedHeight(RULER_HEIGHT_PX)

    def set_left_width(self, px: int) -> None:
        """Follow the lanes' name column, so both x axes stay lined up."""
        self.getPlotItem().getAxis("left").setWidth(px)

    def set_colours(self, background: QColor, text: QColor) -> None:
        self.setBackground(background)
        for axis in (self.frame_axis, self.time_axis):
            axis.setTextPen(text)
            axis.setPen(pg.mkPen(text))
            axis.setTickFont(style.tick_font(8))

    def refresh(self) -> None:
        """The numbering or the video changed: redraw the tick labels."""
        for axis in (self.frame_axis, self.time_axis):
            axis.picture = None
            axis.update()
