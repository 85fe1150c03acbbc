"""The transport bar under the video: play, step, speed, loop, go-to-frame and a frame-exact slider.

Owns: `TransportBar`, `FrameBox`. May import PySide6 and session. Buttons trigger the window's
QActions, so a button, its menu item and its key always do the same thing. The frame box, the
total and the clock show the coder's chosen numbering (session.numbering); the slider and the
box's value stay frame_idx.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QValidator
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QSpinBox, QToolButton, QVBoxLayout, QWidget

from microau_gui.session.numbering import FrameLabels
from microau_gui.session.playback import SPEEDS, speed_label
from microau_gui.session.session import ProjectSession


class FrameBox(QSpinBox):
    """Go to frame: its value is a frame_idx, its text the frame's number under the chosen
    numbering. A typed number that falls in a gap of the numbering goes to the nearest frame."""

    def __init__(self, labels, parent: QWidget | None = None):
        super().__init__(parent)
        self._labels = labels  # () -> FrameLabels of the open video

    def textFromValue(self, value: int) -> str:  # noqa: N802 - Qt virtual
        labels: FrameLabels = self._labels()
        return labels.label(value) if labels.n_frames else str(value)

    def valueFromText(self, text: str) -> int:  # noqa: N802 - Qt virtual
        labels: FrameLabels = self._labels()
        try:
            number = int(text.strip())
        except ValueError:
            return self.value()
        return labels.frame_of(number) if labels.n_frames else number

    def validate(self, text: str, pos: int):  # noqa: N802 - Qt virtual
        # Any whole number is acceptable: the numbers need not lie in the value (frame_idx) range.
        stripped = text.strip()
        if stripped in ("", "-"):
            return QValidator.State.Intermediate, text, pos
        try:
            int(stripped)
        except ValueError:
            return QValidator.State.Invalid, text, pos
        return QValidator.State.Acceptable, text, pos


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
        self.frame_box = FrameBox(lambda: session.frames)
        self.frame_box.setRange(0, 0)
        self.frame_box.setKeyboardTracking(False)
        self.frame_box.setToolTip("go to frame (type a number and press Enter)")
        self.frame_box.setMinimumWidth(64)
        self.frame_box.valueChanged.connect(self._on_frame_box_value_changed)
        self.total = QLabel("/ 0")
        self.time = QLabel("00:00:00.000")
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
        session.numbering.changed.connect(self._on_numbering_changed)

    def _on_session_video_opened(self, video) -> None:
        for widget in (self.slider, self.frame_box):
            widget.blockSignals(True)
            widget.setRange(0, max(0, video.n_frames - 1))
            widget.setValue(0)
            widget.blockSignals(False)
        self._on_numbering_changed()

    def _on_numbering_changed(self) -> None:
        frames = self.session.frames
        self.total.setText(f"/ {frames.label(frames.n_frames - 1)}" if frames.n_frames else "/ 0")
        self.frame_box.setToolTip(f"go to frame (type a number and press Enter); numbering: "
                                  f"{frames.numbering.title} (View > Frame numbering)")
        self.frame_box.blockSignals(True)
        self.frame_box.lineEdit().setText(self.frame_box.textFromValue(self.frame_box.value()))
        self.frame_box.blockSignals(False)
        self.time.setText(frames.timecode(self.frame_box.value()))

    def _on_session_position_changed(self, frame_idx: int) -> None:
        for widget in (self.slider, self.frame_box):
            widget.blockSignals(True)
            widget.setValue(frame_idx)
            widget.blockSignals(False)
        self.time.setText(self.session.frames.timecode(frame_idx))

    def _on_session_speed_changed(self, speed: float) -> None:
        self.speed.setCurrentIndex(min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - speed)))

    def _on_slider_value_changed(self, value: int) -> None:
        self.session.pause()
        self.session.seek(value)

    def _on_frame_box_value_changed(self, value: int) -> None:
        self.session.pause()
        self.session.seek(value)
