"""The playback clock: which frame is due now, driven by elapsed time, not by decoding speed.

Owns: `SPEEDS`, `playback_position` and `loop_heading_back` (pure) and `PlaybackClock` (a QObject with a timer). May import
PySide6.QtCore and the standard library.

A 200 fps clip played at 1x needs a new frame every 5 ms, which neither decoding nor the screen
can keep up with. The clock therefore computes the due frame from the time elapsed since play was
pressed (frame = start + elapsed * fps * speed) on every tick of a ~60 Hz timer and emits it only
when it changed; frames the loader could not deliver in time are simply never shown (the frame
loader keeps only the newest request). Time is never slowed down to wait for frames.

Ping-pong loop: with a loop range (onset, offset) the position runs onset -> offset -> onset ...
for as long as playback lasts.

Reverse play (jog/shuttle, issue 16): the position runs backwards from the anchor and stops on
frame 0; in a loop, reverse starts on the return leg.
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QObject, Qt, QTimer, Signal

SPEEDS: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0)
TICK_MS = 15  # ~66 Hz: at least one tick per display refresh


def speed_label(speed: float) -> str:
    """"1/32x", "1/2x", "1x", "2x"."""
    if speed >= 1:
        return f"{speed:g}x"
    return f"1/{round(1 / speed)}x"


def playback_position(elapsed_s: float, start_idx: int, fps: float, speed: float, n_frames: int,
                      loop: tuple[int, int] | None = None, backward: bool = False,
                      reverse: bool = False) -> tuple[int, bool]:
    """(frame_idx due after `elapsed_s` of playback, whether playback reached its end).

    Without a loop, playback stops on the last frame (`reverse`: on frame 0). With `loop=(a, b)` the position bounces
    between a and b (ping-pong) and never finishes; a start outside [a, b] starts at a, and
    `backward` says the start is on the return leg (b -> a).
    """
    advanced = max(0.0, elapsed_s) * fps * speed  # frames (fractional)
    if loop is None and reverse:
        frame_idx = start_idx - math.floor(advanced + 1e-9)
        return (0, True) if frame_idx <= 0 else (frame_idx, False)
    if loop is None:
        frame_idx = start_idx + math.floor(advanced + 1e-9)
        if frame_idx >= n_frames - 1:
            return n_frames - 1, True
        return frame_idx, False
    first, last = loop
    length = last - first
    if length <= 0:
        return first, False
    phase = _loop_phase(advanced, start_idx, loop, backward)
    return first + (phase if phase <= length else 2 * length - phase), False


def loop_heading_back(elapsed_s: float, start_idx: int, fps: float, speed: float,
                      loop: tuple[int, int], backward: bool = False) -> bool:
    """Whether the ping-pong position of `playback_position` is on its return leg (b -> a)."""
    length = loop[1] - loop[0]
    advanced = max(0.0, elapsed_s) * fps * speed
    return length > 0 and _loop_phase(advanced, start_idx, loop, backward) > length


def _loop_phase(advanced: float, start_idx: int, loop: tuple[int, int], backward: bool) -> int:
    """Whole frames along the bounce a -> b -> a, in [0, 2 (b - a))."""
    first, last = loop
    length = last - first
    offset = (start_idx if first <= start_idx <= last else first) - first
    start_phase = (2 * length - offset) % (2 * length) if backward else offset
    return math.floor(start_phase + advanced + 1e-9) % (2 * length)


class PlaybackClock(QObject):
    """Emits `frame_reached(frame_idx)` while playing; `playing_changed(bool)` on play/pause."""

    frame_reached = Signal(int)
    playing_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._fps = 30.0
        self._n_frames = 1
        self._speed = 1.0
        self._loop: tuple[int, int] | None = None
        self._start_idx = 0
        self._started_at_s = 0.0
        self._last_idx = 0
        self._backward = False  # on the return leg of the ping-pong loop at the anchor
        self._reverse = False  # playing backwards (no loop)

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def reverse(self) -> bool:
        return self._reverse

    @property
    def loop(self) -> tuple[int, int] | None:
        return self._loop

    def set_media(self, fps: float, n_frames: int) -> None:
        self.pause()
        self._fps = fps if fps > 0 else 30.0
        self._n_frames = max(1, n_frames)

    def play(self, from_idx: int, reverse: bool = False) -> None:
        if self.playing:
            return
        self._reverse = reverse
        if self._loop is None and not reverse and from_idx >= self._n_frames - 1:
            from_idx = 0  # play at the end starts over, as every player does
        if self._loop is None and reverse and from_idx <= 0:
            from_idx = self._n_frames - 1  # and reverse at the start from the end
        if self._loop is not None and reverse:
            self._backward = True  # in a loop, reverse runs the return leg first
        self._anchor(from_idx)
        self._timer.start()
        self.playing_changed.emit(True)

    def pause(self) -> None:
        if not self.playing:
            return
        self._anchor(self._last_idx)  # remember the loop's direction for the next play
        self._timer.stop()
        self.playing_changed.emit(False)

    def set_speed(self, speed: float) -> None:
        """Change speed; while playing, continue from the frame reached (no jump)."""
        self._anchor(self._last_idx)  # at the old speed: where the bounce is and which way it goes
        self._speed = speed

    def jump_to(self, frame_idx: int) -> None:
        """The user moved the playhead: while playing, continue from there."""
        self._anchor(frame_idx)

    def set_loop(self, loop: tuple[int, int] | None) -> None:
        self._loop = loop
        self._backward = False
        self._anchor(self._last_idx)

    def _anchor(self, frame_idx: int) -> None:
        """Continue from `frame_idx` from now on, keeping the loop's direction (a speed change or
        a seek on the way back must not turn the bounce around)."""
        if self._loop is not None and self.playing:
            self._backward = loop_heading_back(time.perf_counter() - self._started_at_s,
                                               self._start_idx, self._fps, self._speed, self._loop,
                                               self._backward)
        self._start_idx = frame_idx
        self._last_idx = frame_idx
        self._started_at_s = time.perf_counter()

    def _on_timer_timeout(self) -> None:
        elapsed_s = time.perf_counter() - self._started_at_s
        frame_idx, finished = playback_position(elapsed_s, self._start_idx, self._fps,
                                                self._speed, self._n_frames, self._loop,
                                                self._backward, self._reverse)
        if frame_idx != self._last_idx:
            self._last_idx = frame_idx
            self.frame_reached.emit(frame_idx)
        if finished:
            self.pause()
