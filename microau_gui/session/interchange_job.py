"""The interchange job: one File > Import or File > Export of the open project, off the GUI thread.

Owns: `transfer` (the job function `session.jobs` runs for an `InterchangeRequest`),
`TRACE_TOOLS`. May import store, interchange, core and the session's messages and jobs; no Qt.

The job opens the project file from its path on its own thread: read-write for an import (its
connection is the only writer this job adds; the window's own edits wait on SQLite's busy
timeout), read-only for an export. Nothing of the window's `Project` crosses threads. What an
import committed comes back as one `store.records.Change`, which the session handles like a
change it made itself (events, videos and model lists are re-read).

Cancel leaves nothing behind: an import writes in one transaction that a cancel rolls back
(JSON, ELAN: polled per event; a comparison trace is read whole before the one write that
stores it), an export writes a temporary file that a cancel removes (the JSON export polls
between traces, the per-frame tables every few thousand frames; the event-list formats are
written in one step and poll before it). Progress: bytes read for a trace file, events for JSON
and ELAN, frames for the per-frame tables.
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.core.errors import UserError
from microau_gui.core.progress import Cancelled, check_cancel
from microau_gui.session.jobs import Job
from microau_gui.session.messages import InterchangeRequest, Interchanged, JobDone
from microau_gui.store.project import Project
from microau_gui.store.records import Change

TRACE_TOOLS = ("openface", "imotions", "pyfeat")


def transfer(request: InterchangeRequest, job: Job) -> JobDone:
    """Run one import or export; the result is `Interchanged`."""
    verb = "reading" if request.direction == "import" else "writing"

    def progress(n_done: int, n_total: int) -> None:
        job.progress(n_done, n_total, f"{verb} {request.path.name}")

    progress(0, 0)
    project = Project.open(request.project_path, read_only=request.direction == "export")
    changes: list[Change] = []
    unsubscribe = project.subscribe(changes.append)
    try:
        if request.direction == "import":
            summary = _import(project, request, progress, job.should_cancel)
        else:
            check_cancel(job.should_cancel, "export cancelled")
            summary = _export(project, request, progress, job.should_cancel)
    except Cancelled:
        nothing = "nothing was imported" if request.direction == "import" else "no file was written"
        return job.done(f"{request.direction} of {request.path.name} cancelled; {nothing}",
                        cancelled=True)
    finally:
        unsubscribe()
        project.close()
    change = Change()
    for one in changes:
        change = change.merged(one)
    return job.done(summary, Interchanged(request, change))


def _video_id(request: InterchangeRequest) -> int:
    if request.video_id is None:
        raise UserError("open a video of the project first")
    return request.video_id


def _import(project: Project, request: InterchangeRequest, progress, should_cancel) -> str:
    key, path = request.key, request.path
    if key == "json":
        from microau_gui.store.export import import_json

        return str(import_json(project, path, progress=progress, should_cancel=should_cancel))
    if key == "elan":
        from microau_gui.interchange.elan import import_elan

        return str(import_elan(project, path, _video_id(request), progress=progress,
                               should_cancel=should_cancel))
    if key in TRACE_TOOLS:
        from microau_gui.interchange.traces import read_trace

        video = project.video(_video_id(request))
        trace = read_trace(key, path, fps=video.fps, n_frames=video.n_frames,
                           numbers=project.frame_numbers(video.id), progress=progress,
                           should_cancel=should_cancel)
        check_cancel(should_cancel, "import cancelled")
        project.traces.put(video.id, trace)
        return (f"comparison trace {trace.name}: {len(trace.frame_idx)} frames, "
                f"{len(trace.aus)} AUs, {trace.meta['masked']} masked")
    raise UserError(f"unknown import format {key!r}")


def _export(project: Project, request: InterchangeRequest, progress, should_cancel) -> str:
    key, path = request.key, Path(request.path)
    if key == "json":
        from microau_gui.store.export import export_json

        return str(export_json(project, path, progress=progress, should_cancel=should_cancel))
    if key in ("casme2", "megc"):
        from microau_gui.store.export import export_project

        return str(export_project(project, key, path))
    if key == "elan":
        from microau_gui.interchange.elan import export_elan

        return str(export_elan(project, _video_id(request), path))
    if key == "boris":
        from microau_gui.interchange.boris import export_boris

        out, n_events = export_boris(project, path)
        return f"wrote {n_events} events to {out}"
    if key in ("frames", "frames-wide"):
        from microau_gui.interchange.framewise import export_frames

        out, n_rows = export_frames(project, path, layout="wide" if key == "frames-wide" else "long",
                                    progress=progress, should_cancel=should_cancel)
        return f"wrote {n_rows} rows to {out}"
    raise UserError(f"unknown export format {key!r}")
