"""The spotting job: one streaming spotting pass over a video, off the GUI thread.

Owns: `spot` (the job function `session.jobs` runs for a `SpotRequest`). May import spotting
(`spot_media`), core and the session's messages and jobs; no Qt.

Cancelling sets the event `spot_media` polls about once per second of video, so a cancelled
pass stops within a second and ends as cancelled, never as a failure.
"""

from __future__ import annotations

from microau_gui.session.jobs import Job
from microau_gui.session.messages import JobDone, SpotRequest, Spotted


def spot(request: SpotRequest, job: Job) -> JobDone:
    """Spot the candidates of `request.media`; the result is `Spotted`."""
    from microau_gui.core.progress import Cancelled
    from microau_gui.spotting.spotter import spot_media

    media = request.media

    def progress(n_done: int, n_total: int) -> None:
        job.progress(n_done, n_total, f"spotting: frame {n_done} of {n_total}")

    progress(0, media.n_frames)
    try:
        result = spot_media(media.path, progress=progress, should_cancel=job.should_cancel,
                            fps=media.fps)
    except Cancelled:
        return job.done("spotting cancelled", cancelled=True)
    return job.done(result.summary, Spotted(media.video_id, result.candidates, result.seconds))
