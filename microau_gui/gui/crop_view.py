"""The stabilised face crop: the frame warped into the model's aligned crop, with its PTA heatmap.

Owns: `FaceCropView`. May import PySide6, pyqtgraph, numpy, gui.overlays and session values.

The crop is cut with the prediction's `crop_to_img` (the transform the model itself used), so the
face stays still while the head moves and a micro-movement is easier to see; the heatmap is the
PTA patch grid of the chosen AU (or the max over AUs) as the model saw it, before any warping.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from microau_gui.core.types import FramePrediction
from microau_gui.gui import overlays
from microau_gui.session.messages import FrameLoaded

CROP_DISPLAY_PX = 256
FADED = 0.5  # heatmap opacity factor while the prediction is an earlier frame's


class FaceCropView(QWidget):
    """Aligned crop of the frame on screen (from its prediction) with the PTA grid heatmap."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.frame_label = str  # frame_idx -> its number in the chosen numbering (the window sets it)
        self.graphics = pg.GraphicsView(background=QColor(18, 18, 20))
        self.view_box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view_box.setMouseEnabled(x=False, y=False)
        self.graphics.setCentralItem(self.view_box)
        self.crop_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item.setZValue(10)
        self.view_box.addItem(self.crop_item)
        self.view_box.addItem(self.heat_item)
        self.caption = QLabel("aligned crop appears with the first prediction")
        self.caption.setObjectName("subtle")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setWordWrap(True)  # a long caption must never widen the dock
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.caption)
        self.rgb: np.ndarray | None = None
        self.frame_idx: int | None = None
        self.prediction: FramePrediction | None = None
        self.crop_size_px: int | None = None  # the model's input size (aligned crop side)
        self.heatmap_au: str | None = None
        self.heatmap_on = True
        self.opacity = 0.55
        self._heat: tuple[tuple, np.ndarray] | None = None  # (key, (out, out) uint8) of the last

    def set_frame(self, loaded: FrameLoaded) -> None:
        self.rgb = loaded.rgb
        self.frame_idx = loaded.frame_idx
        if self.prediction is not None:
            self.redraw()

    def set_prediction(self, prediction: FramePrediction | None) -> None:
        self.prediction = prediction
        self.redraw()

    def set_style(self, heatmap_on: bool, opacity: float, heatmap_au: str | None) -> None:
        self.heatmap_on, self.opacity, self.heatmap_au = heatmap_on, opacity, heatmap_au
        self.redraw()

    def redraw(self) -> None:
        pred = self.prediction
        if (pred is None or not pred.face_found or pred.crop_to_img is None or self.rgb is None
                or not self.crop_size_px):
            self.crop_item.hide()
            self.heat_item.hide()
            if pred is not None and not pred.face_found:
                self.caption.setText(f"no face found in frame {self.frame_label(pred.frame_idx)}")
            return
        faded = pred.frame_idx != self.frame_idx
        crop = overlays.aligned_crop(self.rgb, pred.crop_to_img, self.crop_size_px, CROP_DISPLAY_PX)
        self.crop_item.setImage(crop, autoLevels=False)
        self.crop_item.show()
        au_index = overlays.heatmap_index(pred, self.heatmap_au)
        if self.heatmap_on and pred.pta_grid is not None:
            key = (id(pred), au_index)
            if self._heat is None or self._heat[0] != key:  # once per prediction and AU
                self._heat = key, overlays.grid_heatmap(pred.pta_grid, au_index, CROP_DISPLAY_PX)
            opacity = self.opacity * (FADED if faded else 1.0)
            self.heat_item.setImage(overlays.heatmap_rgba(self._heat[1], opacity, normalise=False),
                                    autoLevels=False)
            self.heat_item.show()
        else:
            self.heat_item.hide()
        self.view_box.setRange(xRange=(0, CROP_DISPLAY_PX), yRange=(0, CROP_DISPLAY_PX), padding=0)
        which = pred.vocab[au_index] if au_index is not None else "max over AUs"
        grid = pred.pta_grid.shape[1] if pred.pta_grid is not None else 0
        if faded:
            self.caption.setText(f"aligned crop, frame {self.frame_label(self.frame_idx)} · PTA "
                                 f"{which} of frame {self.frame_label(pred.frame_idx)}, faded "
                                 "(this frame has no prediction yet)")
        else:
            self.caption.setText(f"aligned crop, frame {self.frame_label(pred.frame_idx)} vs ref "
                                 f"{self.frame_label(pred.reference_idx)} · PTA {which} "
                                 f"({grid}×{grid} patches)")
