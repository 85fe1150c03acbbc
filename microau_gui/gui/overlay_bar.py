"""The overlay and reference controls of the toolbar.

Owns: `OverlayBar`. May import PySide6, core and session. The four overlay toggles are the
window's checkable QActions (keys H, G, M, B); the bar adds the heatmap opacity, which AU's
heatmap to show, and the reference-frame policy.

Which heatmap (issue 16: "max over AUs" lit the whole face): by default `HEATMAP_AUTO`, the AU
under the mouse in the video, else the focused AU of the AU panel, else the frame's most probable
AU (the window resolves it: `MainWindow.sync_overlays`); "max over AUs" and each AU stay choices.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QToolButton, QWidget

from microau_gui.core.au import au_info
from microau_gui.session.session import ProjectSession

REFERENCE_CHOICES = (
    ("sliding", "sliding, t − 0.2 s"),
    ("onset", "event onset"),
    ("fixed", "fixed frame (R)"),
)
HEATMAP_AUTO = "auto"  # heatmap choice: the AU under the mouse / the focused AU / the most probable
HEATMAP_MAX = "max"  # heatmap choice: the maximum over AUs
BUTTON_TEXT = {"heatmap": "Heatmap", "regions": "Regions", "landmarks": "Landmarks",
               "face_box": "Face box"}


class OverlayBar(QWidget):
    """Emits `changed()` when any overlay setting moved; the window reads `state()`."""

    changed = Signal()

    def __init__(self, session: ProjectSession, actions: dict[str, QAction],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.actions = actions
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # Compact (no "Overlays"/"opacity" captions, narrow boxes): model bar and overlays share
        # one toolbar row that fits a 1280 px window; the tooltips name each control.
        for name, text in BUTTON_TEXT.items():
            actions[name].setIconText(text)
            button = QToolButton()
            button.setDefaultAction(actions[name])
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            layout.addWidget(button)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity.setFixedWidth(70)
        self.opacity.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.opacity.setToolTip("heatmap opacity")
        self.opacity.valueChanged.connect(lambda _v: self.changed.emit())
        self.heatmap_au = QComboBox()
        self.heatmap_au.setToolTip("whose PTA heatmap: the AU under the mouse, else the focused "
                                   "AU, else the most probable one; the maximum over all AUs; or "
                                   "one AU (Tab cycles)")
        self.heatmap_au.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.heatmap_au.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.heatmap_au.setMinimumContentsLength(8)
        self.heatmap_au.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.reference = QComboBox()
        for policy, label in REFERENCE_CHOICES:
            self.reference.addItem(label, policy)
        self.reference.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.reference.setMinimumContentsLength(10)
        self.reference.setToolTip("the frame each prediction measures motion against")
        self.reference.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.reference.activated.connect(self._on_reference_activated)
        layout.addWidget(self.opacity)
        layout.addWidget(QLabel("heatmap of"))
        layout.addWidget(self.heatmap_au)
        layout.addSpacing(10)
        layout.addWidget(QLabel("Reference"))
        layout.addWidget(self.reference)
        self.set_vocab(session.vocab)

    def set_vocab(self, vocab: tuple[str, ...]) -> None:
        current = self.heatmap_au.currentData()
        self.heatmap_au.blockSignals(True)
        self.heatmap_au.clear()
        self.heatmap_au.addItem("AU under mouse / focused", HEATMAP_AUTO)
        self.heatmap_au.addItem("max over AUs", HEATMAP_MAX)
        for code in vocab:
            self.heatmap_au.addItem(f"{code} {au_info(code).name}", code)
        index = self.heatmap_au.findData(current) if current else 0
        self.heatmap_au.setCurrentIndex(max(0, index))
        self.heatmap_au.blockSignals(False)

    def cycle_au(self, step: int) -> None:
        n = self.heatmap_au.count()
        self.heatmap_au.setCurrentIndex((self.heatmap_au.currentIndex() + step) % n)

    def state(self) -> dict:
        """Keyword arguments for `VideoView.set_overlays`; `heatmap_au` is the choice as made
        (`HEATMAP_AUTO`, `HEATMAP_MAX` or a code), which the window resolves."""
        return {
            "heatmap": self.actions["heatmap"].isChecked(),
            "regions": self.actions["regions"].isChecked(),
            "landmarks": self.actions["landmarks"].isChecked(),
            "face_box": self.actions["face_box"].isChecked(),
            "heatmap_opacity": self.opacity.value() / 100.0,
            "heatmap_au": self.heatmap_au.currentData(),
        }

    def _on_reference_activated(self, index: int) -> None:
        self.session.set_reference_policy(self.reference.itemData(index))
