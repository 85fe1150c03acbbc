"""The spotting worker: one streaming spotting pass over a video, off the GUI thread.

Owns: `SpotRequest`, `SpotDone`, `SpotWorker`. May import spotting (`spot_media`), core, the
session's messages/workers and PySide6.QtCore.

One worker runs one pass in its own QThread (the review controller creates it per run and joins
it when the run ends, like the import worker). `cancel()` is the one method called from the GUI
thread: it sets a threading.Event that `spot_media` polls about once per second of video, so a
cancelled pass stops within a second and reports `SpotDone(cancelled=True)`, never a failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Signal, Slot

from microau_gui.session.messages import MediaRef, Progress
from microau_gui.session.workers import CancellableWorker


@dataclass(frozen=True)
class SpotRequest:
    """Spot micro- and macro-expression candidates in one video of the project."""

    request_id: int
    media: MediaRef


@dataclass(frozen=True)
class SpotDone:
    """A spotting pass ended (completed or cancelled)."""

    request_id: int
    video_id: int
    candidates: tuple  # spotting.spotter.Candidate, sorted by onset; empty when cancelled
    cancelled: bool
    seconds: float  # wall time of the pass
    summary: str  # one line for the status bar


class SpotWorker(CancellableWorker):
    """Signals: `progressed(Progress)`, `finished(SpotDone)`, `failed(str)`."""

    progressed = Signal(object)
    finished = Signal(object)

    @Slot(object)
    def run(self, request: SpotRequest) -> None:
        self.guarded(f"spotting {request.media.path.name}", self._spot, request)

    def _spot(self, request: SpotRequest) -> None:
        from microau_gui.core.progress import Cancelled
        from microau_gui.spotting.spotter import spot_media

        media = request.media

        def progress(n_done: int, n_total: int) -> None:
            self.progressed.emit(Progress(request.request_id, n_done, n_total,
                                          f"spotting: frame {n_done} of {n_total}"))

        progress(0, media.n_frames)
        try:
            result = spot_media(media.path, progress=progress, should_cancel=self._cancel.is_set,
                                fps=media.fps)
        except Cancelled:
            self.finished.emit(SpotDone(request.request_id, media.video_id, (), True, 0.0,
                                        "spotting cancelled"))
            return
        self.finished.emit(SpotDone(request.request_id, media.video_id, result.candidates, False,
                                    result.seconds, result.summary))
