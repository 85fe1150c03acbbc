"""Fine-tuning on the coder's corrections, off the GUI thread, and the versions it produces.

Owns: `FinetuneRequest`, `FinetuneDone`, `FinetuneWorker`, `FinetuneController` (the session's
`finetune`). May import training (`training.finetune`, lazily: it loads torch), store, core, the
session's own modules and PySide6.QtCore; never gui.

The loop (issue #7 part 3, our specification):
- `start(...)` snapshots the selected events on the GUI thread (`snapshot_events`: training never
  reads the live store, so the coder keeps editing meanwhile) and runs `run_finetune` from the
  loaded model (the parent) in a `FinetuneWorker` thread, with torch on every core but one (as the
  inference worker does) so painting and scrubbing never queue behind training. Progress
  (`FinetuneProgress`, whose epoch-end reports carry the loss and held-out F1 points of the live
  curves) arrives through `progressed`; `cancel()` stops it within a training step and leaves the
  active model, the store and the weights folder unchanged.
- When it ends, the new checkpoint is registered in the project as an inactive version (so a
  crash or a closed dialog loses nothing) and `finished(FinetuneDone)` carries the before/after
  report. `activate(done)` loads it into the running inference worker (no restart; the project
  marks it active when it is loaded, see `ProjectSession._adopt`); `discard(done)` unregisters
  it and deletes its checkpoint, leaving the active model as it was.
- Any earlier version is rolled back to with `ProjectSession.select_model`: predictions are cached
  per version, so the older version's timeline traces come back as they were.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from microau_gui.core.errors import UserError
from microau_gui.session.models import ModelChoice
from microau_gui.session.workers import CancellableWorker, WorkerThread, user_message
from microau_gui.store.records import Event

if TYPE_CHECKING:
    from microau_gui.session.session import ProjectSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneRequest:
    request_id: int
    snapshot: object  # training.finetune.TrainingSnapshot, taken on the GUI thread
    parent: Path  # checkpoint folder of the parent model
    out: Path  # checkpoint folder to create
    options: object  # training.finetune.FinetuneOptions


@dataclass(frozen=True, eq=False)
class FinetuneDone:
    """A fine-tune ended: completed (result set), cancelled, or failed (message in summary)."""

    request_id: int
    result: object | None  # training.finetune.FinetuneResult
    cancelled: bool
    summary: str  # one line for the user
    version_id: int | None = None  # the project's id of the new version once registered


class FinetuneWorker(CancellableWorker):
    """Signals: `progressed(FinetuneProgress)`, `finished(FinetuneDone)`, `failed(str)`."""

    progressed = Signal(object)
    finished = Signal(object)

    def __init__(self):
        super().__init__()
        self._failure = ""  # the last `failed` message, repeated in the FinetuneDone summary
        self.failed.connect(self._on_self_failed)

    def _on_self_failed(self, message: str) -> None:
        self._failure = message

    @Slot(object)
    def run(self, request: FinetuneRequest) -> None:
        if self.guarded("fine-tuning", self._run, request) is None:
            self.finished.emit(FinetuneDone(request.request_id, None, True,
                                            self._failure or "fine-tuning failed"))

    def _run(self, request: FinetuneRequest) -> bool:
        from microau_gui.training.finetune import run_finetune
        from microau_gui.core.progress import Cancelled

        try:
            result = run_finetune(request.snapshot, request.parent, request.out, request.options,
                                  progress=self.progressed.emit, should_cancel=self._cancel)
        except Cancelled:
            self.finished.emit(FinetuneDone(request.request_id, None, True,
                                            "fine-tuning cancelled; the active model is unchanged"))
            return True
        self.finished.emit(FinetuneDone(
            request.request_id, result, False,
            f"fine-tuned {result.card.name}: mean F1 {result.before.mean_f1:.3f} → "
            f"{result.after.mean_f1:.3f} on held-out {', '.join(result.holdout_subjects)} "
            f"({result.seconds:.0f} s)"))
        return True


class FinetuneController(QObject):
    """The session's fine-tunes: one at a time, in a worker thread."""

    progressed = Signal(object)  # training.finetune.FinetuneProgress
    finished = Signal(object)  # FinetuneDone
    _requested = Signal(object)

    def __init__(self, session: ProjectSession):
        super().__init__(session)
        self.session = session
        self._thread: WorkerThread | None = None
        self._request: FinetuneRequest | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def threads(self) -> list[WorkerThread]:
        return [self._thread] if self._thread is not None else []

    def trainable_events(self, sources: tuple[str, ...], expression_types: tuple[str, ...]
                         ) -> list[tuple[Event, str]]:
        """(event, subject) of every event a selection of sources and types would train on, by
        subject then video and onset (the dialog's event list)."""
        project = self.session.project
        if project is None:
            return []
        videos = {v.id: v for v in project.videos()}
        found = []
        for event in project.events():
            if event.source in sources and event.expression_type in expression_types:
                video = videos[event.video_id]
                subject = video.subject or f"(video {video.name})"  # as snapshot_events names it
                found.append((event, subject))
        return sorted(found, key=lambda pair: (pair[1], pair[0].video_id, pair[0].onset))

    def subjects(self, sources: tuple[str, ...], expression_types: tuple[str, ...],
                 event_ids: tuple[int, ...] | None = None) -> dict[str, int]:
        """Subject -> events a selection would train on (the dialog's held-out choices);
        `event_ids` narrows it to those events (None: all)."""
        wanted = None if event_ids is None else set(event_ids)
        counts: dict[str, int] = {}
        for event, subject in self.trainable_events(sources, expression_types):
            if wanted is None or event.id in wanted:
                counts[subject] = counts.get(subject, 0) + 1
        return dict(sorted(counts.items()))

    def default_name(self) -> str:
        """The first free `<parent>-ftN` name (the checkpoint lands in the project's weights/)."""
        from microau_gui.training.finetune import default_output

        project, model = self.session.project, self.session.model
        if project is None or model is None:
            return ""
        taken = [v.name for v in project.models.list()]
        return default_output(project.path, model.model_version, taken).name

    def start(self, *, sources: tuple[str, ...] = ("expert", "accepted"),
              expression_types: tuple[str, ...] = ("micro",),
              event_ids: tuple[int, ...] | None = None, holdout: tuple[str, ...] = (), epochs: int = 20, train_blocks: int = 0,
              name: str = "") -> None:
        """Snapshot the selected events (of `sources` and `expression_types`; only `event_ids`
        when given) and fine-tune the loaded model on them in the worker."""
        from microau_gui.training.finetune import (EventSelection, FinetuneOptions, check_output,
                                                   snapshot_events)

        session = self.session
        if self._thread is not None:
            raise UserError("a fine-tune is already running; wait for it or cancel it")
        if session.project is None or session.model is None:
            raise UserError("open a project and load the model to fine-tune first")
        if not session.editable:
            raise UserError("the project is read-only; a fine-tuned version could not be added")
        project = session.project
        if event_ids is not None and not event_ids:
            raise UserError("no event is ticked; tick the events to train on, or choose all events")
        snapshot = snapshot_events(project, EventSelection(
            sources=tuple(sources), expression_types=tuple(expression_types),
            event_ids=None if event_ids is None else tuple(event_ids)))
        name = name.strip() or self.default_name()
        out = check_output(project.path.absolute().parent / "weights" / name,
                           snapshot.version_names)
        options = FinetuneOptions(holdout_subjects=tuple(holdout), epochs=int(epochs),
                                  train_blocks=int(train_blocks),
                                  threads=max(1, (os.cpu_count() or 2) - 1))
        request = FinetuneRequest(session._next_request_id(), snapshot, session.model.checkpoint,
                                  out, options)
        self._request = request
        self._thread = WorkerThread(FinetuneWorker(), "finetune", background=True)
        worker = self._thread.worker
        worker.progressed.connect(self.progressed)
        worker.finished.connect(self._on_worker_finished)
        worker.failed.connect(session.failed)
        self._requested.connect(worker.run)
        self._requested.emit(request)
        self._requested.disconnect(worker.run)
        session.status_posted.emit(f"fine-tuning {session.model.model_version} on "
                                   f"{len(snapshot.samples)} events in the background …")

    def cancel(self) -> None:
        if self._thread is not None:
            self._thread.worker.cancel()

    def _on_worker_finished(self, done: FinetuneDone) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        request, self._request = self._request, None
        project = self.session.project
        if done.result is not None:
            from microau_gui.training.finetune import discard_result, register_result

            if project is None or request is None or request.snapshot.project_path != project.path:
                discard_result(done.result)  # its project was closed meanwhile: nowhere to add it
                done = FinetuneDone(done.request_id, None, True, "fine-tuning finished after its "
                                    "project was closed; the new model was not kept")
                self.session.status_posted.emit(done.summary)
                self.finished.emit(done)
                return
            try:
                version = register_result(project, done.result, activate=False)
            except Exception as err:  # the checkpoint must not outlive a failed registration
                log.exception("registering the fine-tuned model failed")
                discard_result(done.result)
                done = FinetuneDone(done.request_id, None, True,
                                    f"the fine-tuned model could not be added: {user_message(err)}")
            else:
                done = FinetuneDone(done.request_id, done.result, False, done.summary, version.id)
        self.session.status_posted.emit(done.summary)
        self.finished.emit(done)

    def activate(self, done: FinetuneDone) -> None:
        """Load the new version in the inference worker; it becomes the project's active one."""
        if done.version_id is None or self.session.project is None:
            raise UserError("this fine-tune produced no version to activate")
        version = self.session.project.models.get(done.version_id)
        self.session.select_model(ModelChoice(version.name, version.checkpoint, version.id,
                                              "project"))

    def discard(self, done: FinetuneDone) -> None:
        """Unregister the new version and delete its checkpoint; the active model stays."""
        from microau_gui.training.finetune import discard_result

        if done.result is None:
            return
        project = self.session.project
        model = self.session.model
        if model is not None and model.model_version == done.result.card.name:
            raise UserError(f"{model.model_version} is the running model; activate another "
                            "version before discarding it")
        discard_result(done.result, project)
        self.session.status_posted.emit(f"discarded {done.result.card.name}")

    def close(self) -> None:
        """Cancel a running fine-tune and join its thread (nothing is saved)."""
        if self._thread is not None:
            self._thread.worker.cancel()
            self._thread.stop()
            self._thread = None
