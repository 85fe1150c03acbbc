"""The session's playhead part: which video is open, which frame is asked for and which is shown,
and playback.

Owns: `Playhead` (the session's `playhead`). May import the session's frame loader, messages,
playback clock, jobs (`RequestIds`) and workers, media, core and PySide6.QtCore; never gui,
never another session part.

Threads: it owns the FrameLoaderWorker's QThread and reads the lock-guarded `DecodedFrames` the
loader fills (a frame already decoded is drawn without a thread hop; see session.frame_loader).

Frame names: every request carries `frame_label`, the labels of the user's numbering at the
time (the session sets it; see session.numbering), so the loader's messages name frames as the
coder sees them.

Stale answers: a decoded frame is shown unless it is from another video or older than the frame
on screen (during playback every newer frame is worth showing; the loader itself skips to the
newest request, so the last frame asked for is always the last one shown).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from microau_gui.session.frame_loader import DecodedFrames, FrameLoaderWorker
from microau_gui.session.jobs import RequestIds
from microau_gui.session.messages import (
    FrameLabel,
    FrameLoaded,
    FrameRequest,
    MediaRef,
    ProxyReady,
    index_label,
)
from microau_gui.session.playback import SPEEDS, PlaybackClock
from microau_gui.session.workers import WorkerThread


class Playhead(QObject):
    """The open media, the playhead and the playback clock."""

    position_changed = Signal(int)  # the playhead moved to this frame_idx (requested)
    moved = Signal()  # after position_changed and the frame request: ask for its prediction
    frame_loaded = Signal(object)  # FrameLoaded accepted for display
    playing_changed = Signal(bool)
    speed_changed = Signal(float)
    loop_changed = Signal(bool)
    failed = Signal(str)
    frame_warmed = Signal(int)  # this frame_idx of the open media was decoded for `pixels`
    _frame_requested = Signal(object)
    _warm_requested = Signal(object, int, object)  # (media, frame_idx, FrameLabel)
    _proxy_ready = Signal(object)  # ProxyReady, to the loader (and whoever else connects)

    def __init__(self, ids: RequestIds, parent: QObject | None = None):
        super().__init__(parent)
        self._ids = ids
        self.media: MediaRef | None = None
        self.frame_idx = 0  # the playhead (last requested frame)
        self.displayed_frame_idx: int | None = None  # the frame on screen
        self._shown_frame_request = 0
        # How requests name frames in the workers' messages: the user's numbering of the open
        # media (the session sets it from session.numbering whenever that changes); 0-based
        # indices, said so, until it does.
        self.frame_label: FrameLabel = index_label
        self.clock = PlaybackClock(self)
        self.clock.frame_reached.connect(self._on_clock_frame_reached)
        self.clock.playing_changed.connect(self.playing_changed)
        self.decoded = DecodedFrames()  # filled by the loader, read here: see session.frame_loader
        self.loader = WorkerThread(FrameLoaderWorker(self.decoded), "frame-loader")
        self._frame_requested.connect(self.loader.worker.load)
        self.loader.worker.frame_loaded.connect(self._on_loader_frame_loaded)
        self.loader.worker.failed.connect(self.failed)
        self._warm_requested.connect(self.loader.worker.warm)
        self.loader.worker.frame_warmed.connect(self._on_loader_frame_warmed)
        self._proxy_ready.connect(self.loader.worker.use_proxy)

    @property
    def proxy_ready(self) -> Signal:
        """Emitted with `ProxyReady` when the open video's seek proxy exists."""
        return self._proxy_ready

    @property
    def n_frames(self) -> int:
        return self.media.n_frames if self.media is not None else 0

    @property
    def fps(self) -> float:
        return self.media.fps if self.media is not None else 0.0

    @property
    def playing(self) -> bool:
        return self.clock.playing

    @property
    def speed(self) -> float:
        return self.clock.speed

    @property
    def looping(self) -> bool:
        return self.clock.loop is not None

    # -- media ---------------------------------------------------------------------------------

    def set_media(self, media: MediaRef | None) -> bool:
        """Show `media` (None: nothing); returns True when it differs from the open one (its
        decoded frames were dropped: a relinked file may differ)."""
        self.pause()
        changed = media != self.media
        if changed:
            self.decoded.clear()
        self.media = media
        self.displayed_frame_idx = None
        self._shown_frame_request = self._ids.last
        if media is not None:
            self.clock.set_media(media.fps, media.n_frames)
        return changed

    def clear(self) -> None:
        """The project closed: no media, and decoded frames go (video ids are per project)."""
        self.media = None
        self.displayed_frame_idx = None
        self.decoded.clear()

    def use_proxy(self, media: MediaRef, proxy: Path) -> None:
        """The workers read `media` through its just-built seek proxy from their next read;
        decoded frames stay: the proxy's pixels are the original's."""
        self._proxy_ready.emit(ProxyReady(media, proxy))

    # -- the playhead --------------------------------------------------------------------------

    def seek(self, frame_idx: int) -> None:
        """Move the playhead (playback, if on, continues from there)."""
        if self.media is None:
            return
        frame_idx = max(0, min(int(frame_idx), self.n_frames - 1))
        if self.playing:
            self.clock.jump_to(frame_idx)
        self._go_to(frame_idx)

    def _go_to(self, frame_idx: int) -> None:
        """Show the frame (at once when already decoded, else through the loader), then `moved`."""
        self.frame_idx = frame_idx
        requested_at_s = time.perf_counter()
        self.position_changed.emit(frame_idx)
        request = FrameRequest(self._ids.next(), self.media, frame_idx, requested_at_s,
                               self.frame_label)
        hit = self.decoded.get(self.media.video_id, frame_idx)
        if hit is not None:
            rgb, t_s = hit
            self._on_loader_frame_loaded(FrameLoaded(request.request_id, self.media.video_id,
                                                     frame_idx, rgb, t_s, requested_at_s))
            request = replace(request, shown=True)  # the loader only reads ahead
        self._frame_requested.emit(request)
        self.moved.emit()

    def pixels(self, frame_idx: int):
        """The decoded RGB of a frame of the open media (not shown), or None: it is then decoded
        in the background and `frame_warmed(frame_idx)` follows."""
        if self.media is None or not 0 <= frame_idx < self.n_frames:
            return None
        hit = self.decoded.get(self.media.video_id, frame_idx)
        if hit is not None:
            return hit[0]
        self._warm_requested.emit(self.media, frame_idx, self.frame_label)
        return None

    def _on_loader_frame_warmed(self, video_id: int, frame_idx: int) -> None:
        if self.media is not None and video_id == self.media.video_id:
            self.frame_warmed.emit(frame_idx)

    def step(self, n_frames: int) -> None:
        self.pause()
        self.seek(self.frame_idx + n_frames)

    def play(self, reverse: bool = False) -> None:
        if self.media is not None:
            self.clock.play(self.frame_idx, reverse)

    def shuttle(self, direction: int) -> None:
        """J / L of a jog-shuttle (here Shift+J / Shift+L): play that way (-1 back, +1 forward);
        pressed again while already playing that way, one speed step faster; the other way
        turns round at the same speed. 0 (Shift+K) pauses."""
        if direction == 0 or self.media is None:
            self.pause()
            return
        reverse = direction < 0
        if self.playing and self.clock.reverse == reverse:
            self.change_speed(1)
            return
        self.pause()
        self.play(reverse)

    def pause(self) -> None:
        self.clock.pause()

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    def set_speed(self, speed: float) -> None:
        self.clock.set_speed(speed)
        self.speed_changed.emit(speed)

    def change_speed(self, steps: int) -> None:
        """One step slower (-1) or faster (+1) along SPEEDS (1/32x ... 2x)."""
        nearest = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - self.speed))
        self.set_speed(SPEEDS[max(0, min(len(SPEEDS) - 1, nearest + steps))])

    def set_loop(self, span: tuple[int, int] | None) -> None:
        """Ping-pong over `span` (onset, offset) while playing; None: no loop."""
        changed = (span is not None) != self.looping
        self.clock.set_loop(span)
        if changed:
            self.loop_changed.emit(span is not None)

    def _on_clock_frame_reached(self, frame_idx: int) -> None:
        if self.media is not None:
            self._go_to(frame_idx)

    def _on_loader_frame_loaded(self, loaded: FrameLoaded) -> None:
        if (self.media is None or loaded.video_id != self.media.video_id
                or loaded.request_id <= self._shown_frame_request):
            return
        self._shown_frame_request = loaded.request_id
        self.displayed_frame_idx = loaded.frame_idx
        self.frame_loaded.emit(loaded)

    def close(self) -> None:
        self.clock.pause()
        self.loader.stop()
