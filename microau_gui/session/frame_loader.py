"""The frame-loader worker and the decoded frames it shares with the GUI thread.

Owns: `FrameLoaderWorker`, `DecodedFrames`. May import media, core, the session's
messages/workers and PySide6.QtCore. The worker runs in its own QThread (see session.workers);
the frame source it opens is used only on that thread (frame sources are not thread-safe).

How a frame reaches the screen:
- The playhead (session.playhead) first looks in `DecodedFrames`, a small lock-guarded LRU of
  decoded frames the loader filled. A hit is drawn at once on the GUI thread: no thread hop, no decode.
- Otherwise the request goes to the loader, newest request first (`LatestOnly`); it decodes the
  frame, puts it in `DecodedFrames` and answers with `FrameLoaded`.
- Read-ahead: after either, once no newer request waits, the loader decodes the next few frames
  into `DecodedFrames`, one per event-loop turn (so a new request waits at most one frame's
  decode). Stepping forward and playback then find their frame decoded. Only forward: frames
  behind the playhead are in the cache already when the coder came from there, and when not,
  decoding them means a seek from their keyframe, which read-ahead would only make slower.
- Read-behind: stepping back (the coder hunting for an onset with <-) to a frame not yet decoded
  costs a decode from its keyframe, and so would every further step back. So a step back that
  misses decodes the 30 frames before it in the same pass (`iter_frames` from the keyframe: one
  seek plus 30 RGB conversions, ~70-100 ms at 640x480) and keeps them: the next 30 steps back
  are drawn at once. Measured holding <- at 25 frames/s with the model running (bench `gui`
  stepping backwards): display p95 70 ms with 8 frames behind (every 9th step missed), 9.6 ms
  with 30. Then, while the coder keeps stepping back, the next 30 frames behind the decoded run
  are decoded one per event-loop turn (requests first) before the playhead gets there, so only
  the first step back of a run waits. Not for image folders (every frame is its own file) nor
  for videos read through a seek proxy (a keyframe every 4 frames), where a single read is
  already cheap.

- Frames not for display (`warm`): the reference view asks for the reference frame's pixels;
  the loader decodes it into `DecodedFrames` (newest such request only, between display
  requests) and says so with `frame_warmed(video_id, frame_idx)`; nothing is drawn.

Measured (bench `gui`, tiny model analysing in the background, stepping 25 frames/s, 640x480):
the loader's decode was 4.6 ms p50 / 12 ms p95 of the critical path and the thread hop to the
loader and back another 2-10 ms under load; a hit costs neither.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QTimer, Signal, Slot

from microau_gui.media import FrameDecodeError
from microau_gui.session.messages import FrameLoaded, FrameRequest, ProxyReady
from microau_gui.session.workers import LatestOnly, OpenMedia, Worker

# Frames kept decoded: a scrub back and forth around the playhead hits the cache, and a 200 fps
# event of ~100 frames loops (ping-pong) without decoding twice.
CACHE_FRAMES = 160
# ... but at most this many bytes: 160 frames are 147 MB at 640x480 and 1 GB at 1080p, where the
# model and everything else must still fit in the 2 GB the benchmark holds the app to.
CACHE_BYTES = 400 * 1024 * 1024
READ_AHEAD_FRAMES = 8  # frames decoded past the one on screen while idle (a quarter second at 30 fps)
READ_BEHIND_FRAMES = 30  # frames decoded before a frame stepped back to, in the same pass
# A request at most this many frames behind the previous one the loader handled is a step back.
# As many as read-behind keeps: while ← is held, the loader may skip to the newest of several
# requests (`LatestOnly`), so consecutive handled requests can lie that far apart.
BACKWARD_STEP_MAX = READ_BEHIND_FRAMES


class DecodedFrames:
    """Decoded frames by (video_id, frame_idx), least recently used dropped first once more than
    `capacity` frames or `max_bytes` are held.

    Written by the loader thread, read by the GUI thread; one lock guards the dictionary. The
    arrays are read-only (media frame sources hand out read-only arrays), so sharing them is safe.
    """

    def __init__(self, capacity: int = CACHE_FRAMES, max_bytes: int = CACHE_BYTES):
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.n_bytes = 0
        self._lock = threading.Lock()
        self._frames: OrderedDict[tuple[int, int], tuple[np.ndarray, float]] = OrderedDict()

    def get(self, video_id: int, frame_idx: int) -> tuple[np.ndarray, float] | None:
        """(rgb, t_s) of a decoded frame, or None."""
        key = (video_id, frame_idx)
        with self._lock:
            hit = self._frames.get(key)
            if hit is not None:
                self._frames.move_to_end(key)
            return hit

    def put(self, video_id: int, frame_idx: int, rgb: np.ndarray, t_s: float) -> None:
        key = (video_id, frame_idx)
        with self._lock:
            old = self._frames.pop(key, None)
            if old is not None:
                self.n_bytes -= old[0].nbytes
            self._frames[key] = (rgb, t_s)
            self.n_bytes += rgb.nbytes
            while len(self._frames) > 1 and (len(self._frames) > self.capacity
                                             or self.n_bytes > self.max_bytes):
                self.n_bytes -= self._frames.popitem(last=False)[1][0].nbytes

    def __contains__(self, key: tuple[int, int]) -> bool:
        with self._lock:
            return key in self._frames

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self.n_bytes = 0


class FrameLoaderWorker(Worker):
    """Decodes frames for display; while the user scrubs only the newest request is decoded."""

    frame_loaded = Signal(object)  # FrameLoaded
    frame_warmed = Signal(int, int)  # (video_id, frame_idx) now in `decoded`, asked by `warm`

    def __init__(self, decoded: DecodedFrames):
        super().__init__()
        self.decoded = decoded
        # No cache in the source itself: `decoded` is the cache, shared with the GUI thread.
        self._media = OpenMedia(cache_frames=0)
        self._mailbox = LatestOnly(self._load_now)
        self._warm_mailbox = LatestOnly(self._warm_now)  # (media, frame_idx), newest only
        self._ahead: tuple | None = None  # (media, next frame_idx, last frame_idx to read ahead)
        self._last: tuple[int, int] | None = None  # (video_id, frame_idx) of the last request
        # Frames behind the playhead being decoded one per turn while the coder steps back:
        # (media, first frame_idx of the chunk, the iter_frames generator, its source).
        self._behind: tuple | None = None

    @Slot(object)
    def load(self, request: FrameRequest) -> None:
        self._mailbox.put(request)

    @Slot(object, int, object)
    def warm(self, media, frame_idx: int, frame_label) -> None:
        """Decode `frame_idx` of `media` into the decoded frames (not for display); a failure
        names the frame with `frame_label` (messages.FrameLabel)."""
        self._warm_mailbox.put((media, frame_idx, frame_label))

    def _warm_now(self, wanted: tuple) -> None:
        media, frame_idx, frame_label = wanted
        if self.guarded(f"loading reference frame {frame_label(frame_idx)}", self._read, media,
                        frame_idx):
            self.frame_warmed.emit(media.video_id, frame_idx)

    def _load_now(self, request: FrameRequest) -> None:
        self.guarded(f"loading frame {request.frame_label(request.frame_idx)}", self._decode,
                     request)

    def _read(self, media, frame_idx: int) -> tuple[np.ndarray, float]:
        hit = self.decoded.get(media.video_id, frame_idx)
        if hit is not None:
            return hit
        source = self._media.source(media)
        rgb, t_s = source.read(frame_idx), source.time_s(frame_idx)
        self.decoded.put(media.video_id, frame_idx, rgb, t_s)
        return rgb, t_s

    def _stepping_back(self, request: FrameRequest) -> bool:
        last = self._last
        return (last is not None and last[0] == request.media.video_id
                and 0 < last[1] - request.frame_idx <= BACKWARD_STEP_MAX)

    def _source_read_in_runs(self, media):
        """The media's source when frames behind the playhead are worth decoding in runs: a
        video read without a seek proxy. None for image folders and proxied videos, where any one
        frame reads cheaply."""
        source = self._media.source(media)
        return source if source.kind == "video" and source.proxy_path is None else None

    def _read_behind(self, media, frame_idx: int) -> None:
        """Decode `frame_idx` and the frames just before it in one sequential pass."""
        if (media.video_id, frame_idx) in self.decoded:
            return
        source = self._source_read_in_runs(media)
        if source is None:
            return
        try:
            for idx, rgb in source.iter_frames(max(0, frame_idx - READ_BEHIND_FRAMES), frame_idx + 1):
                self.decoded.put(media.video_id, idx, rgb, source.time_s(idx))
        except FrameDecodeError:
            return  # the frame's own read reports it, if it is the damaged one

    def _keep_decoded_behind(self, media, frame_idx: int) -> None:
        """While the coder steps back, decode the next chunk of frames behind the decoded run
        before the playhead reaches it (one frame per event-loop turn, requests first)."""
        source = self._source_read_in_runs(media)
        if source is None:
            return
        low = frame_idx
        while low > 0 and frame_idx - low < READ_BEHIND_FRAMES and (media.video_id, low - 1) in self.decoded:
            low -= 1
        if low == 0 or frame_idx - low >= READ_BEHIND_FRAMES:
            return  # enough decoded behind the playhead
        start = max(0, low - READ_BEHIND_FRAMES)
        if self._behind is not None:
            if self._behind[0] == media and self._behind[1] == start:
                return  # that chunk is on its way
            self._stop_behind()
        self._behind = (media, start, source.iter_frames(start, low), source)
        QTimer.singleShot(0, self._read_behind_step)

    def _read_behind_step(self) -> None:
        if self._behind is None:
            return
        if self._mailbox.has_pending:
            QTimer.singleShot(0, self._read_behind_step)  # after the waiting request
            return
        media, _start, frames, source = self._behind
        try:
            idx, rgb = next(frames)
        except (StopIteration, FrameDecodeError):
            self._stop_behind()
            return
        self.decoded.put(media.video_id, idx, rgb, source.time_s(idx))
        QTimer.singleShot(0, self._read_behind_step)

    def _stop_behind(self) -> None:
        if self._behind is not None:
            self._behind[2].close()  # closes the generator's own container
        self._behind = None

    def _decode(self, request: FrameRequest) -> None:
        if self._behind is not None and self._behind[0] != request.media:
            self._stop_behind()  # another video: its source is about to be closed
        stepping_back = self._stepping_back(request)
        self._last = (request.media.video_id, request.frame_idx)
        if not request.shown:
            if stepping_back:
                self._read_behind(request.media, request.frame_idx)
            rgb, t_s = self._read(request.media, request.frame_idx)
            self.frame_loaded.emit(FrameLoaded(
                request_id=request.request_id, video_id=request.media.video_id,
                frame_idx=request.frame_idx, rgb=rgb, t_s=t_s, requested_at_s=request.requested_at_s,
            ))
        if stepping_back:
            self._keep_decoded_behind(request.media, request.frame_idx)
        stop = min(request.frame_idx + READ_AHEAD_FRAMES, request.media.n_frames - 1)
        self._ahead = (request.media, request.frame_idx + 1, stop)
        QTimer.singleShot(0, self._read_ahead)

    def _read_ahead(self) -> None:
        """Decode one frame after the one on screen, then schedule the next."""
        if self._ahead is None or self._mailbox.has_pending:
            return  # a request waits: it goes first, and it restarts read-ahead from its frame
        media, frame_idx, stop = self._ahead
        while frame_idx <= stop and (media.video_id, frame_idx) in self.decoded:
            frame_idx += 1
        if frame_idx > stop:
            self._ahead = None
            return
        try:
            self._read(media, frame_idx)
        except FrameDecodeError:
            self._ahead = None  # the coder sees the error if the playhead gets there
            return
        self._ahead = (media, frame_idx + 1, stop)
        QTimer.singleShot(0, self._read_ahead)

    @Slot(object)
    def use_proxy(self, ready: ProxyReady) -> None:
        """Random reads of the open video go through its new seek proxy from now on."""
        self.guarded(f"attaching the seek proxy of {ready.media.path.name}", self._media.attach_proxy,
                     ready)

    @Slot()
    def shutdown(self) -> None:
        self._mailbox.take()
        self._warm_mailbox.take()
        self._ahead = None
        self._stop_behind()
        self._media.close()
