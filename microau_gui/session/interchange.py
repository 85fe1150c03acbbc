"""File > Import and File > Export of the open project: the formats, and what each one runs.

Owns: `FileFormat`, `IMPORT_FORMATS`, `EXPORT_FORMATS`, `InterchangeController` (import or export
one file for the open project and video; the open video's comparison traces for the timeline).
May import store, interchange, core, session.context (its `SessionContext`, the narrow view of the
session it receives) and PySide6.QtCore.

The work is `microau_gui.interchange` and `store.export`, the same functions the command line
runs. A file is read or written on the calling (GUI) thread: the formats here are event lists
and per-frame tables of one video, which take milliseconds to a few seconds; the dataset
import (many clips, media probed) keeps its own worker (session.import_worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from microau_gui.core.errors import UserError

if TYPE_CHECKING:
    from microau_gui.session.context import SessionContext
    from microau_gui.store.traces import ComparisonTrace


@dataclass(frozen=True)
class FileFormat:
    key: str  # what import_file / export_file dispatch on
    label: str  # menu text
    filter: str  # file dialog filter
    suffix: str = ""  # default suffix for a save dialog


IMPORT_FORMATS: tuple[FileFormat, ...] = (
    FileFormat("dataset", "Dataset coding sheet (CASME II, SAMM, CAS(ME)³, MEGC, our CSV)…", ""),
    FileFormat("json", "Project export (JSON)…", "JSON export (*.json)"),
    FileFormat("elan", "ELAN annotations (.eaf) for this video…", "ELAN (*.eaf)"),
    FileFormat("openface", "OpenFace 2 CSV as a comparison trace…", "OpenFace CSV (*.csv)"),
    FileFormat("imotions", "iMotions / FACET export as a comparison trace…",
               "iMotions export (*.txt *.tsv *.csv)"),
    FileFormat("pyfeat", "py-feat Fex CSV as a comparison trace…", "Fex CSV (*.csv)"),
)
EXPORT_FORMATS: tuple[FileFormat, ...] = (
    FileFormat("casme2", "CASME II coding sheet…", "Spreadsheet (*.xlsx *.csv)", ".xlsx"),
    FileFormat("megc", "MEGC spotting intervals…", "CSV (*.csv)", ".csv"),
    FileFormat("json", "Project export (JSON)…", "JSON (*.json)", ".json"),
    FileFormat("elan", "ELAN annotations (.eaf) of this video…", "ELAN (*.eaf)", ".eaf"),
    FileFormat("boris", "BORIS tabular events…", "BORIS table (*.csv *.tsv)", ".tsv"),
    FileFormat("frames", "Per-frame AU probabilities, long (tidy) CSV…", "CSV (*.csv)", ".csv"),
    FileFormat("frames-wide", "Per-frame AU probabilities, wide CSV…", "CSV (*.csv)", ".csv"),
)
TRACE_TOOLS = ("openface", "imotions", "pyfeat")


class InterchangeController(QObject):
    """Import and export for the window. Signal: `traces_changed` after a trace import."""

    traces_changed = Signal()

    def __init__(self, ctx: SessionContext, parent: QObject | None = None):
        super().__init__(parent)
        self._ctx = ctx
        self._cache: tuple[int, list] | None = None  # (video id, traces) of the open video
        ctx.video_opened.connect(self._on_session_video_opened)

    def _on_session_video_opened(self, _video) -> None:
        self._cache = None
        self.traces_changed.emit()

    def _project(self):
        project = self._ctx.project()
        if project is None:
            raise UserError("open or create a project first (File > Open)")
        return project

    def _video(self):
        video = self._ctx.video()
        if video is None:
            raise UserError("open a video of the project first")
        return video

    def traces(self) -> list[ComparisonTrace]:
        """The open video's comparison traces (read once per video and import)."""
        project, video = self._ctx.project(), self._ctx.video()
        if project is None or video is None:
            return []
        if self._cache is None or self._cache[0] != video.id:
            self._cache = (video.id, [project.traces.get(info.id)
                                      for info in project.traces.list(video.id)])
        return self._cache[1]

    def import_file(self, key: str, path: Path | str) -> str:
        """Import one file into the open project (and video); returns a one-line summary."""
        project = self._project()
        path = Path(path)
        if key == "json":
            from microau_gui.store.export import import_json

            return str(import_json(project, path))
        if key == "elan":
            from microau_gui.interchange.elan import import_elan

            return str(import_elan(project, path, self._video().id))
        if key in TRACE_TOOLS:
            from microau_gui.interchange.traces import read_trace

            video = self._video()
            trace = read_trace(key, path, fps=video.fps, n_frames=video.n_frames,
                               numbers=project.frame_numbers(video.id))
            project.traces.put(video.id, trace)
            self._cache = None
            self.traces_changed.emit()
            return (f"comparison trace {trace.name}: {len(trace.frame_idx)} frames, "
                    f"{len(trace.aus)} AUs, {trace.meta['masked']} masked")
        raise UserError(f"unknown import format {key!r}")

    def export_file(self, key: str, path: Path | str) -> str:
        """Export the open project (ELAN: the open video) to `path`; returns a one-line summary."""
        project = self._project()
        if key in ("casme2", "megc", "json"):
            from microau_gui.store.export import export_project

            return str(export_project(project, key, path))
        if key == "elan":
            from microau_gui.interchange.elan import export_elan

            return str(export_elan(project, self._video().id, path))
        if key == "boris":
            from microau_gui.interchange.boris import export_boris

            out, n_events = export_boris(project, path)
            return f"wrote {n_events} events to {out}"
        if key in ("frames", "frames-wide"):
            from microau_gui.interchange.framewise import export_frames

            out, n_rows = export_frames(project, path,
                                        layout="wide" if key == "frames-wide" else "long")
            return f"wrote {n_rows} rows to {out}"
        raise UserError(f"unknown export format {key!r}")
