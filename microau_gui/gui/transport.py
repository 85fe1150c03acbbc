"""The transport bar under the video: play, step, speed, loop, go-to-frame and a frame-exact slider.

Owns: `TransportBar`. May import PySide6 and session. Buttons trigger the window's QActions, so
a button, its menu item and its key always do the same thing.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QSpinBox, QToolButton, QVBoxLayout, QWidget

from microau_gui.session.playback import SPEEDS, speed_label
from microau_gui.session.session import ProjectSession


class TransportBar(QWidget):
    """Playback controls; `actions` maps action names (see gui.actions) to the window's QActions."""

    def __init__(self, session: ProjectSession, actions: dict[str, QAction],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.setSingleStep(1)
        self.slider.setPageStep(10)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the window's shortcuts
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.frame_box = QSpinBox()
        self.frame_box.setRange(0, 0)
        self.frame_box.setKeyboardTracking(False)
        self.frame_box.setToolTip("go to frame (type a number and press Enter)")
        self.frame_box.setMinimumWidth(64)
        self.frame_box.valueChanged.connect(self._on_frame_box_value_changed)
        self.total = QLabel("/ 0")
        self.time = QLabel("0.000 s")
        self.time.setObjectName("mono")
        self.speed = QComboBox()
        for speed in SPEEDS:
            self.speed.addItem(speed_label(speed), speed)
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.setToolTip("playback speed ([ slower, ] faster); time runs at this speed, "
                              "frames the decoder cannot deliver in time are skipped")
        self.speed.activated.connect(lambda i: session.set_speed(self.speed.itemData(i)))

        buttons = QHBoxLayout()
        buttons.setSpacing(2)
        for name in ("back10", "back1", "play", "forward1", "forward10", "loop"):
            button = QToolButton()
            button.setDefaultAction(actions[name])
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setMinimumWidth(44)
            buttons.addWidget(button)
        self.play_button = buttons.itemAt(2).widget()
        buttons.addSpacing(12)
        buttons.addWidget(QLabel("frame"))
        buttons.addWidget(self.frame_box)
        buttons.addWidget(self.total)
        buttons.addStretch(1)
        buttons.addWidget(QLabel("speed"))
        buttons.addWidget(self.speed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.setSpacing(2)
        slider_row = QHBoxLayout()  # the time beside the slider: the button row stays narrow
        slider_row.addWidget(self.slider, 1)
        slider_row.addWidget(self.time)
        layout.addLayout(slider_row)
        layout.addLayout(buttons)

        session.video_opened.connect(self._on_session_video_opened)
        session.position_changed.connect(self._on_session_position_changed)
        session.speed_changed.connect(self._on_session_speed_changed)

    def _on_session_video_opened(self, video) -> None:
        for widget in (self.slider, self.frame_box):
            widget.blockSignals(True)
            widget.setRange(0, max(0, video.n_frames - 1))
            widget.setValue(0)
            widget.blockSignals(False)
        self.total.setText(f"/ {video.n_frames - 1}")

    def _on_session_position_changed(self, frame_idx: int) -> None:
        for widget in (self.slider, self.frame_box):
            widget.blockSignals(True)
            widget.setValue(frame_idx)
            widget.blockSignals(False)
        fps = self.session.fps or 1.0
        self.time.setText(f"{frame_idx / fps:8.3f} s")

    def _on_session_speed_changed(self, speed: float) -> None:
        self.speed.setCurrentIndex(min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - speed)))

    def _on_slider_value_changed(self, value: int) -> None:
        self.session.pause()
        self.session.seek(value)

    def _on_frame_box_value_changed(self, value: int) -> None:
        self.session.pause()
        self.session.seek(value)
