"""The video view: the frame with its overlays, a HUD, zoom and pan.

Owns: `VideoView`, `Overlays`. May import PySide6, pyqtgraph, numpy, gui.overlays, core and
session values (FrameLoaded, FramePrediction); never torch, never the model.

Items, bottom to top, all in image pixel coordinates of one pyqtgraph ViewBox (y down, aspect
locked; wheel zooms around the cursor, drag pans, double-click fits):
the frame (ImageItem), the PTA heatmap (RGBA ImageItem placed on `heatmap_box`), AU region
polygons (AU colour, fill alpha from the AU's probability, with "AU12 83%" labels on the likely
ones), landmarks (ScatterPlotItem) and the face box. Overlays are the prediction of the frame on
screen; while a new frame has none yet (playback outruns the model) the last prediction stays,
drawn faded, and a note under the frame names the frame it belongs to: never an empty view.

Which AU's heatmap: `Overlays.heatmap_au` is an AU code, None for the maximum over AUs, or
`overlays.TOP_AU` for the frame's most probable AU. Moving the mouse over an AU region emits
`au_hovered(code)` (None when it leaves the regions); the window makes that the heatmap's AU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem, QLabel, QVBoxLayout, QWidget

from microau_gui.core.au import au_info
from microau_gui.core.types import FramePrediction
from microau_gui.gui import overlays
from microau_gui.session.messages import FrameLoaded

LABEL_MIN_PROBABILITY = 0.5  # region labels only for AUs the model thinks are on
MAX_LABELS = 5
FADED = 0.5  # opacity factor of the overlays of an earlier frame's prediction


@dataclass(frozen=True)
class Overlays:
    """What the coder chose to see on the frame."""

    landmarks: bool = False
    regions: bool = True
    heatmap: bool = True
    face_box: bool = True
    heatmap_opacity: float = 0.55  # 0..1
    heatmap_au: str | None = None  # AU code, None: maximum over AUs, overlays.TOP_AU: most probable


class _ViewBox(pg.ViewBox):
    """Double-click fits the frame (the right-click menu keeps pyqtgraph's own zoom actions)."""

    def mouseDoubleClickEvent(self, ev):  # noqa: N802 - Qt virtual
        self.autoRange(padding=0.01)
        ev.accept()


class _FrameGraphicsView(pg.GraphicsView):
    """pyqtgraph's view, telling when a newly set frame has been painted."""

    frame_painted = Signal(object)  # the FrameLoaded whose pixels the viewport now shows

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.unpainted: FrameLoaded | None = None  # set, not yet painted

    def paintEvent(self, event):  # noqa: N802 - Qt virtual
        super().paintEvent(event)
        loaded, self.unpainted = self.unpainted, None
        if loaded is not None:
            self.frame_painted.emit(loaded)


class VideoView(QWidget):
    """The frame on screen with toggleable overlays. `frame_painted(FrameLoaded)` once each new
    frame is painted (the display-latency figure of `bench` ends there); `au_hovered(code)` when
    the mouse enters another AU region (None: no region)."""

    au_hovered = Signal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.overlays = Overlays()
        self.frame_idx: int | None = None
        self.prediction: FramePrediction | None = None  # drawn; faded when of another frame
        self.hovered_au: str | None = None
        self.frame_label = str  # frame_idx -> its number in the chosen numbering (the window sets it)
        self._drawn_faded: bool | None = None
        self._image_shape: tuple[int, int] | None = None

        self.graphics = _FrameGraphicsView(background=QColor(18, 18, 20))
        self.frame_painted = self.graphics.frame_painted
        self.view_box = _ViewBox(lockAspect=True, invertY=True, enableMenu=True)
        self.view_box.setMenuEnabled(False)
        self.graphics.setCentralItem(self.view_box)
        self.frame_item = pg.ImageItem(axisOrder="row-major")
        self.heatmap_item = pg.ImageItem(axisOrder="row-major")
        self.heatmap_item.setZValue(10)
        self.landmark_item = pg.ScatterPlotItem(size=2.5, pen=None,
                                                brush=pg.mkBrush(120, 255, 170, 220), pxMode=True)
        self.landmark_item.setZValue(30)
        self.box_item = QGraphicsRectItem()
        self.box_item.setPen(pg.mkPen(QColor(255, 255, 255, 170), width=1.5, style=Qt.PenStyle.DashLine,
                                      cosmetic=True))
        self.box_item.setZValue(40)
        for item in (self.frame_item, self.heatmap_item, self.landmark_item, self.box_item):
            self.view_box.addItem(item)
        self._region_items: dict[str, QGraphicsPathItem] = {}
        self._label_items: list[pg.TextItem] = []

        self.hud = QLabel(self.graphics)
        self.hud.setObjectName("hud")
        self.hud.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hud.move(10, 10)
        self.placeholder = QLabel(self.graphics)
        self.placeholder.setObjectName("placeholder")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.hide()
        self.stale_note = QLabel(self.graphics)  # says whose overlays are drawn faded
        self.stale_note.setObjectName("hud")
        self.stale_note.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.stale_note.hide()
        self.graphics.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)
        self._hide_overlays()

    # -- public API ----------------------------------------------------------------------------

    def show_placeholder(self, text: str | None) -> None:
        """A centred message instead of a frame ("demo not built ..."), or None to hide it."""
        self.placeholder.setVisible(bool(text))
        self.placeholder.setText(text or "")
        self._place_labels()

    def set_frame(self, loaded: FrameLoaded) -> None:
        rgb = loaded.rgb
        first = self._image_shape != rgb.shape[:2]
        # No levels: pyqtgraph then wraps the uint8 array as a QImage as is. With levels=(0, 255)
        # it rescaled every pixel first (6 ms of the GUI thread per 640x480 frame, measured).
        self.frame_item.setImage(rgb, autoLevels=False)
        self.frame_idx = loaded.frame_idx
        self._image_shape = rgb.shape[:2]
        if first:
            self.view_box.setLimits(xMin=-rgb.shape[1], xMax=2 * rgb.shape[1],
                                    yMin=-rgb.shape[0], yMax=2 * rgb.shape[0])
            self.view_box.autoRange(padding=0.01)
        if self.prediction is not None and self.faded != self._drawn_faded:
            self._redraw_overlays()  # the prediction now belongs to an earlier frame: fade it
        elif self._drawn_faded:
            self._show_stale_note()  # still faded: the note names the new frame
        # Paint now rather than at the next update pass: QGraphicsScene hands item changes to
        # the view one event-loop turn later, so after the widgets already scheduled (timeline,
        # transport bar) and a layout pass. Measured (bench `gui`): request to frame painted
        # p50 ~5.5 ms instead of ~12.
        self.graphics.unpainted = loaded
        self.graphics.viewport().repaint()

    def set_prediction(self, prediction: FramePrediction | None) -> None:
        """Draw a prediction's overlays (None hides them): the frame on screen's, or an earlier
        frame's, faded, while the frame on screen has none yet."""
        self.prediction = prediction
        self._redraw_overlays()

    @property
    def faded(self) -> bool:
        """Whether the overlays drawn belong to another frame than the one on screen."""
        return self.prediction is not None and self.prediction.frame_idx != self.frame_idx

    def set_overlays(self, **changes) -> None:
        """e.g. `set_overlays(heatmap=False)` or `set_overlays(heatmap_opacity=0.3)`."""
        self.overlays = replace(self.overlays, **changes)
        self._redraw_overlays()

    def set_hud(self, lines: list[str]) -> None:
        self.hud.setText("\n".join(lines))
        self.hud.adjustSize()

    def fit(self) -> None:
        self.view_box.autoRange(padding=0.01)

    def zoom(self, factor: float) -> None:
        """Zoom around the view centre (>1 zooms in)."""
        self.view_box.scaleBy((1 / factor, 1 / factor))

    # -- drawing -------------------------------------------------------------------------------

    def _hide_overlays(self) -> None:
        self.stale_note.hide()
        self.heatmap_item.hide()
        self.landmark_item.hide()
        self.box_item.hide()
        for item in self._region_items.values():
            item.hide()
        for label in self._label_items:
            label.hide()

    def _redraw_overlays(self) -> None:
        self._hide_overlays()
        pred = self.prediction
        self._drawn_faded = self.faded
        if pred is None:
            return
        if self._drawn_faded:
            self._show_stale_note()
        if not pred.face_found:
            return
        shown = self.overlays
        if shown.heatmap and pred.heatmaps is not None and pred.heatmap_box is not None:
            self._draw_heatmap(pred)
        if shown.regions and pred.regions_img and pred.probs is not None:
            self._draw_regions(pred)
        if shown.landmarks and pred.landmarks_img is not None:
            xy = np.asarray(pred.landmarks_img, dtype=np.float64)  # (478, 2) xy_img
            self.landmark_item.setData(pos=xy)
            self.landmark_item.show()
        if shown.face_box and pred.face_box is not None:
            x0, y0, x1, y1 = pred.face_box
            self.box_item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
            self.box_item.show()

    def _show_stale_note(self) -> None:
        self.stale_note.setText(f"overlays of frame {self.frame_label(self.prediction.frame_idx)}, "
                                f"faded: frame {self.frame_label(self.frame_idx)} has no "
                                "prediction yet")
        self.stale_note.adjustSize()
        self.stale_note.show()
        self._place_labels()

    def _draw_heatmap(self, pred: FramePrediction) -> None:
        heat = overlays.select_heatmap(pred.heatmaps,
                                       overlays.heatmap_index(pred, self.overlays.heatmap_au))
        x0, y0, x1, y1 = pred.heatmap_box
        if pred.pta_grid is not None:  # blur by half a patch (in map px): the grid, smoothed
            heat = overlays.smooth_heatmap(heat, heat.shape[1] / pred.pta_grid.shape[-1])
        opacity = self.overlays.heatmap_opacity * (FADED if self._drawn_faded else 1.0)
        self.heatmap_item.setImage(overlays.heatmap_rgba(heat, opacity), autoLevels=False)
        self.heatmap_item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.heatmap_item.show()

    def _draw_regions(self, pred: FramePrediction) -> None:
        probs = {code: float(p) for code, p in zip(pred.vocab, pred.probs)}
        index = overlays.heatmap_index(pred, self.overlays.heatmap_au)
        selected = pred.vocab[index] if index is not None else None
        fade = FADED if self._drawn_faded else 1.0
        for key, polygon in pred.regions_img.items():
            code = overlays.region_au(key)
            item = self._region_items.get(key)
            if item is None:
                item = QGraphicsPathItem()
                item.setZValue(20)
                self.view_box.addItem(item)
                self._region_items[key] = item
            path = QPainterPath()
            points = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)  # (k, 2) xy_img
            path.addPolygon(QPolygonF([QPointF(x, y) for x, y in points]))
            path.closeSubpath()
            item.setPath(path)
            r, g, b = au_info(code).colour
            p = probs.get(code, 0.0)
            outline = QColor(r, g, b, int(fade * (90 + int(150 * p))))
            pen = QPen(outline, 2.6 if code == selected else 1.1)
            pen.setCosmetic(True)  # constant width on screen whatever the zoom
            item.setPen(pen)
            item.setBrush(QBrush(QColor(r, g, b, int(fade * overlays.region_fill_alpha(p)))))
            item.show()
        if not self._drawn_faded:  # "AU12 83%" would read as this frame's figure
            self._draw_labels(pred, probs)

    def _draw_labels(self, pred: FramePrediction, probs: dict[str, float]) -> None:
        likely = sorted((p, code) for code, p in probs.items() if p >= LABEL_MIN_PROBABILITY)[::-1]
        likely = likely[:MAX_LABELS]
        while len(self._label_items) < len(likely):
            label = pg.TextItem(anchor=(0.5, 0.5), fill=pg.mkBrush(0, 0, 0, 150))
            label.setFont(QFont("DejaVu Sans", 9, QFont.Weight.Bold))
            label.setZValue(50)
            self.view_box.addItem(label)
            self._label_items.append(label)
        for label, (p, code) in zip(self._label_items, likely):
            points = [np.asarray(poly).reshape(-1, 2) for key, poly in pred.regions_img.items()
                      if overlays.region_au(key) == code]
            if not points:
                continue
            centre = np.concatenate(points).mean(axis=0)
            r, g, b = au_info(code).colour
            label.setText(f"{code} {p:.0%}", color=QColor(r, g, b))
            label.setPos(float(centre[0]), float(centre[1]))
            label.show()

    # -- layout --------------------------------------------------------------------------------

    def resizeEvent(self, event):  # noqa: N802 - Qt virtual
        super().resizeEvent(event)
        self._place_labels()

    def _place_labels(self) -> None:
        size = self.graphics.size()
        self.placeholder.setGeometry(40, 40, max(10, size.width() - 80), max(10, size.height() - 80))
        self.stale_note.move(10, max(0, size.height() - self.stale_note.height() - 10))

    def _on_scene_mouse_moved(self, scene_pos) -> None:
        """The AU region under the mouse (the smallest, where regions overlap) -> `au_hovered`."""
        xy = self.view_box.mapSceneToView(scene_pos)
        under = [(item.path().boundingRect().width() * item.path().boundingRect().height(), key)
                 for key, item in self._region_items.items()
                 if item.isVisible() and item.path().contains(xy)]
        code = overlays.region_au(min(under)[1]) if under else None
        if code != self.hovered_au:
            self.hovered_au = code
            self.au_hovered.emit(code)
