"""The import worker: a coding sheet and its media root into a project, off the GUI thread.

Owns: `ImportWorker`. May import store (the importers and `Project.import_dataset`), media, core,
the session's messages/workers and PySide6.QtCore.

One worker runs one import in its own QThread (the session creates it per import and joins it
when it ends). Progress comes from the store's batch commits, so every batch reported is on disk;
`cancel()` is the one method called from the GUI thread: it only sets a threading.Event that the
import polls between batches.
"""

from __future__ import annotations


from PySide6.QtCore import Signal, Slot

from microau_gui.media import frame_index, open_media
from microau_gui.session.messages import ImportRequest, JobFinished, Progress
from microau_gui.session.opening import open_or_create_project
from microau_gui.session.workers import CancellableWorker
from microau_gui.store.importers import DATASET_FPS, import_dataset


class ImportWorker(CancellableWorker):
    """Signals: `progressed(Progress)`, `finished(JobFinished)`, `failed(str)`."""

    progressed = Signal(object)
    finished = Signal(object)

    @Slot(object)
    def run(self, request: ImportRequest) -> None:
        self.guarded(f"importing {request.sheet.name}", self._import, request)

    def _import(self, request: ImportRequest) -> None:
        def reading(n_done: int, n_total: int) -> None:
            self.progressed.emit(Progress(request.request_id, n_done, n_total,
                                          f"reading {request.sheet.name}: row {n_done} of {n_total}"))

        reading(0, 0)
        dataset = import_dataset(request.kind, request.sheet, request.media_root,
                                 frame_index=frame_index, fps=request.fps, progress=reading)
        if self._cancel.is_set():
            self.finished.emit(JobFinished(request.request_id, True, "import cancelled"))
            return

        def progress(n_done: int, n_total: int) -> None:
            self.progressed.emit(Progress(request.request_id, n_done, n_total,
                                          f"imported {n_done} of {n_total} samples"))

        fps = request.fps or DATASET_FPS.get(request.kind)
        project = open_or_create_project(request.project_path)
        try:
            summary = project.import_dataset(
                dataset, lambda path: open_media(path, fps=fps, cache_frames=1),
                coder=request.coder, progress=progress, should_cancel=self._cancel.is_set)
        finally:
            project.close()
        issues = len(dataset.report.issues)
        text = f"{summary}" + (f"; the sheet had {issues} rows fixed or skipped" if issues else "")
        self.finished.emit(JobFinished(request.request_id, self._cancel.is_set(), text))
