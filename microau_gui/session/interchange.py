"""File > Import and File > Export of the open project: the formats, and the job that runs them.

Owns: `FileFormat`, `IMPORT_FORMATS`, `EXPORT_FORMATS`, `InterchangeController` (submit one
import or export of the open project and video as a background job; the open video's comparison
traces for the timeline and the AU panel). May import store (types), core, session.context (its
`SessionContext`, the narrow view of the session it receives), session.jobs, messages and the
interchange job, and PySide6.QtCore.

The work is `session.interchange_job.transfer`, which runs `microau_gui.interchange` and
`store.export`, the same functions the command line runs, on the job's own thread and its own
connection to the project file; see that module for progress, cancel and what is left behind.
A finished import hands back what it committed (`project_changed`, a `Change`), so the session
re-reads what the window shows; a trace import also emits `traces_changed`. The dataset import
(many clips, media probed) is its own job (session.import_worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from microau_gui.core.errors import UserError
from microau_gui.session.interchange_job import TRACE_TOOLS, transfer
from microau_gui.session.jobs import JobRunner
from microau_gui.session.messages import InterchangeRequest, JobDone

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


class InterchangeController(QObject):
    """Import and export for the window, one job at a time.

    Signals: `progressed(Progress)`, `finished(JobDone)` (every submitted job ends with one;
    `failed` / `cancelled` say how, `summary` is one line), `traces_changed` after a trace
    import, `project_changed(Change)` after an import committed rows."""

    traces_changed = Signal()
    project_changed = Signal(object)  # store.records.Change
    progressed = Signal(object)  # Progress
    finished = Signal(object)  # JobDone, result: Interchanged (None when failed or cancelled)

    def __init__(self, ctx: SessionContext, parent: QObject | None = None):
        super().__init__(parent)
        self._ctx = ctx
        self._cache: tuple[int, list] | None = None  # (video id, traces) of the open video
        self._job = JobRunner(ctx.ids, transfer,
                              lambda r: f"{r.direction} of {r.path.name}", self)
        self._job.progressed.connect(self.progressed)
        self._job.finished.connect(self._on_job_finished)
        ctx.video_opened.connect(self._on_session_video_opened)

    def _on_session_video_opened(self, _video) -> None:
        self._cache = None
        self.traces_changed.emit()

    @property
    def running(self) -> bool:
        return self._job.running

    @property
    def threads(self) -> list:
        return self._job.threads

    def traces(self) -> list[ComparisonTrace]:
        """The open video's comparison traces (read once per video and import)."""
        project, video = self._ctx.project(), self._ctx.video()
        if project is None or video is None:
            return []
        if self._cache is None or self._cache[0] != video.id:
            self._cache = (video.id, [project.traces.get(info.id)
                                      for info in project.traces.list(video.id)])
        return self._cache[1]

    def import_file(self, key: str, path: Path | str) -> InterchangeRequest:
        """Start importing one file into the open project (and video); `finished` follows."""
        if key not in {"json", "elan", *TRACE_TOOLS}:
            raise UserError(f"unknown import format {key!r}")
        return self._submit("import", key, path, needs_video=key != "json")

    def export_file(self, key: str, path: Path | str) -> InterchangeRequest:
        """Start exporting the open project (ELAN: the open video) to `path`; `finished` follows."""
        if key not in {"casme2", "megc", "json", "elan", "boris", "frames", "frames-wide"}:
            raise UserError(f"unknown export format {key!r}")
        return self._submit("export", key, path, needs_video=key == "elan")

    def cancel(self) -> None:
        """Stop the running import or export; it leaves nothing behind."""
        self._job.cancel()

    def close(self) -> None:
        self._job.close()

    def _submit(self, direction: str, key: str, path: Path | str,
                needs_video: bool) -> InterchangeRequest:
        project, video = self._ctx.project(), self._ctx.video()
        if project is None:
            raise UserError("open or create a project first (File > Open)")
        if needs_video and video is None:
            raise UserError("open a video of the project first")
        if direction == "import" and project.read_only:
            raise UserError(f"the project cannot be written ({project.read_only_reason}); "
                            "nothing was imported")
        request = InterchangeRequest(direction, key, Path(path), project.path,
                                     video.id if video is not None else None)
        return self._job.submit(request, busy="an import or export is already running; wait "
                                              "for it or cancel it")

    def _on_job_finished(self, done: JobDone) -> None:
        project = self._ctx.project()
        if (done.result is not None and done.result.request.direction == "import"
                and project is not None and project.path == done.result.request.project_path):
            if done.result.change:
                self.project_changed.emit(done.result.change)
            if done.result.request.key in TRACE_TOOLS or done.result.request.key == "json":
                self._cache = None
                self.traces_changed.emit()
        self.finished.emit(done)
