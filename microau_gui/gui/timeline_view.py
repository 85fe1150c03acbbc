"""The timeline: one lane per AU (model probability trace + expert spans), an event lane, a playhead.

Owns: `TimelineView`. May import PySide6, pyqtgraph, numpy, core and session values; edits go
through `ProjectSession` methods only.

Coordinates: x is frame_idx (a frame covers [f - 0.5, f + 0.5]); y counts lanes downwards (the
plot's y axis is inverted). Lane order, top to bottom (as ELAN groups its tiers): the current
coder's event tier [0, 1], one tier per other coder shown (`coder_tiers`), the spotting candidate
lane (`candidate_lane_y`, gui.candidate_lane), then AU lane i at `first_au_lane + i`. Whatever is
placed by lane (traces, comparison traces, candidates, spans) asks these properties, and
`lanes_changed` fires when they may have moved (a tier shown or hidden). Mouse zoom and pan act
on x only; the y range is fixed. Lanes are at least LANE_MIN_PX tall: when the dock is shorter
than all of them, the lanes scroll vertically (as ELAN's tiers do) under the ruler (gui.ruler:
hh:mm:ss.fff and frame numbers in the chosen numbering, session.numbering), which stays pinned.

An AU lane draws the model's probability from VALUE_TOP (p = 1) to VALUE_BOTTOM (p = 0) of the
lane, with its scale (0, the decision threshold, 1) on the right axis and the threshold
(core.types.DECISION_THRESHOLD) as a dashed line: a trace above the line is a detection.
Labels (an event's "E3 4+7", an AU span's "L12C") never cover a neighbour on their lane or run
past their own span: one that does not fit is shortened (to "E3"), else hidden; the span's
tooltip always has the whole text.

Per-coder tiers (ELAN's tiers, issue 16): the event lane holds the current coder's events; every
other coder of the video has a tier of their own right under it, above the AU lanes (so no tier
scrolls out of view below them), which View > Coder tiers hides one by one. The AU lanes draw
the coded AUs of every event shown, each over the AU's own onset-offset where the coder timed it
apart (else the event's), labelled with side and intensity ("L12C"); other coders' AUs are
outlined dashed. Blind coding mode (`set_blind`) hides the model traces, the spotted candidates
and every other coder's tier and AUs.

Dragging (pyqtgraph's "a drag previews live and commits once"): an event's span
(LinearRegionItem) and apex (InfiniteLine) move freely while dragged, the AU spans of that event
follow on `sigRegionChanged`, and only `sigRegionChangeFinished` / `sigPositionChangeFinished`
edit the project: one `ProjectSession.move_event` / `move_boundary` call, one undo step.
Programmatic updates run with the items' signals blocked, so they never commit anything.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFontMetrics, QPen
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsRectItem,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from microau_gui.core.au import au_info
from microau_gui.core.aus import format_au_codes
from microau_gui.core.types import DECISION_THRESHOLD
from microau_gui.gui import style
from microau_gui.gui.candidate_lane import CandidateLane
from microau_gui.gui.ruler import AXIS_WIDTH_PX, SCALE_WIDTH_PX, FrameAxis, RulerView
from microau_gui.session.annotation import PendingMark
from microau_gui.session.session import ProjectSession
from microau_gui.session.records import Boundary, Event

EVENT_BRUSH = QColor(90, 160, 255, 70)
SELECTED_BRUSH = QColor(255, 200, 60, 95)
ACCEPTED_BRUSH = QColor(150, 110, 255, 70)  # accepted predictions look different from expert spans
APEX_PEN = QColor(250, 200, 60)  # amber: the apex is never mistaken for the red playhead
PLAYHEAD_PEN = QColor(255, 70, 70)
MAX_DOTTED_FRAMES = 400  # above this many cached frames a trace is a plain line (speed)
MAX_JOINED_GAP = 10  # frames; cached predictions further apart are drawn unconnected
TRACE_REFRESH_MS = 400  # redraw traces at most this often while analysis fills the cache
LANE_MIN_PX = 40  # a lane's scale (1, threshold, 0) needs three readable 8-pt labels
VALUE_TOP, VALUE_BOTTOM = 0.15, 0.85  # where p = 1 and p = 0 sit inside a lane (lane = 1.0)
MAX_AXIS_PX = 200  # the lane names' column never takes more of the width than this
LABEL_PAD_PX = 6  # room kept between a label and whatever follows it on its lane


def _connections(frame_idx: np.ndarray) -> np.ndarray:
    """(n,) bool: join cached frame i to i+1 only when they are neighbours in the analysis grid.

    Frames predicted while scrubbing are far apart; a line between them would draw a trace the
    model never produced. Frames of an analysis (every frame, or every k-th) are joined.
    """
    gaps = np.diff(frame_idx)  # (n - 1,)
    if gaps.size == 0:
        return np.zeros(frame_idx.size, dtype=bool)
    step = min(float(np.median(gaps)), MAX_JOINED_GAP)
    return np.append(gaps <= step, False)


class _EventSpan(pg.LinearRegionItem):
    """An event on the event lane; a left click selects it."""

    clicked = Signal(int)

    def __init__(self, event_id: int, **kwargs):
        super().__init__(**kwargs)
        self.event_id = event_id

    def mouseClickEvent(self, ev):  # noqa: N802 - pyqtgraph virtual
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.clicked.emit(self.event_id)
        else:
            super().mouseClickEvent(ev)


class TimelineView(QWidget):
    """AU lanes and the event lane of the open video."""

    span_previewed = Signal(int, int, int)  # (event_id, onset, offset) while a span is dragged
    lanes_changed = Signal()  # the lanes were laid out again: lane positions may have moved

    def __init__(self, session: ProjectSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.vocab: tuple[str, ...] = ()
        colours = style.current()
        self.plot_widget = pg.PlotWidget(background=colours.plot_background,
                                         axisItems={"bottom": FrameAxis(lambda: session.frames)})
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.showGrid(x=True, y=False, alpha=0.15)
        self.plot.showAxis("right")
        for axis in ("left", "bottom", "right"):
            self.plot.getAxis(axis).setTextPen(colours.plot_text)
            self.plot.getAxis(axis).setTickFont(style.tick_font(8))
        self.plot.getAxis("left").setWidth(AXIS_WIDTH_PX)
        self.plot.getAxis("right").setWidth(SCALE_WIDTH_PX)
        self.plot.vb.sigXRangeChanged.connect(lambda *_: self._layout_labels())
        self.plot.scene().sigMouseClicked.connect(self._on_scene_clicked)

        self.playhead = pg.InfiniteLine(pos=0, angle=90, movable=True,
                                        pen=pg.mkPen(PLAYHEAD_PEN, width=2),
                                        hoverPen=pg.mkPen(QColor(255, 140, 140), width=3))
        self.playhead.setZValue(100)
        self.playhead.sigDragged.connect(self._on_playhead_dragged)
        self.plot.addItem(self.playhead)
        self.pending_item = pg.LinearRegionItem(movable=False, brush=QColor(255, 255, 255, 40),
                                                pen=pg.mkPen(QColor(255, 255, 255, 160),
                                                             style=Qt.PenStyle.DashLine))
        self.pending_item.setZValue(60)
        self.plot.addItem(self.pending_item)
        self.pending_item.hide()

        self._static_items: list = []  # lane separators and labels, rebuilt with the vocabulary
        self._trace_items: dict[str, pg.PlotDataItem] = {}
        # event -> (rect, lane, label, timed apart from the event)
        self._span_items: dict[int, list[tuple[QGraphicsRectItem, int, pg.TextItem, bool]]] = {}
        self.hidden_coders: set[str] = set()  # coder tiers switched off (View > Coder tiers)
        self.blind = False  # blind coding mode: no model output, no other coders
        self.coder_tiers: tuple[str, ...] = ()  # other coders with a tier shown, in lane order
        self._event_items: dict[int, tuple[_EventSpan, pg.InfiniteLine, pg.TextItem]] = {}
        self._trace_timer = QTimer(self)
        self._trace_timer.setSingleShot(True)
        self._trace_timer.setInterval(TRACE_REFRESH_MS)
        self._trace_timer.timeout.connect(self.refresh_traces)
        self.candidate_lane = CandidateLane(self.plot, session.review, self.candidate_lane_y,
                                            lambda *frame_idxs: session.frames.label(*frame_idxs))

        self.scroll = QScrollArea()  # lanes keep LANE_MIN_PX and scroll when the dock is short
        self.scroll.setWidget(self.plot_widget)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Always there, so the pinned ruler's right margin (scale + scroll bar) never changes.
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.ruler = RulerView(lambda: session.frames, self.plot,
                               SCALE_WIDTH_PX + self.scroll.verticalScrollBar().sizeHint().width())
        self.ruler.set_colours(colours.plot_background, colours.plot_text)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.ruler)
        layout.addWidget(self.scroll, 1)

        session.video_opened.connect(self._on_session_video_opened)
        session.events_changed.connect(self.refresh_events)
        session.selection_changed.connect(self._on_session_selection_changed)
        session.position_changed.connect(self._on_session_position_changed)
        session.pending_mark_changed.connect(self._on_session_pending_mark_changed)
        session.model_loaded.connect(self._on_session_model_loaded)
        session.predictions_changed.connect(self._on_session_predictions_changed)
        session.models.student_changed.connect(self._on_models_student_changed)
        session.coder.changed.connect(lambda _name: self.refresh_events())
        session.coder.changed.connect(lambda _name: self._layout_lanes())
        session.numbering.changed.connect(self._on_session_numbering_changed)

    # -- lanes ---------------------------------------------------------------------------------

    @property
    def candidate_lane_y(self) -> int:
        """The spotted candidates' lane: under every coder tier, right above the AU lanes."""
        return 1 + len(self.coder_tiers)

    @property
    def first_au_lane(self) -> int:
        """The lane of vocabulary entry 0; entry i is on `first_au_lane + i`."""
        return self.candidate_lane_y + 1

    @property
    def n_lanes(self) -> int:
        return self.first_au_lane + len(self.vocab)

    def au_lane(self, au_index: int) -> int:
        """The lane of vocabulary entry `au_index`."""
        return self.first_au_lane + au_index

    def coders(self) -> list[str]:
        """The other coders of the open video's events (the current coder's are on lane 0)."""
        own = self.session.coder.name
        return sorted({e.coder for e in self.session.events} - {own})

    def tier_lane(self, coder: str) -> int | None:
        """The lane of a coder's events: 0 for the current coder, then the other coders' tiers
        in `coder_tiers` order; None when not shown."""
        if coder == self.session.coder.name:
            return 0
        if coder in self.coder_tiers:
            return 1 + self.coder_tiers.index(coder)
        return None

    def set_coder_visible(self, coder: str, visible: bool) -> None:
        (self.hidden_coders.discard if visible else self.hidden_coders.add)(coder)
        self.refresh_events()

    def set_blind(self, on: bool) -> None:
        """Blind coding mode: hide the model traces, the candidates and the other coders."""
        self.blind = on
        self.candidate_lane.hidden = on
        for item in self._trace_items.values():
            item.setVisible(not on)
        self.candidate_lane.refresh()
        self.refresh_events()

    def _layout_lanes(self) -> None:
        """Lane labels, separators and the y range for the vocabulary and the coder tiers."""
        for item in self._static_items:
            self.plot.removeItem(item)
        self._static_items = []
        own = self.session.coder.name or "(no coder name)"
        ticks = [(0.5, f"events: {own}")] + [
            (self.tier_lane(coder) + 0.5, f"coder: {coder or '(none)'}")
            for coder in self.coder_tiers] + [(self.candidate_lane_y + 0.5, "spotted")] + [
            (self.au_lane(i) + 0.5, code) for i, code in enumerate(self.vocab)]
        self.plot.getAxis("left").setTicks([ticks, []])
        # wide enough for the longest lane name ("events: EK", "coder: synth (ground truth)"):
        # pyqtgraph drops a tick label that does not fit, leaving a lane unnamed
        metrics = QFontMetrics(style.tick_font(8))
        left_px = min(MAX_AXIS_PX, max([AXIS_WIDTH_PX] + [metrics.horizontalAdvance(text) + 14
                                                          for _y, text in ticks]))
        self.plot.getAxis("left").setWidth(left_px)
        self.ruler.set_left_width(left_px)
        # 1 and the threshold on every AU lane; 0 only under the last one, since a lane's 0 sits
        # a few pixels from the next lane's 1 and the two labels ran into each other
        last = len(self.vocab) - 1
        scale = [(float(self.value_y(i, p)), text) for i in range(len(self.vocab))
                 for p, text in ((1.0, "1"), (DECISION_THRESHOLD, f"{DECISION_THRESHOLD:g}"),
                                 (0.0, "0")) if text != "0" or i == last]
        self.plot.getAxis("right").setTicks([scale, []])
        self.plot.setYRange(0, self.n_lanes, padding=0)
        lane_px = LANE_MIN_PX * max(1.0, style.font_scale())  # larger text, taller lanes
        self.plot_widget.setMinimumHeight(int(self.n_lanes * lane_px) + 30)  # + the frame axis
        for lane in range(1, self.n_lanes):
            line = pg.InfiniteLine(pos=lane, angle=0, movable=False,
                                   pen=pg.mkPen(style.current().lane_line, width=1))
            self.plot.addItem(line)
            self._static_items.append(line)
        for i in range(len(self.vocab)):  # the decision threshold of every AU lane
            line = pg.InfiniteLine(pos=float(self.value_y(i, DECISION_THRESHOLD)), angle=0,
                                   movable=False, pen=pg.mkPen(QColor(150, 150, 160, 150), width=1,
                                                               style=Qt.PenStyle.DashLine))
            line.setZValue(5)
            self.plot.addItem(line)
            self._static_items.append(line)
        self.pending_item.setSpan(*self._lane_span(0))
        self.candidate_lane.lane = self.candidate_lane_y
        self.lanes_changed.emit()

    def restyle(self) -> None:
        """The theme or the font scale changed (gui.view_menu): colours, fonts, lane height."""
        colours = style.current()
        self.ruler.set_colours(colours.plot_background, colours.plot_text)
        self.plot_widget.setBackground(colours.plot_background)
        for axis in ("left", "bottom", "right"):
            self.plot.getAxis(axis).setTextPen(colours.plot_text)
            self.plot.getAxis(axis).setTickFont(style.tick_font(8))
        self._layout_lanes()
        self.refresh_events()  # the labels in the new colours and size

    def value_y(self, au_index: int, p):
        """y of probability `p` (scalar or array, 0..1) in the lane of vocabulary entry
        `au_index` (y grows downwards: p = 1 is near the lane's top)."""
        bottom = self.au_lane(au_index) + VALUE_BOTTOM
        return bottom - (VALUE_BOTTOM - VALUE_TOP) * np.asarray(p, dtype=np.float64)

    def set_vocab(self, vocab: tuple[str, ...]) -> None:
        if vocab == self.vocab:
            return
        self.vocab = tuple(vocab)
        for item in list(self._trace_items.values()):
            self.plot.removeItem(item)
        self._trace_items = {}
        self._layout_lanes()
        for i, code in enumerate(self.vocab):
            r, g, b = au_info(code).colour
            trace = pg.PlotDataItem(pen=pg.mkPen(QColor(r, g, b), width=1.4), symbol="o",
                                    symbolSize=3, symbolPen=None, symbolBrush=QColor(r, g, b))
            trace.setZValue(30)
            # Only the points in view, at most a few per pixel column: an hour at 30 fps is
            # 108,000 points per lane, and every playhead move repaints a strip across all lanes.
            trace.setClipToView(True)
            trace.setDownsampling(auto=True, method="peak")
            for part in (trace.curve, trace.scatter):
                # A playhead move repaints a 3-px strip; with a device-pixel cache the curves are
                # blitted there instead of redrawn (bench `gui`: timeline paint p50/p95 3.8/14.8
                # ms before these three settings, 2.6/6.7 ms after).
                part.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            trace.setVisible(not self.blind)
            self.plot.addItem(trace)
            self._trace_items[code] = trace
        self.refresh_events()
        self.refresh_traces()
        self.candidate_lane.refresh()

    def _lane_span(self, lane: int) -> tuple[float, float]:
        """(low, high) fraction of the view height covered by a lane, for pyqtgraph's `span`
        (measured along the y axis, which is inverted here, so lane 0 starts at 0)."""
        n = self.n_lanes
        return (lane / n + 0.08 / n, (lane + 1) / n - 0.08 / n)

    # -- session -> view -----------------------------------------------------------------------

    def _on_session_video_opened(self, video) -> None:
        self.set_vocab(self.session.vocab)
        self.plot.setLimits(xMin=-0.5 - 5, xMax=video.n_frames + 5)
        self.plot.setXRange(-0.5, video.n_frames - 0.5, padding=0.01)
        self.playhead.setBounds((0, video.n_frames - 1))
        self.refresh_events()
        self.refresh_traces()
        self.candidate_lane.refresh()

    def _on_session_numbering_changed(self) -> None:
        self.ruler.refresh()
        axis = self.plot.getAxis("bottom")
        axis.picture = None
        axis.update()
        self.refresh_events()  # tooltips name the frames

    def _on_session_model_loaded(self, _loaded) -> None:
        self.set_vocab(self.session.vocab)
        self.refresh_traces()

    def _on_models_student_changed(self, _student) -> None:
        self.refresh_traces()

    def _on_session_predictions_changed(self, video_id: int, model_version_id: int) -> None:
        model = self.session.model
        video = self.session.video
        student = self.session.models.student  # its dense trace is drawn under the teacher's rows
        drawn = {model.model_version_id if model is not None else None,
                 student.model_version_id if student is not None else None} - {None}
        if (video is not None and video_id == video.id and model_version_id in drawn
                and not self._trace_timer.isActive()):
            self._trace_timer.start()

    def _on_session_position_changed(self, frame_idx: int) -> None:
        self.playhead.blockSignals(True)
        self.playhead.setValue(frame_idx)
        self.playhead.blockSignals(False)
        low, high = self.plot.viewRange()[0]
        if not low <= frame_idx <= high:  # follow the playhead, keeping the zoom
            width = high - low
            self.plot.setXRange(frame_idx - 0.1 * width, frame_idx + 0.9 * width, padding=0)
        self._update_pending()

    def _on_session_pending_mark_changed(self, _pending: PendingMark | None) -> None:
        self._update_pending()

    def _update_pending(self) -> None:
        pending = self.session.pending
        if pending is None:
            self.pending_item.hide()
            return
        end = max(pending.onset, self.session.frame_idx)
        self.pending_item.setRegion((pending.onset - 0.5, end + 0.5))
        self.pending_item.show()

    def _on_session_selection_changed(self, _event) -> None:
        self.refresh_events()

    def refresh_traces(self) -> None:
        trace = self.session.trace()
        connected = None
        if trace is not None and trace.frame_idx.size:
            connected = _connections(trace.frame_idx)
        for i, code in enumerate(self.vocab):
            item = self._trace_items[code]
            if trace is None or code not in trace.vocab or trace.frame_idx.size == 0:
                item.setData([], [])
                continue
            p = trace.probs[:, trace.vocab.index(code)]  # (n,) NaN where no face
            item.setData(trace.frame_idx.astype(np.float64), self.value_y(i, p),
                         connect=connected,
                         symbol="o" if trace.frame_idx.size <= MAX_DOTTED_FRAMES else None)

    def refresh_events(self) -> None:
        """Rebuild event spans and expert AU spans from the session's events."""
        for rects in self._span_items.values():
            for rect, _lane, text, _timed in rects:
                self.plot.removeItem(rect)
                self.plot.removeItem(text)
        for region, apex, label in self._event_items.values():
            for item in (region, apex, label):
                self.plot.removeItem(item)
        self._span_items = {}
        self._event_items = {}
        if not self.vocab:
            return
        tiers = () if self.blind else tuple(c for c in self.coders() if c not in self.hidden_coders)
        if tiers != self.coder_tiers:  # the candidate and AU lanes move up or down
            self.coder_tiers = tiers
            self._layout_lanes()
            self.refresh_traces()
            self.candidate_lane.refresh()
        selected = self.session.selected_event.id if self.session.selected_event else None
        for event in self.session.events:
            lane = self.tier_lane(event.coder)
            if lane is not None:
                self._add_event(event, event.id == selected, lane)
        self._layout_labels()

    def _add_event(self, event: Event, selected: bool, tier: int = 0) -> None:
        brush = SELECTED_BRUSH if selected else (ACCEPTED_BRUSH if event.source == "accepted"
                                                 else EVENT_BRUSH)
        outline = QColor(style.current().label)  # white on the dark theme, near black on light
        outline.setAlpha(200 if selected else 110)
        region = _EventSpan(event.id, values=(event.onset - 0.5, event.offset + 0.5),
                            brush=brush, span=self._lane_span(tier),
                            pen=pg.mkPen(outline, width=2 if selected else 1),
                            hoverBrush=QColor(brush.red(), brush.green(), brush.blue(), 140),
                            bounds=(-0.5, self.session.n_frames - 0.5))
        region.setZValue(70 if selected else 65)
        apex = pg.InfiniteLine(pos=event.apex, angle=90, movable=True, span=self._lane_span(tier),
                               pen=pg.mkPen(APEX_PEN, width=2),
                               hoverPen=pg.mkPen(QColor(255, 225, 130), width=3),
                               bounds=(event.onset, event.offset))
        apex.setZValue(75)
        label = pg.TextItem(f"E{event.id} {event.aus_text or '-'}", anchor=(0, 0.5),
                            color=style.current().label)
        label.setFont(style.tick_font(8))
        label.full_text, label.short_text = label.toPlainText(), f"E{event.id}"
        region.setToolTip(f"event {event.id} · frames "
                          f"{self.session.frames.label(event.onset, event.apex, event.offset)} · "
                          f"AUs {event.aus_text or '-'}" + (f" · {event.coder}" if event.coder
                                                             else ""))
        label.setPos(event.onset - 0.5, tier + 0.5)
        label.setZValue(80)
        for item in (region, apex, label):
            self.plot.addItem(item)
        region.clicked.connect(self._on_span_clicked)
        region.sigRegionChanged.connect(lambda r, e=event: self._on_span_dragging(e, r))
        region.sigRegionChangeFinished.connect(lambda r, e=event: self._on_span_dropped(e, r))
        apex.sigPositionChangeFinished.connect(lambda line, e=event: self._on_apex_dropped(e, line))
        self._event_items[event.id] = (region, apex, label)
        self._span_items[event.id] = []
        for code in event.aus:
            name = f"AU{code.number}"
            if name not in self.vocab:
                continue
            lane = self.au_lane(self.vocab.index(name))
            r, g, b = au_info(name).colour
            onset, _apex, offset = event.au_span(code.number)
            timed = (onset, offset) != (event.onset, event.offset)
            rect = QGraphicsRectItem(QRectF(onset - 0.5, lane + 0.08, offset - onset + 1, 0.84))
            rect.setBrush(QBrush(QColor(r, g, b, 70)))
            pen = QPen(QColor(r, g, b, 230), 1.5)
            pen.setCosmetic(True)
            if tier != 0:  # another coder's AU
                pen.setStyle(Qt.PenStyle.DashLine)
            rect.setPen(pen)
            rect.setZValue(20)
            self.plot.addItem(rect)
            # side and intensity on the span: "L12C" (the coder reads the coding, not a colour)
            text = pg.TextItem(format_au_codes((code,)), anchor=(0, 0.5),
                               color=style.current().label)
            text.setFont(style.tick_font(7))
            text.full_text = text.short_text = text.toPlainText()
            rect.setToolTip(f"{format_au_codes((code,))} · frames "
                            f"{self.session.frames.label(onset, offset)}")
            text.setPos(onset - 0.5, lane + 0.5)
            text.setZValue(21)
            self.plot.addItem(text)
            self._span_items[event.id].append((rect, lane, text, timed))

    def _layout_labels(self) -> None:
        """Fit each label inside its own span, clear of the label before it on the same lane:
        the whole text, else the short one ("E3"), else nothing (the tooltip has it all)."""
        low, high = self.plot.viewRange()[0]
        width_px = self.plot.vb.width()
        if high <= low or width_px <= 0:
            return
        px_per_frame = width_px / (high - low)
        placed = [(region.getRegion(), label) for region, _apex, label in self._event_items.values()]
        for rects in self._span_items.values():
            for rect, _lane, text, _timed in rects:
                box = rect.rect()
                placed.append(((box.left(), box.right()), text))
        free_from: dict[float, float] = {}  # lane y -> x (frames) where its last label ended
        for (start, end), label in sorted(placed, key=lambda p: (p[1].pos().y(), p[0][0])):
            lane_y = round(label.pos().y(), 3)
            metrics = QFontMetrics(label.textItem.font())
            shown = ""
            for text in dict.fromkeys((label.full_text, label.short_text)):
                right = start + (metrics.horizontalAdvance(text) + LABEL_PAD_PX) / px_per_frame
                if right <= end + 1e-9 and start >= free_from.get(lane_y, -np.inf):
                    shown = text
                    free_from[lane_y] = right
                    break
            text = shown or label.full_text  # hidden labels keep their text (for the tooltip)
            if label.toPlainText() != text:
                label.setText(text)
            label.setVisible(bool(shown))

    # -- view -> session -----------------------------------------------------------------------

    def _frames_of(self, region: pg.LinearRegionItem) -> tuple[int, int]:
        low, high = region.getRegion()
        onset = int(round(low + 0.5))
        offset = max(onset, int(round(high - 0.5)))
        return max(0, onset), min(self.session.n_frames - 1, offset)

    def _on_span_dragging(self, event: Event, region: pg.LinearRegionItem) -> None:
        onset, offset = self._frames_of(region)
        for rect, lane, text, timed in self._span_items.get(event.id, []):
            if not timed:  # an AU timed apart keeps its own frames while the event moves
                rect.setRect(QRectF(onset - 0.5, lane + 0.08, offset - onset + 1, 0.84))
                text.setPos(onset - 0.5, lane + 0.5)
        items = self._event_items.get(event.id)
        if items is not None:
            items[2].setPos(onset - 0.5, items[2].pos().y())
        self._layout_labels()
        self.span_previewed.emit(event.id, onset, offset)

    def _on_span_dropped(self, event: Event, region: pg.LinearRegionItem) -> None:
        onset, offset = self._frames_of(region)
        apex = min(max(event.apex, onset), offset)
        # Rebuilding removes the item that is emitting; do it once the drag has fully ended.
        QTimer.singleShot(0, lambda: self._commit_span(event, onset, apex, offset))

    def _commit_span(self, event: Event, onset: int, apex: int, offset: int) -> None:
        if (onset, apex, offset) != (event.onset, event.apex, event.offset):
            self.session.move_event(event.id, onset, apex, offset)
        self.refresh_events()

    def _on_apex_dropped(self, event: Event, line: pg.InfiniteLine) -> None:
        apex = int(round(line.value()))
        QTimer.singleShot(0, lambda: self._commit_apex(event, apex))

    def _commit_apex(self, event: Event, apex: int) -> None:
        if apex != event.apex:
            self.session.move_boundary(event.id, Boundary.APEX, apex)
        self.refresh_events()

    def _on_span_clicked(self, event_id: int) -> None:
        # Selecting rebuilds the spans, the clicked one included: not inside its own handler.
        QTimer.singleShot(0, lambda: self.session.select_event(event_id, seek=False))

    def _on_playhead_dragged(self, line: pg.InfiniteLine) -> None:
        self.session.pause()
        self.session.seek(int(round(line.value())))

    def _on_scene_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or ev.isAccepted():
            return
        pos = self.plot.vb.mapSceneToView(ev.scenePos())
        if self.plot.vb.sceneBoundingRect().contains(ev.scenePos()):
            self.session.pause()
            self.session.seek(int(round(pos.x())))
