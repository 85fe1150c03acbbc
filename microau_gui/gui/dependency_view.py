"""The dependency view: the frame's GDA matrix beside the project's AU co-occurrence.

Owns: `DependencyView`. May import PySide6, pyqtgraph, numpy, core and session.

Left: the GDA attention of the frame on screen (row i: how much AU i's token attends to AU j;
rows sum to 1). Right: P(AU_j | AU_i) counted over every event of the project (row i: of the
events coding AU i, the fraction that also code AU j; grey rows: AU i never coded), the
dependency the model's GDLoss prior is built from. Hovering a cell names it below the plots.

Tick labels are the AU numbers at the theme's tick size, in two levels (every other AU, then the
rest): when the matrix is too small for all of them, pyqtgraph drops the second level instead
of printing the numbers over each other.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from microau_gui.core.types import FramePrediction
from microau_gui.gui import style
from microau_gui.session.session import ProjectSession

COLOURMAP = "viridis"
NAN_COLOUR = (60, 60, 66, 255)


def _matrix_rgba(matrix: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """(n, n) values in [0, 1] (NaN allowed) -> (n, n, 4) uint8."""
    finite = np.nan_to_num(matrix, nan=0.0).clip(0, 1)
    rgba = np.empty(matrix.shape + (4,), dtype=np.uint8)  # (n, n, 4)
    rgba[..., :3] = lut[(finite * 255).astype(np.uint8)]
    rgba[..., 3] = 255
    rgba[np.isnan(matrix)] = NAN_COLOUR
    return rgba


class _MatrixPlot:
    """One labelled square heatmap inside the shared GraphicsLayoutWidget."""

    def __init__(self, layout: pg.GraphicsLayoutWidget, row: int, col: int, title: str):
        self.plot = layout.addPlot(row=row, col=col, title=title)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.invertY(True)
        self.plot.setAspectLocked(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.title = ""
        self.restyle()
        self.matrix: np.ndarray | None = None
        self.vocab: tuple[str, ...] = ()

    def restyle(self) -> None:
        font = style.tick_font(8)
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setTickFont(font)
            self.plot.getAxis(axis).setTextPen(style.current().plot_text)
        self.plot.getAxis("left").setWidth(round(24 * style.font_scale()))
        self.plot.getAxis("bottom").setHeight(round(20 * style.font_scale()))
        self.set_title(self.title)

    def set_title(self, text: str) -> None:
        self.title = text
        self.plot.setTitle(text, size=f"{round(9 * style.font_scale())}pt",
                           color=style.current().plot_text.name())

    def set_matrix(self, matrix: np.ndarray | None, vocab: tuple[str, ...], lut: np.ndarray,
                   scale_max: float = 1.0) -> None:
        self.vocab = tuple(vocab)
        ticks = [(i + 0.5, code.replace("AU", "")) for i, code in enumerate(vocab)]
        levels = [ticks[0::2], ticks[1::2]]  # the second level goes when space is short
        self.plot.getAxis("left").setTicks(levels)
        self.plot.getAxis("bottom").setTicks(levels)
        n = len(vocab)
        if matrix is None:
            matrix = np.full((n, n), np.nan, dtype=np.float32)
        self.matrix = matrix
        shown = matrix / scale_max if scale_max > 0 else matrix
        self.image.setImage(_matrix_rgba(shown, lut), autoLevels=False)
        self.image.setRect(0, 0, n, n)
        self.plot.setRange(xRange=(0, n), yRange=(0, n), padding=0.02)

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        if self.matrix is None or not self.plot.sceneBoundingRect().contains(scene_pos):
            return None
        pos = self.plot.vb.mapSceneToView(scene_pos)
        i, j = int(np.floor(pos.y())), int(np.floor(pos.x()))
        n = len(self.vocab)
        return (i, j) if 0 <= i < n and 0 <= j < n else None


class DependencyView(QWidget):
    """GDA of the frame on screen | P(AU_j | AU_i) of the project."""

    def __init__(self, session: ProjectSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.lut = np.asarray(pg.colormap.get(COLOURMAP).getLookupTable(nPts=256, alpha=False),
                              dtype=np.uint8)
        self.layout_widget = pg.GraphicsLayoutWidget()
        self.layout_widget.setBackground(style.current().plot_background)
        self.gda = _MatrixPlot(self.layout_widget, 0, 0, "")
        self.cooc = _MatrixPlot(self.layout_widget, 0, 1, "")
        self.colour_bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get(COLOURMAP),
                                          interactive=False, width=10)
        self.layout_widget.addItem(self.colour_bar, row=0, col=2)
        self.hover = QLabel("rows: AU i, columns: AU j — hover a cell to read it")
        self.hover.setObjectName("subtle")
        self.hover.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.layout_widget, 1)
        layout.addWidget(self.hover)
        self.layout_widget.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)
        self._cooc_timer = QTimer(self)
        self._cooc_timer.setSingleShot(True)
        self._cooc_timer.setInterval(200)  # many edits in a row (an import) recount once
        self._cooc_timer.timeout.connect(self.refresh_cooccurrence)
        self._gda_max = 1.0

        session.prediction_made.connect(self._on_session_prediction_made)
        session.prediction_kept.connect(self._on_session_prediction_made)
        session.prediction_cleared.connect(lambda: self._show_gda(None))
        session.events_changed.connect(self._cooc_timer.start)
        session.model_loaded.connect(lambda _m: self.refresh_cooccurrence())
        session.project_opened.connect(lambda _p: self.refresh_cooccurrence())
        self._show_gda(None)

    def restyle(self) -> None:
        """The theme or the font scale changed (gui.view_menu)."""
        self.layout_widget.setBackground(style.current().plot_background)
        self.gda.restyle()
        self.cooc.restyle()

    def _on_session_prediction_made(self, prediction: FramePrediction) -> None:
        self._show_gda(prediction)

    def _show_gda(self, prediction: FramePrediction | None) -> None:
        vocab = self.session.vocab
        if prediction is None or prediction.gda is None:
            self.gda.set_matrix(None, vocab, self.lut)
            self.gda.set_title("GDA: no prediction yet")
            return
        matrix = np.asarray(prediction.gda, dtype=np.float32)  # (n_au, n_au)
        # Rows of attention sum to 1, so values sit near 1/n: scale to the matrix's own maximum.
        self._gda_max = float(np.nanmax(matrix)) if matrix.size else 1.0
        self.gda.set_matrix(matrix, prediction.vocab, self.lut, self._gda_max)
        # An earlier frame's (playback outran the model): kept, faded and said, never emptied.
        faded = prediction.frame_idx != self.session.displayed_frame_idx
        self.gda.image.setOpacity(0.45 if faded else 1.0)
        self.gda.set_title(f"GDA, frame {self.session.frames.label(prediction.frame_idx)}"
                           + (" (faded: last prediction)" if faded
                              else f" (max {self._gda_max:.2f})"))

    def refresh_cooccurrence(self) -> None:
        cond, support = self.session.cooccurrence()
        self.cooc.set_matrix(cond, self.session.vocab, self.lut)
        n_events = len(self.session.project.events()) if self.session.project is not None else 0
        self.cooc.set_title(f"P(j | i), {n_events} events")

    def _on_scene_mouse_moved(self, scene_pos: QPointF) -> None:
        for plot, what in ((self.gda, "GDA"), (self.cooc, "P")):
            cell = plot.cell_at(scene_pos)
            if cell is None:
                continue
            i, j = cell
            value = plot.matrix[i, j]
            text = "never coded" if np.isnan(value) else f"{value:.3f}"
            if what == "GDA":
                self.hover.setText(f"GDA: {plot.vocab[i]} attends to {plot.vocab[j]}: {text}")
            else:
                self.hover.setText(f"P({plot.vocab[j]} | {plot.vocab[i]}) = {text}")
            return
