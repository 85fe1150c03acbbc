"""The import job: a coding sheet and its media root into a project, off the GUI thread.

Owns: `import_sheet` (the job function `session.jobs` runs for an `ImportRequest`). May import
store (the importers and `Project.import_dataset`), media, core and the session's messages,
jobs and opening; no Qt.

Progress comes from the store's batch commits, so every batch reported is on disk; cancelling
sets the event the import polls between batches.
"""

from __future__ import annotations

from microau_gui.media import frame_index, open_media
from microau_gui.session.jobs import Job
from microau_gui.session.messages import ImportRequest, JobDone
from microau_gui.session.opening import open_or_create_project
from microau_gui.store.importers import DATASET_FPS, import_dataset


def import_sheet(request: ImportRequest, job: Job) -> JobDone:
    """Import the sheet into `request.project_path`; the result is that path."""
    def reading(n_done: int, n_total: int) -> None:
        job.progress(n_done, n_total, f"reading {request.sheet.name}: row {n_done} of {n_total}")

    reading(0, 0)
    dataset = import_dataset(request.kind, request.sheet, request.media_root,
                             frame_index=frame_index, fps=request.fps, progress=reading)
    if job.cancelled():
        return job.done("import cancelled", request.project_path, cancelled=True)

    def progress(n_done: int, n_total: int) -> None:
        job.progress(n_done, n_total, f"imported {n_done} of {n_total} samples")

    fps = request.fps or DATASET_FPS.get(request.kind)
    project = open_or_create_project(request.project_path)
    try:
        summary = project.import_dataset(
            dataset, lambda path: open_media(path, fps=fps, cache_frames=1),
            coder=request.coder, progress=progress, should_cancel=job.should_cancel)
    finally:
        project.close()
    issues = len(dataset.report.issues)
    text = f"{summary}" + (f"; the sheet had {issues} rows fixed or skipped" if issues else "")
    return job.done(text, request.project_path, cancelled=job.cancelled())
