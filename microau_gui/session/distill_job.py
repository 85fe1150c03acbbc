"""The distillation job: Model > Distil a student…, off the GUI thread.

Owns: `distill_student` (the job function `session.jobs` runs for a `DistillRequest`). May import
training (`distill`), synth (the generator), inference (the sliding reference's lag), core and the
session's messages and jobs; no Qt.

The teacher is the loaded model; the frames are the open video's (spread over it, each with its
sliding reference, as analysis pairs them) plus generated clips of synthetic subjects 01 and 02
(03 stays unseen, so `distill-report` can score the student on it). Generation, preparation,
labelling and training each report progress; cancelling stops between two steps and leaves no
folder behind (`training.distill` writes it whole or not at all).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from microau_gui.session.jobs import Job
from microau_gui.session.messages import Distilled, DistillRequest, JobDone

SYNTHETIC_SUBJECTS = ("01", "02")  # as `python main.py distill` by default: 03 stays held out
SYNTHETIC_FPS = 200.0  # the generator's CASME II rate
PAIRS_PER_VIDEO = 200  # frame pairs from each video, as the command's default
PAIRS_PER_CLIP = 6


def distill_student(request: DistillRequest, job: Job) -> JobDone:
    """Distil the student of `request`; the result is `Distilled`."""
    from microau_gui.core.progress import Cancelled
    from microau_gui.inference.reference import sliding_offset_frames
    from microau_gui.model.card import read_card
    from microau_gui.synth import generate_clips
    from microau_gui.training.distill import clip_sources, distill, video_sources

    def stage(what: str, done: int, total: int) -> None:
        job.progress(done, total, f"{what}: {done} of {total}")

    try:
        with tempfile.TemporaryDirectory(prefix="microau-distill-") as scratch:
            sources = video_sources(request.videos, sliding_offset_frames, PAIRS_PER_VIDEO)
            if request.synthetic_clips:
                root = Path(scratch) / "synth"
                made = generate_clips(root, subjects=len(SYNTHETIC_SUBJECTS),
                                      clips_per_subject=request.synthetic_clips,
                                      size=read_card(request.teacher).image_size, fps=SYNTHETIC_FPS,
                                      progress=lambda d, t: stage("generating clips", d, t),
                                      should_cancel=job.should_cancel)
                if made.cancelled:
                    raise Cancelled("cancelled")
                sources += clip_sources(made.clips, root, sliding_offset_frames(SYNTHETIC_FPS),
                                        PAIRS_PER_CLIP, SYNTHETIC_SUBJECTS)
            result = distill(request.teacher, sources, request.out, request.settings, stage=stage,
                             should_cancel=job.should_cancel)
    except Cancelled:
        return job.done("distillation cancelled; no student was saved", cancelled=True)
    agreement = result.agreement.mean_f1 if result.agreement is not None else None
    said = f", mean F1 {agreement:.2f} against the teacher on held-out frames" if agreement is not None else ""
    return job.done(f"student {result.card.version} distilled from {result.card.teacher}{said}",
                    Distilled(result.card, request.out, agreement))
