"""The frame-loader worker: decodes the frame the playhead is on, newest request first.

Owns: `FrameLoaderWorker`. May import media, core, the session's messages/workers and
PySide6.QtCore. Runs in its own QThread (see session.workers); the frame source it opens is used
only on that thread (frame sources are not thread-safe).
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot

from microau_gui.session.messages import FrameLoaded, FrameRequest
from microau_gui.session.workers import LatestOnly, OpenMedia, Worker

# Frames kept decoded: a scrub back and forth around the playhead hits the cache, and a 200 fps
# event of ~100 frames loops (ping-pong) without decoding twice.
CACHE_FRAMES = 160


class FrameLoaderWorker(Worker):
    """Decodes frames for display; while the user scrubs only the newest request is decoded."""

    frame_loaded = Signal(object)  # FrameLoaded

    def __init__(self):
        super().__init__()
        self._media = OpenMedia(CACHE_FRAMES)
        self._mailbox = LatestOnly(self._load_now)

    @Slot(object)
    def load(self, request: FrameRequest) -> None:
        self._mailbox.put(request)

    def _load_now(self, request: FrameRequest) -> None:
        self.guarded(f"loading frame {request.frame_idx}", self._decode, request)

    def _decode(self, request: FrameRequest) -> None:
        source = self._media.source(request.media)
        rgb = source.read(request.frame_idx)
        self.frame_loaded.emit(FrameLoaded(
            request_id=request.request_id, video_id=request.media.video_id,
            frame_idx=request.frame_idx, rgb=rgb, t_s=source.time_s(request.frame_idx),
            requested_at_s=request.requested_at_s,
        ))

    @Slot()
    def shutdown(self) -> None:
        self._mailbox.take()
        self._media.close()
