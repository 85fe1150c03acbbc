"""Seek proxies of long-GOP videos, built in the background while the coder works.

Owns: `ProxyRequest`, `ProxyDone`, `ProxyWorker`, `SeekProxyController` (the session's
`proxies`). May import media (`media.proxy`), core, the session's messages/workers and
PySide6.QtCore; never gui.

Why: a random seek in a file with a keyframe every 250 frames decodes up to 250 frames (300 ms
at p95 for 720p here), so jumping between events or dragging the playhead lags. `media.proxy`
makes an exact (lossless, verified) copy with a keyframe every few frames; once it exists,
`open_media` reads random frames from it.

What happens (our choice; the issue only sets the 50 ms seek target):
- When a video opens, a worker at background priority checks it: nothing to do if a proxy
  exists or the file seeks fast already (`media.proxy.wants_proxy`); otherwise it builds one,
  with a status line when it starts and ends and its progress on `progressed` (the window shows
  a progress bar with Cancel). The coder keeps working meanwhile on the original (exact, only
  slower to seek).
- When the proxy is ready, the frame loader and the inference worker attach it to the video
  they have open (`VideoSource.attach_proxy`; reopening would index the original again), so
  their next random reads come from it. Frames already decoded stay valid: the pixels are
  identical.
- Opening another video or closing the session cancels a running build (no partial file is
  left). A refusal (disk too full, a pixel format that cannot be copied exactly) is one status
  line, not a message box: nothing the coder asked for failed.
- `MICROAU_SEEK_PROXY=off` turns automatic building off (`python main.py proxy VIDEO` still
  builds one by hand).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from microau_gui.core.errors import UserError
from microau_gui.session.messages import MediaRef, Progress
from microau_gui.session.workers import CancellableWorker, WorkerThread

if TYPE_CHECKING:
    from microau_gui.session.session import ProjectSession

log = logging.getLogger(__name__)

AUTO_PROXY_ENV = "MICROAU_SEEK_PROXY"  # "off" disables automatic building


def auto_proxy_enabled() -> bool:
    return os.environ.get(AUTO_PROXY_ENV, "on").strip().lower() not in ("off", "0", "no", "false")


@dataclass(frozen=True)
class ProxyRequest:
    """Make sure one video has a seek proxy (build it when it needs one and has none)."""

    request_id: int
    media: MediaRef


@dataclass(frozen=True)
class ProxyDone:
    """A proxy check or build ended."""

    request_id: int
    video_id: int
    proxy: Path | None  # the proxy now in place, or None (not needed, refused or cancelled)
    built: bool  # True when this run wrote it (the readers must reopen the media)
    summary: str  # one line for the status bar; "" when there is nothing to say


class ProxyWorker(CancellableWorker):
    """Signals: `progressed(Progress)`, `finished(ProxyDone)`, `failed(str)`."""

    progressed = Signal(object)
    finished = Signal(object)

    @Slot(object)
    def run(self, request: ProxyRequest) -> None:
        done = self.guarded(f"seek proxy of {request.media.path.name}", self._run, request)
        if done is None:  # an unexpected error was reported through `failed`
            done = ProxyDone(request.request_id, request.media.video_id, None, False, "")
        self.finished.emit(done)

    def _run(self, request: ProxyRequest) -> ProxyDone:
        from microau_gui.media import VideoSource
        from microau_gui.core.progress import Cancelled
        from microau_gui.media.proxy import build_proxy, find_proxy, wants_proxy

        media = request.media

        def done(proxy: Path | None, built: bool, summary: str = "") -> ProxyDone:
            return ProxyDone(request.request_id, media.video_id, proxy, built, summary)

        def progress(n_done: int, n_total: int) -> None:
            self.progressed.emit(Progress(request.request_id, n_done, n_total,
                                          f"seek proxy of {media.path.name}: frame {n_done} of {n_total}"))

        with VideoSource(media.path, cache_frames=0) as source:
            existing = find_proxy(media.path, n_frames=source.n_frames)
            if existing is not None or not wants_proxy(source):
                return done(existing, False)
            progress(0, source.n_frames)
            try:
                proxy = build_proxy(media.path, progress=progress, should_cancel=self._cancel.is_set,
                                    source=source)
            except Cancelled:
                return done(None, False)
            except UserError as err:
                log.info("no seek proxy: %s", err)
                return done(None, False, str(err))
            size_mb = proxy.stat().st_size / 1e6
            return done(proxy, True, f"seek proxy of {media.path.name} ready ({size_mb:.0f} MB): "
                                     f"random seeks no longer decode up to {source.max_gop} frames")


class SeekProxyController(QObject):
    """The session's `proxies`: one background build at a time, for the open video."""

    progressed = Signal(object)  # Progress
    finished = Signal(object)  # ProxyDone
    _requested = Signal(object)

    def __init__(self, session: ProjectSession):
        super().__init__()
        self.session = session
        self._thread: WorkerThread | None = None
        self._request: ProxyRequest | None = None

    @property
    def threads(self) -> list[WorkerThread]:
        return [self._thread] if self._thread is not None else []

    @property
    def running(self) -> bool:
        return self._thread is not None

    def ensure(self, media: MediaRef) -> None:
        """Check the video (and build its proxy when it needs one) in the background; a build
        for another video is cancelled first."""
        self.close()
        if not media.path.is_file():
            return  # an image folder: every frame is its own file already
        request = ProxyRequest(self.session._next_request_id(), media)
        self._request = request
        self._thread = WorkerThread(ProxyWorker(), "seek-proxy", background=True)
        worker = self._thread.worker
        worker.progressed.connect(self._on_worker_progressed)
        worker.finished.connect(self._on_worker_finished)
        worker.failed.connect(self.session.status_posted)
        self._requested.connect(worker.run)
        self._requested.emit(request)
        self._requested.disconnect(worker.run)

    def _on_worker_progressed(self, progress: Progress) -> None:
        if self._request is not None and progress.request_id == self._request.request_id:
            self.progressed.emit(progress)
            if progress.n_done == 0:
                self.session.status_posted.emit(
                    f"building a seek proxy of {self._request.media.path.name} in the background "
                    "(seeks stay exact meanwhile) …")

    def _on_worker_finished(self, done: ProxyDone) -> None:
        request = self._request
        if request is None or done.request_id != request.request_id:
            return
        self._end()
        if done.built:
            self.session.use_proxy(request.media, done.proxy)
        if done.summary:
            self.session.status_posted.emit(done.summary)
        self.finished.emit(done)

    def _end(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        self._request = None

    def close(self) -> None:
        """Cancel a running build and join its thread (the build leaves no file behind)."""
        request = self._request
        if self._thread is not None:
            self._thread.worker.cancel()
        self._end()
        if request is not None:  # listeners (the window's progress bar) learn it ended
            self.finished.emit(ProxyDone(request.request_id, request.media.video_id, None, False,
                                         ""))
