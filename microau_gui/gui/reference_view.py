"""The reference view: the frame on screen against the reference frame the model compares it to.

Owns: `ReferenceView`. May import PySide6, pyqtgraph, numpy, gui.overlays,
gui.reference_images and session; never torch, never the store.

Which reference: the session's (`ProjectSession.reference_pixels`, the pipeline's reference
policy on screen: sliding t - 0.2 s, the event onset or a fixed frame), never one computed
here. Both frames are cut with one transform, the drawn prediction's `crop_to_img` (the aligned
crop the model itself saw, so head motion and landmark jitter do not show as change); before the
first prediction the whole frames are compared. Difference (default, with Eulerian
magnification x5), side by side or blend; Eulerian or flow magnification with a gain
(gui.reference_images says how each works). It is a dock tabbed with the face crop (left
column): a coder reads it beside the stabilised crop, and at 1280x720 it costs no space.
It redraws only while visible.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from microau_gui.gui import overlays
from microau_gui.gui.reference_images import MAGNIFIERS, MODES, compose
from microau_gui.session.session import ProjectSession

REFERENCE_DISPLAY_PX = 256  # side of each aligned crop drawn
DEFAULT_GAIN = 5  # micro-movements of 0.5-3 px become visible; image noise stays moderate


class ReferenceView(QWidget):
    """Difference / side by side / blend of the frame on screen and its reference frame."""

    def __init__(self, session: ProjectSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.mode = QComboBox()
        self.magnifier = QComboBox()
        for box, choices in ((self.mode, MODES), (self.magnifier, MAGNIFIERS)):
            for key, label in choices:
                box.addItem(label, key)
            box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(6)
            box.currentIndexChanged.connect(lambda _i: self.refresh())
        self.mode.setToolTip("the frame on screen against its reference: difference (mid-grey = "
                             "no change), side by side (reference left) or blended")
        self.magnifier.setToolTip("amplify the motion since the reference: Eulerian (intensity "
                                  "change x gain) or flow (the reference warped by gain x the "
                                  "optical flow)")
        self.gain = QSpinBox()
        self.gain.setRange(1, 50)
        self.gain.setValue(DEFAULT_GAIN)
        self.gain.setSuffix("×")
        self.gain.setToolTip("magnification gain")
        self.gain.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.gain.valueChanged.connect(lambda _v: self.refresh())
        self.graphics = pg.GraphicsView(background=QColor(18, 18, 20))
        self.view_box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view_box.setMouseEnabled(x=False, y=False)
        self.graphics.setCentralItem(self.view_box)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image_item)
        self.caption = QLabel("the reference frame appears with the first frame")
        self.caption.setObjectName("subtle")
        self.caption.setWordWrap(True)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(self.mode, 1)
        controls.addWidget(self.magnifier, 1)
        controls.addWidget(self.gain)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(controls)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.caption)
        self.image: np.ndarray | None = None  # the picture drawn
        self.reference_idx: int | None = None
        self._rgb: np.ndarray | None = None
        self._frame_idx: int | None = None

        session.frame_loaded.connect(self._on_session_frame_loaded)
        session.prediction_made.connect(lambda _p: self.refresh())
        session.prediction_kept.connect(lambda _p: self.refresh())
        session.reference_changed.connect(lambda _policy, _idx: self.refresh())
        session.frame_warmed.connect(self._on_session_frame_warmed)
        session.video_opened.connect(lambda _v: self._clear())

    def _on_session_frame_loaded(self, loaded) -> None:
        self._rgb, self._frame_idx = loaded.rgb, loaded.frame_idx
        self.refresh()

    def _on_session_frame_warmed(self, frame_idx: int) -> None:
        if frame_idx == self.reference_idx and self.image is None:
            self.refresh()

    def _clear(self) -> None:
        self._rgb = self._frame_idx = self.image = self.reference_idx = None
        self.image_item.clear()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt virtual
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        """Redraw for the frame on screen (only while the view is visible)."""
        if not self.isVisible() or self._rgb is None:
            return
        reference_idx, ref_rgb = self.session.reference_pixels()
        self.reference_idx = reference_idx
        if ref_rgb is None:  # being decoded: frame_warmed redraws
            self.image = None
            self.caption.setText(
                f"loading reference frame {self.session.frames.label(reference_idx)} …")
            return
        cur, ref, how_cut = self._cut(self._rgb, ref_rgb)
        mode, how = self.mode.currentData(), self.magnifier.currentData()
        gain = float(self.gain.value())
        self.gain.setEnabled(how != "off")
        self.image = compose(cur, ref, mode, how, gain)
        self.image_item.setImage(self.image, autoLevels=False)
        self.view_box.setRange(xRange=(0, self.image.shape[1]), yRange=(0, self.image.shape[0]),
                               padding=0)
        magnified = "" if how == "off" or gain == 1 else f", {self.magnifier.currentText()} ×{gain:g}"
        what = {"side": "reference | frame", "blend": "frame + reference",
                "difference": "frame − reference"}[mode]
        label = self.session.frames.label
        self.caption.setText(f"frame {label(self._frame_idx)} vs reference {label(reference_idx)} "
                             f"({self.session.reference_policy.value}) · {what}{magnified} · "
                             f"{how_cut}")

    def _cut(self, cur_rgb: np.ndarray, ref_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        """Both frames cut with one transform: the drawn prediction's aligned crop, else whole."""
        pred, crop_px = self.session.shown_prediction, self.session.crop_size_px()
        if (pred is not None and pred.face_found and pred.crop_to_img is not None and crop_px
                and cur_rgb.shape == ref_rgb.shape):
            cut = [overlays.aligned_crop(rgb, pred.crop_to_img, crop_px, REFERENCE_DISPLAY_PX)
                   for rgb in (cur_rgb, ref_rgb)]
            cut_with = self.session.frames.label(pred.frame_idx)
            return cut[0], cut[1], f"aligned crop of frame {cut_with}"
        return np.ascontiguousarray(cur_rgb), np.ascontiguousarray(ref_rgb), "whole frames"
