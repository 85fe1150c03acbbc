"""Seek proxies of long-GOP videos, built in the background while the coder works.

Owns: `ensure_proxy` (the job function for a `ProxyRequest`) and `SeekProxyController` (the
session's `proxies`). May import media (`media.proxy`), core, the session's messages and jobs
and PySide6.QtCore; never gui.

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
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from microau_gui.core.errors import UserError
from microau_gui.session.jobs import Job, JobRunner, RequestIds
from microau_gui.session.messages import JobDone, MediaRef, Progress, ProxyRequest, ProxyState
from microau_gui.session.workers import WorkerThread

log = logging.getLogger(__name__)

AUTO_PROXY_ENV = "MICROAU_SEEK_PROXY"  # "off" disables automatic building


def auto_proxy_enabled() -> bool:
    return os.environ.get(AUTO_PROXY_ENV, "on").strip().lower() not in ("off", "0", "no", "false")


def ensure_proxy(request: ProxyRequest, job: Job) -> JobDone:
    """Find or build the seek proxy of `request.media`; the result is `ProxyState`."""
    from microau_gui.media import VideoSource
    from microau_gui.core.progress import Cancelled
    from microau_gui.media.proxy import build_proxy, find_proxy, wants_proxy

    media = request.media

    def done(proxy: Path | None, built: bool, summary: str = "") -> JobDone:
        return job.done(summary, ProxyState(media.video_id, proxy, built))

    def progress(n_done: int, n_total: int) -> None:
        job.progress(n_done, n_total, f"seek proxy of {media.path.name}: frame {n_done} of {n_total}")

    with VideoSource(media.path, cache_frames=0) as source:
        existing = find_proxy(media.path, n_frames=source.n_frames)
        if existing is not None or not wants_proxy(source):
            return done(existing, False)
        progress(0, source.n_frames)
        try:
            proxy = build_proxy(media.path, progress=progress, should_cancel=job.should_cancel,
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
    finished = Signal(object)  # JobDone, result: ProxyState (None when the check failed)
    proxy_built = Signal(object, object)  # (MediaRef, proxy Path): the readers attach it
    status_posted = Signal(str)

    def __init__(self, ids: RequestIds, parent: QObject | None = None):
        super().__init__(parent)
        self._job = JobRunner(ids, ensure_proxy, lambda r: f"seek proxy of {r.media.path.name}",
                              self)
        self._job.progressed.connect(self._on_job_progressed)
        self._job.finished.connect(self._on_job_finished)
        self._job.failed.connect(self.status_posted)  # nothing the coder asked for failed
        self._media: MediaRef | None = None

    @property
    def threads(self) -> list[WorkerThread]:
        return self._job.threads

    @property
    def running(self) -> bool:
        return self._job.running

    def ensure(self, media: MediaRef) -> None:
        """Check the video (and build its proxy when it needs one) in the background; a build
        for another video is cancelled first."""
        self.close()
        if not media.path.is_file():
            return  # an image folder: every frame is its own file already
        self._media = media
        self._job.submit(ProxyRequest(media))

    def _on_job_progressed(self, progress: Progress) -> None:
        self.progressed.emit(progress)
        if progress.n_done == 0:
            self.status_posted.emit(
                f"building a seek proxy of {self._media.path.name} in the background "
                "(seeks stay exact meanwhile) …")

    def _on_job_finished(self, done: JobDone) -> None:
        state = done.result
        if state is not None and state.built:
            self.proxy_built.emit(self._media, state.proxy)
        if done.summary and not done.failed:
            self.status_posted.emit(done.summary)
        self.finished.emit(done)

    def close(self) -> None:
        """Cancel a running build and join its thread (the build leaves no file behind)."""
        request = self._job.request
        self._job.close()
        if request is not None:  # listeners (the window's progress bar) learn it ended
            self.finished.emit(JobDone(request.request_id, True, "",
                                       ProxyState(request.media.video_id, None, False)))
