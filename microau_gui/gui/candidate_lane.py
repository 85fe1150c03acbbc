"""The timeline's candidate lane: the open video's spotted candidates, coloured by the coder's mark.

Owns: `CandidateLane`, the lane colours. May import PySide6, pyqtgraph and session values. It
draws into the TimelineView's plot (lane `lane`, the same frame/lane coordinates) and edits
nothing: a click makes the candidate the review queue's current item (ReviewController.go_to).

Colours: pending amber, accepted green, rejected grey; the current item has a bright outline.
A candidate's label is its rank in the queue (#1 is the highest score).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from microau_gui.session.review import CANDIDATES, ItemStatus, ReviewController

STATUS_COLOURS = {
    ItemStatus.PENDING: QColor(255, 170, 40),
    ItemStatus.ACCEPTED: QColor(70, 200, 110),
    ItemStatus.REJECTED: QColor(120, 120, 128),
}
CURRENT_PEN = QColor(255, 255, 255)


class _CandidateRect(QGraphicsRectItem):
    """One candidate; pyqtgraph's scene hands it left clicks (`mouseClickEvent`)."""

    def __init__(self, rect: QRectF, on_click):
        super().__init__(rect)
        self._on_click = on_click

    def mouseClickEvent(self, ev):  # noqa: N802 - pyqtgraph virtual
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            # Going to the item rebuilds the lane, this rect included: not inside its handler.
            QTimer.singleShot(0, self._on_click)


class CandidateLane:
    """Draws the candidates queue of the open video on one lane of a timeline plot."""

    def __init__(self, plot: pg.PlotItem, review: ReviewController, lane: int,
                 frame_label=lambda *frame_idxs: "–".join(map(str, frame_idxs))):
        self.plot = plot
        self.frame_label = frame_label  # (*frame_idx) -> the frames in the chosen numbering
        self.review = review
        self.lane = lane
        self.rects: dict[int, _CandidateRect] = {}  # queue index -> rect
        self._labels: list[pg.TextItem] = []
        self.hidden = False  # blind coding mode: the model's candidates are not shown
        review.queue_changed.connect(self._on_review_queue_changed)
        review.current_changed.connect(lambda name, _i: self._on_review_queue_changed(name))

    def _on_review_queue_changed(self, name: str) -> None:
        if name == CANDIDATES:
            self.refresh()

    def refresh(self) -> None:
        for item in [*self.rects.values(), *self._labels]:
            self.plot.removeItem(item)
        self.rects = {}
        self._labels = []
        video = self.review.video
        queue = self.review.queues[CANDIDATES]
        if video is None or self.hidden:
            return
        for index, item in enumerate(queue.items):
            if item.video_id != video.id:
                continue
            current = index == queue.current and self.review.active == CANDIDATES
            colour = STATUS_COLOURS[queue.status(index)]
            rect = _CandidateRect(QRectF(item.onset - 0.5, self.lane + 0.12,
                                         item.offset - item.onset + 1, 0.76),
                                  lambda i=index: self.review.go_to(i, CANDIDATES))
            rect.setBrush(QBrush(QColor(colour.red(), colour.green(), colour.blue(),
                                        150 if current else 85)))
            pen = QPen(CURRENT_PEN if current else colour, 2.5 if current else 1.2)
            pen.setCosmetic(True)
            rect.setPen(pen)
            rect.setZValue(66 if current else 64)
            frames = self.frame_label(item.onset, item.apex, item.offset)
            rect.setToolTip(f"#{index + 1} {item.kind} {frames}, score "
                            f"{item.score:.1f} — {queue.status(index).value}")
            self.plot.addItem(rect)
            self.rects[index] = rect
            label = pg.TextItem(f"#{index + 1}", anchor=(0, 0.5), color=QColor(245, 245, 245))
            label.setFont(QFont("DejaVu Sans", 7))
            label.setPos(item.onset - 0.5, self.lane + 0.5)
            label.setZValue(67)
            self.plot.addItem(label)
            self._labels.append(label)
